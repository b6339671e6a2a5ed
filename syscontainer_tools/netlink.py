"""The one place that opens netlink handles: on the host, and in a container.

The handles are rtnl.py's own small rtnetlink client (pyroute2's import
alone cost a NIC command more than its work).  The tool's own thread never
joins another network namespace: a handle inside a container is a netlink
socket a short-lived thread opened after setns; a netlink socket stays bound
to the namespace it was created in.

The namespace file descriptor is opened from ``/proc/PID/ns/net`` and checked
against the container init's pidfd afterwards, so a pid that died and was
reused can never be entered (the same check as ``ns.run_in``).

Also here: Open vSwitch through ``ovs-vsctl`` (the only subprocess of the
network code), the pinned namespace files of the prestart hook, and
``NetlinkError`` -> ``ToolError`` translation.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from . import syscalls
from .errors import NotFound, ToolError
from .log import get_logger

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    import subprocess
    from typing import Any

    from .container import Container
    from .rtnl import Handle as IPRoute

log = get_logger(__name__)

IFNAMSIZ = 16  # including the NUL: at most 15 characters
PIN_DIR = "/run/syscontainer-tools/netns"
IFF_UP = 0x1
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


# --- names ----------------------------------------------------------------

def ifname_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Linux interface name, or None."""
    if not name:
        return "an interface name cannot be empty"
    if len(name) >= IFNAMSIZ:
        return f"an interface name has at most {IFNAMSIZ - 1} characters"
    if name in (".", ".."):
        return "an interface name cannot be '.' or '..'"
    bad = [c for c in name if c in "/:" or c.isspace() or not c.isprintable()]
    if bad:
        return f"an interface name cannot contain {bad[0]!r}"
    return None


def random_name(prefix: str, length: int = 10) -> str:
    """``prefix`` + ``length`` random characters of [a-z0-9].

    From os.urandom, not the secrets module: that imports hashlib, whose
    OpenSSL library costs a command several milliseconds to load.  Bytes of
    252 and above are dropped, so each character is equally likely."""
    out: list[str] = []
    while len(out) < length:
        out += [_NAME_CHARS[b % 36] for b in os.urandom(length) if b < 252]
    return prefix + "".join(out[:length])


def error_type() -> Any:
    """The exception type a refused netlink request raises (``.code``: errno)."""
    from .rtnl import NetlinkError

    return NetlinkError


# --- errors ---------------------------------------------------------------

@contextlib.contextmanager
def failing(what: str) -> Iterator[None]:
    """Turn a netlink failure inside the block into ``ToolError("what: reason")``."""
    NetlinkError = error_type()

    try:
        yield
    except NetlinkError as err:
        raise ToolError.from_errno(err.code, what) from None


# --- handles --------------------------------------------------------------

def host() -> IPRoute:
    """A netlink handle in the tool's own (the host's) network namespace."""
    from .rtnl import Handle

    return Handle.open()


def in_netns(nsfd: int) -> IPRoute:
    """A netlink handle inside the network namespace ``nsfd`` refers to."""
    from .rtnl import Handle

    return Handle.in_netns(nsfd)


def same_netns(fd: int) -> bool:
    """Whether ``fd`` is this process's own network namespace."""
    a, b = os.fstat(fd), os.stat("/proc/self/ns/net")
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@contextlib.contextmanager
def container_netns(container: Container, pidfd: int) -> Iterator[int]:
    """Yield an fd of the running container's network namespace.

    Refuses a container that shares the host's network namespace: adding a
    NIC there would change the host's own network."""
    path = f"/proc/{container.pid}/ns/net"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        raise ToolError(f"container {container.id}: its init (pid {container.pid}) is gone") from None
    try:
        # /proc/PID named the process the pidfd pins only if it is alive now.
        try:
            import _signal  # signal's C half: signal.py's enums cost start-up

            _signal.pidfd_send_signal(pidfd, 0)
        except ProcessLookupError:
            raise ToolError(f"container {container.id}: its init (pid {container.pid}) "
                            "is gone") from None
        if same_netns(fd):
            raise ToolError(f"container {container.id} shares the host's network namespace",
                            hint="network interfaces and routes need a container with its "
                                 "own network namespace")
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def host_netns_fd() -> Iterator[int]:
    fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


