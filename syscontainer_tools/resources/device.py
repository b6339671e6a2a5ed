"""Host devices in a container: add, remove, list, QoS, and re-apply at start.

A device is live in a running container when three things hold: its node
exists in the container's mount namespace (made in a forked child that
chrooted into the container, every path resolved with RESOLVE_IN_ROOT so a
symlink in the image can never redirect it to the host), the container's
device cgroup allows it (v1 ``devices.allow`` or the v2 eBPF program, see
devcgroup.py), and its QoS limits are written (qos.py).

Saved shape (``record["devices"]``)::

    {"host": "/dev/loop3", "container": "/dev/sdb", "type": "b", "major": 7,
     "minor": 3, "perm": "rwm", "mode": 432, "parent": "",
     "preallowed": "m",                 # what v1 devices.list granted before
     "unit_base": "",                   # what the systemd unit's DeviceAllow= granted before
     "udev_rule": "/run/udev/rules.d/99-syscontainer-tools-<id>@loop3.rules",
     "udev_text": "..."}

``record["qos"]``: ``{"kind": "read_bps", "host", "major", "minor", "value"}``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import posixpath
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from .. import cgroup, inroot, ns, syscalls
from ..container import Container
from ..errors import Conflict, NotFound, SpecError, ToolError
from ..state import Record
from . import blockdev, devcgroup, systemd_unit
from .blockdev import HostDevice
from .devcgroup import PERMS, DevRule, perm_union
from .qos import BlkioCgroup, QosKind, QosSpec, remove_line, update_line

log = logging.getLogger(__name__)

__all__ = ["DeviceSpec", "DeviceRef", "QosSpec", "QosKind", "add_devices", "remove_devices",
           "update_qos", "list_devices", "reapply", "poststop"]


# --- specs ------------------------------------------------------------------

def _valid_perm(text: str) -> bool:
    return bool(text) and all(c in PERMS for c in text) and len(set(text)) == len(text)


def _perm_error(spec: str, perm: str) -> SpecError:
    if not perm:
        return SpecError(f"device {spec!r}: permission is empty (use r, w and m)")
    bad = next((c for c in perm if c not in PERMS), None)
    if bad is not None:
        return SpecError(f"device {spec!r}: permission {bad!r} is not one of r, w, m")
    return SpecError(f"device {spec!r}: permission {perm!r} repeats a letter")


def _abs_clean(spec: str, which: str, path: str) -> str:
    if not path.startswith("/"):
        raise SpecError(f"device {spec!r}: {which} path {path!r} is not absolute")
    return posixpath.normpath(path).replace("//", "/")


@dataclass(frozen=True)
class DeviceSpec:
    """``HOST[:CTR][:PERM]`` of add-device."""

    host: str
    container: str
    perm: str = "rwm"

    @classmethod
    def parse(cls, text: str) -> DeviceSpec:
        parts = text.split(":")
        if len(parts) > 3:
            raise SpecError(f"device {text!r}: too many ':' (HOST[:CONTAINER][:PERMISSION])")
        host, ctr, perm = parts[0], "", "rwm"
        if len(parts) == 2:
            if _valid_perm(parts[1]):
                perm = parts[1]
            else:
                ctr = parts[1]
                if not ctr.startswith("/") and ctr and all(c.isalpha() for c in ctr):
                    raise _perm_error(text, ctr)
        elif len(parts) == 3:
            ctr, perm = parts[1], parts[2]
            if not _valid_perm(perm):
                raise _perm_error(text, perm)
        if not host:
            raise SpecError(f"device {text!r}: the host path is empty")
        host = _abs_clean(text, "host", host)
        ctr = _abs_clean(text, "container", ctr) if ctr else host
        if ctr == "/":
            raise SpecError(f"device {text!r}: the container path cannot be /")
        return cls(host, ctr, perm)


@dataclass(frozen=True)
class DeviceRef:
    """``HOST[:CTR]`` (or ``:CTR``) of remove-device."""

    host: str | None
    container: str | None

    @classmethod
    def parse(cls, text: str) -> DeviceRef:
        parts = text.split(":")
        if len(parts) > 3:
            raise SpecError(f"device {text!r}: too many ':' (HOST[:CONTAINER])")
        host = parts[0] or None
        ctr = parts[1] if len(parts) >= 2 and not (len(parts) == 2 and _valid_perm(parts[1])) \
            else None
        if len(parts) == 3 and parts[2] and not _valid_perm(parts[2]):
            raise _perm_error(text, parts[2])
        ctr = ctr or None
        if host is None and ctr is None:
            raise SpecError(f"device {text!r}: give the host path, the container path, or both")
        return cls(_abs_clean(text, "host", host) if host else None,
                   _abs_clean(text, "container", ctr) if ctr else None)

    def matches(self, item: dict[str, Any]) -> bool:
        return (self.host is None or item["host"] == self.host) and \
            (self.container is None or item["container"] == self.container)

    def __str__(self) -> str:
        return ":".join(p for p in (self.host, self.container) if p) if self.host \
            else f":{self.container}"


# --- nodes inside the container (these run in a forked child) ---------------------

@dataclass(frozen=True)
class Node:
    path: str
    kind: str
    major: int
    minor: int
    mode: int
    uid: int
    gid: int
    bind: bool = False  # bind-mount a node made on the host (user namespace), else mknod

    @property
    def fmt(self) -> int:
        return stat.S_IFBLK if self.kind == "b" else stat.S_IFCHR

    def same_device(self, st: os.stat_result) -> bool:
        return stat.S_IFMT(st.st_mode) == self.fmt and st.st_rdev == os.makedev(self.major,
                                                                               self.minor)


@dataclass
class Made:
    """What making one node did, so that it can be undone or committed."""

    created: bool = False
    backup: str | None = None
    dirs: list[str] = field(default_factory=list)


def _missing_dirs(rootfd: int, path: str) -> list[str]:
    missing: list[str] = []
    parent = posixpath.dirname(path)
    while parent != "/":
        try:
            os.close(inroot.open_in_root(rootfd, parent, os.O_PATH | os.O_DIRECTORY))
            break
        except FileNotFoundError:
            missing.append(parent)
        parent = posixpath.dirname(parent)
    return missing          # deepest first


def _lstat(name: str, dirfd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _make_nodes(nodes: Sequence[Node], clones: Sequence[int], replace: bool,
                keep_same: bool) -> list[Made]:
    """mknod each node in the container (parents made); all or nothing.

    A node with a ``source`` is a bind mount of the host's node instead (its
    detached clone in ``clones``): a user namespace mounts the container's
    /dev nodev, so a node made there could not be opened.
    An existing file at a target is refused, unless ``replace`` (it is moved
    aside, and dropped by _commit_nodes or put back by _unmake_nodes).  With
    ``keep_same`` an existing node of the same device is kept as it is."""
    os.umask(0)
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY)
    done: list[Made] = []
    assert len(nodes) == len(clones)
    try:
        for node, clone in zip(nodes, clones):
            made = Made(dirs=_missing_dirs(rootfd, node.path))
            done.append(made)
            fd, name = inroot.open_parent(rootfd, node.path, create=True,
                                          owner=(node.uid, node.gid))
            try:
                st = _lstat(name, fd)
                if st is not None:
                    if keep_same and node.same_device(st):
                        if not node.bind:  # a bind shows the host's inode: never chown that
                            os.chown(name, node.uid, node.gid, dir_fd=fd,
                                     follow_symlinks=False)
                        continue
                    if not replace:
                        raise Conflict(f"{node.path} already exists in the container",
                                       hint="use --force to replace it")
                    if stat.S_ISDIR(st.st_mode):
                        raise Conflict(f"{node.path} is a directory in the container")
                    made.backup = f".{name}.sct-old"
                    os.rename(name, made.backup, src_dir_fd=fd, dst_dir_fd=fd)
                if clone >= 0:
                    _bind_node(fd, name, clone, node.path, made)
                    continue
                os.mknod(name, node.mode | node.fmt, os.makedev(node.major, node.minor),
                         dir_fd=fd)
                made.created = True
                os.chown(name, node.uid, node.gid, dir_fd=fd, follow_symlinks=False)
            finally:
                os.close(fd)
    except BaseException:
        _undo(rootfd, nodes, done)
        raise
    finally:
        os.close(rootfd)
    return done


def _bind_node(dirfd: int, name: str, clone: int, path: str, made: Made) -> None:
    """An empty file as the mount point, the host node's clone attached on it."""
    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dirfd))
    made.created = True
    target = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        syscalls.move_mount(clone, target, path)
    finally:
        os.close(target)


