"""The one place that opens netlink handles: on the host, and in a container.

The tool's process never joins another network namespace.  A handle inside a
container comes from pyroute2's ``IPRoute(netns=FD)``: pyroute2 forks a child
that calls setns, opens the netlink socket there and hands the socket back;
a netlink socket stays bound to the namespace it was created in.

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
import logging
import os
import secrets
import shutil
import signal
import string
import subprocess
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import syscalls
from .errors import ToolError

if TYPE_CHECKING:  # pragma: no cover
    from pyroute2 import IPRoute

    from .container import Container

log = logging.getLogger(__name__)

IFNAMSIZ = 16  # including the NUL: at most 15 characters
PIN_DIR = "/run/syscontainer-tools/netns"
IFF_UP = 0x1
_NAME_CHARS = string.ascii_lowercase + string.digits


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
    return prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(length))


# --- errors ---------------------------------------------------------------

def error_code(err: BaseException) -> int | None:
    """The errno of a NetlinkError or OSError, else None."""
    code = getattr(err, "code", None)
    if isinstance(code, int):
        return code
    return err.errno if isinstance(err, OSError) else None


@contextlib.contextmanager
def failing(what: str) -> Iterator[None]:
    """Turn a netlink failure inside the block into ``ToolError("what: reason")``."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        yield
    except NetlinkError as err:
        raise ToolError(f"{what}: {_strerror(err.code)}") from None


def _strerror(code: int) -> str:
    return os.strerror(code) if code else "unknown netlink error"


# --- handles --------------------------------------------------------------

def host() -> IPRoute:
    """A netlink handle in the tool's own (the host's) network namespace."""
    from pyroute2 import IPRoute

    return IPRoute()


def in_netns(nsfd: int) -> IPRoute:
    """A netlink handle inside the network namespace ``nsfd`` refers to.

    ``flags=0``: pyroute2 would otherwise create a namespace that is missing."""
    from pyroute2 import IPRoute

    return IPRoute(netns=nsfd, flags=0)


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
            signal.pidfd_send_signal(pidfd, 0)
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
    from pyroute2.netlink.exceptions import NetlinkError

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


def link_names(ipr: IPRoute) -> set[str]:
    return {str(m.get("IFLA_IFNAME")) for m in ipr.get_links()}


# --- Open vSwitch ---------------------------------------------------------

def _ovs(*args: str) -> subprocess.CompletedProcess[str]:
    from . import command

    return command.run(["ovs-vsctl", "--timeout=10", *args], check=False, timeout=30)


def is_ovs_bridge(name: str) -> bool:
    """Whether ``name`` is an Open vSwitch bridge (``ovs-vsctl br-exists``)."""
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