# --- links ----------------------------------------------------------------

def link_index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def link(ipr: IPRoute, name: str) -> Any | None:
    """The RTM_NEWLINK message of the link called ``name``, or None."""
    NetlinkError = error_type()

    try:
        msgs = ipr.get_links(ifname=name)
    except NetlinkError as err:
        if err.code in (errno.ENODEV, errno.ENOENT):
            return None
        raise
    return msgs[0] if msgs else None


def link_kind(msg: Any) -> str | None:
    info = msg.get("IFLA_LINKINFO")
    return info.get("IFLA_INFO_KIND") if info is not None else None


def lookup(ipr: IPRoute, name: str, where: str = "the namespace") -> int:
    """The index of the link ``name``; NotFound if there is none."""
    index = link_index(ipr, name)
    if index is None:
        raise NotFound(f"{where} has no interface named {name}")
    return index


def set_link(ipr: IPRoute, name: str, what: str, **attrs: Any) -> None:
    """One RTM_SETLINK on the link called ``name``."""
    index = lookup(ipr, name)
    with failing(f"{what} on {name}"):
        ipr.link("set", index=index, **attrs)


def set_link_if_there(ipr: IPRoute, name: str, **attrs: Any) -> None:
    """An undo step's RTM_SETLINK: a link already gone is fine."""
    index = link_index(ipr, name)
    if index is not None:
        with failing(f"set {attrs} on {name}"):
            ipr.link("set", index=index, **attrs)


def delete_link_if_there(ipr: IPRoute, name: str) -> None:
    index = link_index(ipr, name)
    if index is not None:
        with failing(f"delete {name}"):
            ipr.link("del", index=index)


def down_and_rename(ipr: IPRoute, index: int, new_name: str, what: str) -> None:
    """Bring a link down, then rename it: two requests.

    Kernels before live renaming (before 6.4, e.g. Debian 12's 6.1) refuse
    to rename a link that is up (EBUSY), and one request that sets both
    changes the name before the flags."""
    with failing(what):
        ipr.link("set", index=index, state="down")
        ipr.link("set", index=index, ifname=new_name)


def rename_if_there(ipr: IPRoute, name: str, new_name: str, *, up: bool = False) -> None:
    """An undo step: rename ``name`` (down, so any kernel takes it), then
    bring it up if ``up``."""
    index = link_index(ipr, name)
    if index is None:
        return
    down_and_rename(ipr, index, new_name, f"rename {name} to {new_name}")
    if up:
        with failing(f"set {new_name} up"):
            ipr.link("set", index=index, state="up")


def address(ipr: IPRoute, cmd: str, name: str, cidr: str) -> None:
    """Add (``cmd`` "add") or delete ("del") the address ``cidr`` of ``name``."""
    import ipaddress

    iface = ipaddress.ip_interface(cidr)
    index = lookup(ipr, name)
    with failing(f"{'add' if cmd == 'add' else 'delete'} address {cidr} "
                 f"{'to' if cmd == 'add' else 'of'} {name}"):
        ipr.addr(cmd, index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)


def global_addrs(ipr: IPRoute, index: int) -> list[str]:
    """The link's addresses of universe scope (not link-local, not host), as CIDRs."""
    out = []
    for msg in ipr.get_addr(index=index):
        if msg["scope"] == 0:  # RT_SCOPE_UNIVERSE
            out.append(f"{msg.get('IFA_ADDRESS')}/{msg['prefixlen']}")
    return out