def _drop_node(dirfd: int, name: str) -> None:
    """Unlink a node; a bound one is unmounted first, then its mount point goes.

    The parent is resolved inside the root and the last component is never
    followed (UMOUNT_NOFOLLOW, unlinkat)."""
    try:
        os.unlink(name, dir_fd=dirfd)
        return
    except OSError as err:
        if err.errno != errno.EBUSY:   # a mount point: the node is a bind
            raise
    os.fchdir(dirfd)
    try:
        syscalls.umount(name, syscalls.MNT_DETACH | syscalls.UMOUNT_NOFOLLOW)
    finally:
        os.chdir("/")
    st = _lstat(name, dirfd)
    if st is not None and stat.S_ISREG(st.st_mode) and st.st_size == 0:
        os.unlink(name, dir_fd=dirfd)


def _undo(rootfd: int, nodes: Sequence[Node], done: Sequence[Made]) -> None:
    for node, made in reversed(list(zip(nodes, done))):
        with contextlib.suppress(OSError):
            fd, name = inroot.open_parent(rootfd, node.path)
            try:
                if made.created:
                    st = _lstat(name, fd)
                    if st is not None and (node.same_device(st) or (
                            node.bind and stat.S_ISREG(st.st_mode) and st.st_size == 0)):
                        _drop_node(fd, name)
                if made.backup:
                    os.rename(made.backup, name, src_dir_fd=fd, dst_dir_fd=fd)
            finally:
                os.close(fd)
        for d in made.dirs:
            with contextlib.suppress(OSError):
                pfd, pname = inroot.open_parent(rootfd, d)
                try:
                    os.rmdir(pname, dir_fd=pfd)
                finally:
                    os.close(pfd)


def _unmake_nodes(nodes: Sequence[Node], done: Sequence[Made]) -> None:
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY)
    try:
        _undo(rootfd, nodes, done)
    finally:
        os.close(rootfd)


def _commit_nodes(nodes: Sequence[Node], done: Sequence[Made]) -> None:
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY)
    try:
        for node, made in zip(nodes, done):
            if made.backup:
                with contextlib.suppress(OSError):
                    fd, _ = inroot.open_parent(rootfd, node.path)
                    try:
                        os.unlink(made.backup, dir_fd=fd)
                    finally:
                        os.close(fd)
    finally:
        os.close(rootfd)


def _remove_nodes(nodes: Sequence[Node]) -> list[Node | None]:
    """Unlink each device node; returns what was there (for an undo).

    Only a device node is removed: a regular file, directory or symlink that
    took its place is left alone.  Never follows a symlink (the parent is
    resolved inside the root, the last component is not followed)."""
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY)
    gone: list[Node | None] = []
    try:
        for node in nodes:
            try:
                fd, name = inroot.open_parent(rootfd, node.path)
            except (FileNotFoundError, NotADirectoryError):
                gone.append(None)
                continue
            try:
                st = _lstat(name, fd)
                if st is None or not (stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode)):
                    gone.append(None)
                    continue
                _drop_node(fd, name)
                gone.append(Node(node.path, "b" if stat.S_ISBLK(st.st_mode) else "c",
                                 os.major(st.st_rdev), os.minor(st.st_rdev),
                                 stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                 node.bind))
            finally:
                os.close(fd)
    except BaseException:
        restore = [n for n in gone if n is not None]
        if not any(n.bind for n in restore):  # a bind needs a new clone: the parent does it
            _restore_nodes(restore, [-1] * len(restore))
        raise
    finally:
        os.close(rootfd)
    return gone


def _ensure_nodes(nodes: Sequence[Node], clones: Sequence[int]) -> None:
    """prestart: every node present; whatever else sat at a target is dropped."""
    made = _make_nodes(nodes, clones, replace=True, keep_same=True)
    _commit_nodes(nodes, made)


def _restore_nodes(nodes: Sequence[Node], clones: Sequence[int]) -> None:
    with contextlib.suppress(OSError):
        _make_nodes(nodes, clones, replace=False, keep_same=True)


# --- helpers ------------------------------------------------------------------