def set_mac(ipr: IPRoute, name: str, mac: str) -> None:
    """Set a MAC; a driver that refuses a live change gets it while down."""
    NetlinkError = error_type()

    index = lookup(ipr, name)
    try:
        ipr.link("set", index=index, address=mac)
        return
    except NetlinkError as err:
        if err.code != errno.EBUSY:
            raise ToolError.from_errno(err.code, f"set mac {mac} on {name}") from None
    up = bool(ipr.get_links(index)[0]["flags"] & IFF_UP)
    with failing(f"set mac {mac} on {name}"):
        ipr.link("set", index=index, state="down")
        try:
            ipr.link("set", index=index, address=mac)
        finally:
            if up:
                ipr.link("set", index=index, state="up")


def free_name(*handles: IPRoute, prefix: str) -> str:
    """A random ``prefix`` + 10 character name no handle's namespace has."""
    for _ in range(20):
        name = random_name(prefix)
        if all(link_index(h, name) is None for h in handles):
            return name
    raise ToolError(f"could not find a free interface name starting with {prefix}")


# --- Open vSwitch ---------------------------------------------------------

def _ovs(*args: str) -> subprocess.CompletedProcess[str]:
    from . import command

    return command.run(["ovs-vsctl", "--timeout=10", *args], check=False, timeout=30)


def is_ovs_bridge(name: str) -> bool:
    """Whether ``name`` is an Open vSwitch bridge (``ovs-vsctl br-exists``)."""
    import shutil

    if shutil.which("ovs-vsctl") is None:
        return False
    return _ovs("br-exists", name).returncode == 0


def ovs(*args: str) -> str:
    proc = _ovs(*args)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise ToolError(f"ovs-vsctl {' '.join(args)} failed: {reason}")
    return proc.stdout


def ovs_port_bridge(port: str) -> str | None:
    """The OVS bridge that has ``port``, or None."""
    import shutil

    if shutil.which("ovs-vsctl") is None:
        return None
    proc = _ovs("port-to-br", port)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


# --- pinned namespaces ------------------------------------------------------

def pin_path(container_id: str, pin_dir: str = PIN_DIR) -> str:
    return os.path.join(pin_dir, container_id)


def pin(container: Container, pidfd: int, pin_dir: str = PIN_DIR) -> str:
    """Bind-mount the container's network namespace to ``pin_dir/<id>``.

    The namespace then outlives the container's processes, so poststop can
    still take physical NICs out of it (a virtual link dies with its
    namespace).  A stale pin of an earlier run is replaced."""
    with container_netns(container, pidfd) as fd:
        os.makedirs(pin_dir, mode=0o700, exist_ok=True)
        target = pin_path(container.id, pin_dir)
        unpin(container.id, pin_dir)
        with open(target, "x"):
            pass
        try:
            syscalls.mount(f"/proc/self/fd/{fd}", target, None, syscalls.MS_BIND)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise
    return target


def unpin(container_id: str, pin_dir: str = PIN_DIR) -> None:
    """Undo ``pin``; nothing there is fine."""
    target = pin_path(container_id, pin_dir)
    while True:
        try:
            syscalls.umount(target, syscalls.MNT_DETACH | syscalls.UMOUNT_NOFOLLOW)
        except OSError as err:
            if err.errno in (errno.EINVAL, errno.ENOENT):
                break
            raise
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target)


@contextlib.contextmanager
def pinned_netns(container_id: str, pin_dir: str = PIN_DIR) -> Iterator[int | None]:
    """Yield an fd of the pinned namespace of ``container_id``, or None if
    there is no pin (or the file there is not a network namespace)."""
    target = pin_path(container_id, pin_dir)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        yield None
        return
    try:
        if not _is_netns(fd) or same_netns(fd):
            yield None
        else:
            yield fd
    finally:
        os.close(fd)


def _is_netns(fd: int) -> bool:
    import fcntl

    NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == syscalls.CLONE_NEWNET
    except OSError:
        return False