def _rule(item: dict[str, Any], perm: str | None = None) -> DevRule:
    return DevRule(item["type"], int(item["major"]), int(item["minor"]),
                   perm if perm is not None else item["perm"])


def _same_dev(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a["type"], int(a["major"]), int(a["minor"])) == \
        (b["type"], int(b["major"]), int(b["minor"]))


def _others_perm(items: Iterable[dict[str, Any]], item: dict[str, Any]) -> str:
    """Permissions other saved entries (or the runtime) still grant this device."""
    keep = item.get("preallowed", "")
    for other in items:
        if other is not item and _same_dev(other, item):
            keep = perm_union(keep, other["perm"])
    return keep


def _node(item: dict[str, Any], lv: _Live) -> Node:
    return Node(item["container"], item["type"], int(item["major"]), int(item["minor"]),
                int(item.get("mode", 0o660)), *lv.owner, bind=lv.userns)


def add_line(item: dict[str, Any], label: str) -> str:
    return f"Add device ({item['host']}) to container({label},{item['container']}) done."


def remove_device_line(item: dict[str, Any], label: str) -> str:
    return f"Remove device ({item['host']}) from container({label},{item['container']}) done."


@dataclass
class _Live:
    """A running container's handles for one command."""

    container: Container
    pidfd: int
    owner: tuple[int, int]
    cgroups: devcgroup.DeviceCgroups
    userns: bool
    unit: systemd_unit.Unit | None = None     # systemd's unit of the container's cgroup

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return ns.run_in(self.pidfd, self.container.pid, fn, *args, flags=ns.MNT,
                         rootfs=self.container.rootfs, fsids=self.owner)

    def run_nodes(self, fn: Callable[..., Any], nodes: Sequence[Node], *args: Any) -> Any:
        """``fn(nodes, clones, *args)`` in the container, with a detached
        mount of a host-made node for every node that is bound, not made."""
        with contextlib.ExitStack() as stack:
            clones = [stack.enter_context(_host_node(n)) if n.bind else -1 for n in nodes]
            return self.run(fn, nodes, clones, *args)


@contextlib.contextmanager
def _host_node(node: Node) -> Iterator[int]:
    """A detached mount of a device node made on the host for a container
    with a user namespace.

    The container's own /dev is a tmpfs its user namespace mounted, and the
    kernel refuses to open device nodes on such mounts (implicit nodev).
    So the node -- the host's type, major:minor and mode, owned by the
    container's root -- is made in a private directory on the host's /dev,
    cloned with open_tree, and the clone is attached in the container; the
    host-side name is removed again when the command ends."""
    workdir = tempfile.mkdtemp(prefix=".syscontainer-tools-", dir="/dev")
    path = os.path.join(workdir, "node")
    try:
        os.mknod(path, node.mode | node.fmt, os.makedev(node.major, node.minor))
        os.chmod(path, node.mode)
        os.chown(path, node.uid, node.gid)
        fd = syscalls.open_tree(syscalls.AT_FDCWD, path,
                                syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.rmdir(workdir)


def _in_userns(pid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/user").st_ino != os.stat("/proc/self/ns/user").st_ino
    except OSError:
        return False


def _device_cgroups(pid: int) -> tuple[devcgroup.DeviceCgroups, systemd_unit.Unit | None]:
    """Where the container's device access is decided; under systemd, its
    unit too (whose own device program is then systemd's to rebuild)."""
    unit = systemd_unit.for_cgroup(cgroup.for_pid(pid).v2)
    leave = systemd_unit.SYSTEMD_PROGRAMS if unit else ()
    return devcgroup.DeviceCgroups.for_pid(pid, leave), unit


_Blkio = Union[BlkioCgroup, systemd_unit.UnitIO]  # noqa: UP007  (run time: Python 3.9)


def _blkio(pid: int) -> _Blkio:
    """Where QoS goes: the cgroup files, or systemd's unit properties."""
    unit = systemd_unit.for_cgroup(cgroup.for_pid(pid).v2)
    return systemd_unit.UnitIO(unit) if unit else BlkioCgroup.for_pid(pid)


@contextlib.contextmanager
def _live(container: Container) -> Any:
    with container.init_process() as pidfd:
        cgs, unit = _device_cgroups(container.pid)
        yield _Live(container, pidfd, container.host_ids(), cgs, _in_userns(container.pid),
                    unit)


# --- expanding the request ----------------------------------------------------

def _item(spec_host: str, ctr: str, perm: str, dev: HostDevice, parent: str = "") -> dict[str, Any]:
    return {"host": spec_host, "container": ctr, "type": dev.kind, "major": dev.major,
            "minor": dev.minor, "perm": perm, "mode": dev.mode, "parent": parent}


def expand(specs: Sequence[DeviceSpec], follow_partition: bool,
           saved: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The record items add-device would save: one per spec, plus each
    whole disk's partitions with ``follow_partition``."""
    items: list[dict[str, Any]] = []
    disks = {i["host"]: i for i in saved if i.get("type") == "b" and not i.get("parent")}
    for spec in specs:
        dev = HostDevice.probe(spec.host)
        info = dev.block
        parent = ""
        if info is not None and info.partition and info.disk:
            for host, disk in list(disks.items()):
                dinfo = blockdev.block_info(int(disk["major"]), int(disk["minor"]))
                if dinfo is not None and dinfo.name == info.disk:
                    parent = host
        item = _item(spec.host, spec.container, spec.perm, dev, parent)
        if any(i["host"] == item["host"] for i in items):
            continue
        items.append(item)
        if info is None or info.partition:
            if follow_partition and dev.kind == "c":
                raise SpecError(f"device {spec.host!r}: a char device has no partitions "
                                "(--follow-partition)")
            continue
        disks[spec.host] = item
        if not follow_partition:
            continue
        for _name, node in blockdev.partitions(info):
            pdev = HostDevice.probe(node)
            pinfo = pdev.block
            if pinfo is None:
                continue
            suffix = blockdev.partition_suffix(info.name, pinfo)
            if any(i["host"] == node for i in items):
                continue
            items.append(_item(node, spec.container + suffix, spec.perm, pdev, spec.host))
    return items


def _check_conflicts(items: Sequence[dict[str, Any]], saved: Sequence[dict[str, Any]]) -> None:
    seen: dict[str, str] = {}
    for item in items:
        for old in saved:
            if old["host"] == item["host"]:
                raise Conflict(f"device {item['host']} is already added to the container "
                               f"(as {old['container']})")
            if old["container"] == item["container"]:
                raise Conflict(f"{item['container']} in the container is already taken by "
                               f"device {old['host']}")
        if item["container"] in seen:
            raise Conflict(f"{item['host']} and {seen[item['container']]} both go to "
                           f"{item['container']}")
        seen[item["container"]] = item["host"]


def _check_qos(qos: Sequence[QosSpec], devices: Sequence[dict[str, Any]]) -> None:
    for q in qos:
        if not any(d["type"] == "b" and (int(d["major"]), int(d["minor"])) == (q.major, q.minor)
                   for d in devices):
            raise NotFound(f"device {q.path} was not added to the container and is not in "
                           "the add-device arguments", hint="add it first with add-device")


def _udev_rule(container: Container, item: dict[str, Any],
               command: Sequence[str] | None) -> None:
    """Give a whole disk its udev rule (path and text saved in the item)."""
    if command is None or item["type"] != "b" or item.get("parent"):
        return
    info = blockdev.block_info(int(item["major"]), int(item["minor"]))
    if info is None or info.partition:
        return
    item["udev_rule"] = blockdev.rule_path(container.id, info.name)
    item["udev_text"] = blockdev.rule_text(container.id, info.name, item["container"],
                                           item["perm"], command)


# --- QoS in the record and the cgroup ------------------------------------------

def _qos_apply(stack: contextlib.ExitStack, blkio: _Blkio | None,
               record: Record, specs: Sequence[QosSpec]) -> list[str]:
    lines = []
    order = list(QosKind)
    for spec in sorted(specs, key=lambda s: order.index(s.kind)):
        saved = next((q for q in record["qos"] if q["kind"] == spec.kind.key and
                      (int(q["major"]), int(q["minor"])) == (spec.major, spec.minor)), None)
        before = int(saved["value"]) if saved else 0
        if blkio is not None:
            blkio.apply(spec.kind, spec.major, spec.minor, spec.value, spec.path)
            stack.callback(_quiet, blkio.apply, spec.kind, spec.major, spec.minor, before,
                           spec.path)
        if saved is not None:
            record["qos"].remove(saved)
        if spec.value:
            record["qos"].append(spec.item())
        lines.append(update_line(spec.kind, spec.path, spec.value))
    return lines


def _qos_drop(stack: contextlib.ExitStack, blkio: _Blkio | None, record: Record,
              item: dict[str, Any]) -> list[str]:
    lines = []
    order = [k.key for k in QosKind]
    mine = [q for q in record["qos"] if q["host"] == item["host"] or
            (item["type"] == "b" and (int(q["major"]), int(q["minor"])) ==
             (int(item["major"]), int(item["minor"])))]
    for q in sorted(mine, key=lambda q: order.index(q["kind"])):
        kind = QosKind.from_key(q["kind"])
        if blkio is not None:
            blkio.apply(kind, int(q["major"]), int(q["minor"]), 0, q["host"])
            stack.callback(_quiet, blkio.apply, kind, int(q["major"]), int(q["minor"]),
                           int(q["value"]), q["host"])
        record["qos"].remove(q)
        lines.append(remove_line(kind, item["host"]))
    return lines


def _quiet(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except (ToolError, OSError) as err:
        log.warning("rollback step failed: %s", err)


# --- the commands ----------------------------------------------------------------

def add_devices(container: Container, record: Record, specs: Sequence[DeviceSpec], *,
                qos: Sequence[QosSpec] = (), follow_partition: bool = False,
                force: bool = False, update_config_only: bool = False, label: str | None = None,
                udev_command: Sequence[str] | None = None) -> list[str]:
    """Add host devices (and their QoS) to a container; returns the result lines.

    Live on a running container unless ``update_config_only``; always saved
    in ``record``.  All or nothing: a failure rolls back every device already
    applied and leaves ``record`` unchanged.  ``udev_command`` (the CLI
    prefix a udev rule runs) gives whole disks a rule for later partitions."""
    label = label or container.name
    items = expand(specs, follow_partition, record["devices"])
    _check_conflicts(items, record["devices"])
    _check_qos(qos, [*record["devices"], *items])
    live = container.running and not update_config_only
    snapshot = _snapshot(record)
    for item in items:
        _udev_rule(container, item, udev_command)
    lines: list[str] = []
    try:
        if not live:
            record["devices"].extend(items)
            lines += [add_line(i, label) for i in items]
            with contextlib.ExitStack() as stack:
                lines += _qos_apply(stack, None, record, qos)
                stack.pop_all()
            return lines
        with _live(container) as lv, contextlib.ExitStack() as stack:
            nodes = [_node(i, lv) for i in items]
            made = lv.run_nodes(_make_nodes, nodes, force, False)
            stack.callback(_quiet, lv.run, _unmake_nodes, nodes, made)
            _allow(stack, lv, record, items)
            for item in items:
                if "udev_rule" in item and blockdev.write_rule(item["udev_rule"],
                                                               item["udev_text"]):
                    stack.callback(blockdev.remove_rule, item["udev_rule"])
            record["devices"].extend(items)
            lines += [add_line(i, label) for i in items]
            if qos:
                lines += _qos_apply(stack, _blkio(container.pid), record, qos)
            stack.pop_all()
            if any(m.backup for m in made):
                _quiet(lv.run, _commit_nodes, nodes, made)
        return lines
    except BaseException:
        _restore(record, snapshot)
        raise


def _allow(stack: contextlib.ExitStack, lv: _Live, record: Record,
           items: Sequence[dict[str, Any]]) -> None:
    """Grant ``items`` in the device cgroup(s), undo pushed on ``stack``."""
    if lv.cgroups.v1:
        v1 = lv.cgroups.v1
        for item in items:
            rule = _rule(item)
            item["preallowed"] = devcgroup.v1_preallowed(v1, rule)
            devcgroup.v1_allow(v1, rule)
            stack.callback(_quiet, devcgroup.v1_deny, v1, rule,
                           _others_perm([*record["devices"], *items], item))
    if lv.unit:
        undo = systemd_unit.allow_items(lv.unit, record["devices"], items)
        stack.callback(_quiet, systemd_unit.set_device_allow, lv.unit, undo)
    if lv.cgroups.v2:
        before = [_rule(i) for i in record["devices"]]
        lv.cgroups.v2_sync([*before, *(_rule(i) for i in items)])
        stack.callback(_quiet, lv.cgroups.v2_sync, before)


def remove_devices(container: Container, record: Record, refs: Sequence[DeviceRef], *,
                   follow_partition: bool = False, label: str | None = None) -> list[str]:
    """Remove saved devices (matched by host and/or container path) from a
    container: node unlinked inside, cgroup permission and QoS taken back,
    udev rule dropped, record updated.  All or nothing."""
    label = label or container.name
    chosen: list[dict[str, Any]] = []
    for ref in refs:
        found = [i for i in record["devices"] if ref.matches(i)]
        if not found:
            raise NotFound(f"device pair ({ref}) was not added by syscontainer-tools")
        for item in found:
            if item not in chosen:
                chosen.append(item)
            if follow_partition:
                chosen += [p for p in record["devices"]
                           if p.get("parent") == item["host"] and p not in chosen]
    snapshot = _snapshot(record)
    lines: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            lv_cm = _live(container) if container.running else contextlib.nullcontext(None)
            lv = stack.enter_context(lv_cm)
            remaining = [i for i in record["devices"] if i not in chosen]
            blkio = None
            if lv is not None:
                nodes = [_node(i, lv) for i in chosen]
                gone = lv.run(_remove_nodes, nodes)
                stack.callback(_quiet, lv.run_nodes, _restore_nodes, [g for g in gone if g])
                if lv.cgroups.v1:
                    for item in chosen:
                        keep = _others_perm(remaining, item)
                        keep = perm_union(keep, item.get("preallowed", ""))
                        devcgroup.v1_deny(lv.cgroups.v1, _rule(item), keep)
                        stack.callback(_quiet, devcgroup.v1_allow, lv.cgroups.v1, _rule(item))
                if lv.cgroups.v2:
                    lv.cgroups.v2_sync([_rule(i) for i in remaining])
                    stack.callback(_quiet, lv.cgroups.v2_sync,
                                   [_rule(i) for i in record["devices"]])
                if lv.unit:
                    undo = systemd_unit.revoke_items(lv.unit, remaining, chosen)
                    stack.callback(_quiet, systemd_unit.set_device_allow, lv.unit, undo)
                if any(q for q in record["qos"]):
                    blkio = _blkio(container.pid)
            for item in chosen:
                if item.get("udev_rule") and blockdev.remove_rule(item["udev_rule"]):
                    stack.callback(blockdev.write_rule, item["udev_rule"], item["udev_text"])
            for item in chosen:
                lines.append(remove_device_line(item, label))
                lines += _qos_drop(stack, blkio, record, item)
                record["devices"].remove(item)
            stack.pop_all()
        return lines
    except BaseException:
        _restore(record, snapshot)
        raise


def update_qos(container: Container, record: Record, qos: Sequence[QosSpec], *,
               update_config_only: bool = False) -> list[str]:
    """Set QoS limits of devices already added (value 0 removes a limit)."""
    if not qos:
        raise SpecError("give at least one QoS option (--device-read-bps, --device-write-bps, "
                        "--device-read-iops, --device-write-iops, --blkio-weight-device)")
    _check_qos(qos, record["devices"])
    snapshot = _snapshot(record)
    try:
        with contextlib.ExitStack() as stack:
            blkio = _blkio(container.pid) \
                if container.running and not update_config_only else None
            lines = _qos_apply(stack, blkio, record, qos)
            stack.pop_all()
        return lines
    except BaseException:
        _restore(record, snapshot)
        raise


def list_devices(record: Record, sub_partition: bool = False) -> list[dict[str, Any]]:
    """Rows for list-device: whole devices, and partitions with ``sub_partition``.

    Keys follow the original tool's JSON (PathOnHost, PathInContainer, ...)."""
    rows = []
    for item in record["devices"]:
        if item.get("parent") and not sub_partition:
            continue
        qos = [f"{q['kind']}={q['value']}" for q in record["qos"] if q["host"] == item["host"]]
        rows.append({"PathOnHost": item["host"], "PathInContainer": item["container"],
                     "Major": item["major"], "Minor": item["minor"],
                     "CgroupPermissions": item["perm"], "Type": item["type"],
                     "Parent": item.get("parent", ""), "Qos": " ".join(qos)})
    return rows


LIST_COLUMNS = [("PathOnHost", "Host path"), ("PathInContainer", "Container path"),
                ("Major", "Major"), ("Minor", "Minor"), ("CgroupPermissions", "Permissions"),
                ("Type", "Type"), ("Qos", "QoS")]


# --- hooks -------------------------------------------------------------------------

def reapply(container: Container, pidfd: int, record: Record) -> list[str]:
    """prestart: re-create every saved device in a freshly started container.

    Nodes (an identical node already there is kept, anything else at the
    target is replaced), cgroup permissions, udev rules and QoS.  A host
    device whose major/minor changed since it was saved is applied with the
    new numbers and ``record`` is updated in place (call this inside
    ``store.transaction()`` to keep that).  Saved devices whose host path is
    gone are skipped and then reported in one ToolError naming them, after
    everything else was applied; the hook decides whether that fails the
    start.  Returns log lines."""
    lines: list[str] = []
    missing: list[str] = []
    present: list[dict[str, Any]] = []
    for item in record["devices"]:
        try:
            dev = HostDevice.probe(item["host"])
        except SpecError:
            missing.append(f"{item['host']} (container {item['container']})")
            continue
        if (dev.kind, dev.major, dev.minor) != (item["type"], int(item["major"]),
                                                int(item["minor"])):
            msg = (f"device {item['host']} is now {dev.kind} {dev.major}:{dev.minor} "
                   f"(saved as {item['type']} {item['major']}:{item['minor']})")
            log.warning("%s", msg)
            lines.append(msg)
            for q in record["qos"]:
                if q["host"] == item["host"]:
                    q["major"], q["minor"] = dev.major, dev.minor
            item.update(type=dev.kind, major=dev.major, minor=dev.minor)
        item["mode"] = dev.mode
        present.append(item)
    if present:
        cgs, unit = _device_cgroups(container.pid)
        lv = _Live(container, pidfd, container.host_ids(), cgs, _in_userns(container.pid), unit)
        nodes = [_node(i, lv) for i in present]
        lv.run_nodes(_ensure_nodes, nodes)
        if cgs.v1:
            for item in present:
                rule = _rule(item)
                item["preallowed"] = devcgroup.v1_preallowed(cgs.v1, rule)
                devcgroup.v1_allow(cgs.v1, rule)
        if unit:
            for item in present:
                item.pop("unit_base", None)      # a new unit: what it grants now is the base
            systemd_unit.allow_items(unit, [], present)
        cgs.v2_sync([_rule(i) for i in present])
        for item in present:
            if item.get("udev_rule") and item.get("udev_text"):
                blockdev.write_rule(item["udev_rule"], item["udev_text"])
            lines.append(f"device {item['host']} -> {item['container']} "
                         f"({item['type']} {item['major']}:{item['minor']} {item['perm']})")
    hosts = {i["host"] for i in present}
    qos = [q for q in record["qos"] if q["host"] in hosts]
    if qos:
        blkio = _blkio(container.pid)
        for q in qos:
            kind = QosKind.from_key(q["kind"])
            blkio.apply(kind, int(q["major"]), int(q["minor"]), int(q["value"]), q["host"])
            lines.append(update_line(kind, q["host"], int(q["value"])))
    if missing:
        raise NotFound("saved device(s) missing on the host: " + ", ".join(missing))
    return lines


def poststop(container: Container, record: Record) -> list[str]:
    """poststop: remove the udev rules of the container's disks (never raises
    for a rule already gone).  Saved state stays for the next start."""
    lines = []
    paths = {item["udev_rule"] for item in record["devices"] if item.get("udev_rule")}
    paths.update(blockdev.rules_of(container.id))
    for path in sorted(paths):
        try:
            if blockdev.remove_rule(path):
                lines.append(f"removed udev rule {path}")
        except OSError as err:
            log.warning("cannot remove udev rule %s: %s", path, err)
    return lines


# --- record snapshots (rollback of in-place changes) ------------------------------

def _snapshot(record: Record) -> dict[str, list[dict[str, Any]]]:
    import copy

    return {k: copy.deepcopy(record[k]) for k in ("devices", "qos")}


def _restore(record: Record, snap: dict[str, list[dict[str, Any]]]) -> None:
    for key, items in snap.items():
        record[key] = items
