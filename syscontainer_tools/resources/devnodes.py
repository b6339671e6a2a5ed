"""Device nodes inside a container, made and removed in a forked child.

The child joins the container's mount namespace and chroots into it (see
``ns.run_in``); every path is resolved with RESOLVE_IN_ROOT (``inroot``) so a
symlink in the image can never redirect the work to the host.  In a
container with its own user namespace a node made there could not be opened
(its /dev is mounted nodev), so the host's node is made on the host and a
detached clone of it is bind-mounted instead (``host_node``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from .. import inroot, mounts, ns, syscalls, undo
from ..container import Container
from ..errors import Conflict
from . import devcgroup, systemd_unit
from .devspec import Device

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any


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


def make_nodes(procfd: int, nodes: Sequence[Node], clones: Sequence[int], replace: bool,
               keep_same: bool) -> list[Made]:
    """mknod each node in the container (parents made); all or nothing.

    A node with a ``source`` is a bind mount of the host's node instead (its
    detached clone in ``clones``): a user namespace mounts the container's
    /dev nodev, so a node made there could not be opened.
    An existing file at a target is refused, unless ``replace`` (it is moved
    aside, and dropped by commit_nodes or put back by unmake_nodes).  With
    ``keep_same`` an existing node of the same device is kept as it is."""
    os.umask(0)
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY)
    done: list[Made] = []
    try:
        if len(nodes) != len(clones):
            raise ValueError("one clone (or -1) per node")
        for node, clone in zip(nodes, clones):  # noqa: B905 - no strict= before 3.10
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
        _undo(procfd, rootfd, nodes, done)
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


def _drop_node(procfd: int, dirfd: int, name: str) -> None:
    """Unlink a node; a bound one is unmounted first, then its mount point goes.

    The parent is resolved inside the root and the last component is never
    followed (O_NOFOLLOW, unlinkat); the unmount goes through the mount's own
    fd (``mounts.umount_fd``)."""
    try:
        os.unlink(name, dir_fd=dirfd)
        return
    except OSError as err:
        if err.errno != errno.EBUSY:   # a mount point: the node is a bind
            raise
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        mounts.umount_fd(procfd, fd, name)
    finally:
        os.close(fd)
    st = _lstat(name, dirfd)
    if st is not None and stat.S_ISREG(st.st_mode) and st.st_size == 0:
        os.unlink(name, dir_fd=dirfd)


def _undo(procfd: int, rootfd: int, nodes: Sequence[Node], done: Sequence[Made]) -> None:
    for node, made in reversed(list(zip(nodes, done))):  # noqa: B905
        undo.quietly(f"take back {node.path}", _take_back, procfd, rootfd, node, made)
        for d in made.dirs:
            undo.quietly(f"remove directory {d}", _rmdir_in, rootfd, d)


def _take_back(procfd: int, rootfd: int, node: Node, made: Made) -> None:
    """Drop the node this command made at ``node.path`` (not one that has
    changed since), and put back what it moved aside there."""
    fd, name = inroot.open_parent(rootfd, node.path)
    try:
        if made.created:
            st = _lstat(name, fd)
            if st is not None and (node.same_device(st) or (
                    node.bind and stat.S_ISREG(st.st_mode) and st.st_size == 0)):
                _drop_node(procfd, fd, name)
        if made.backup:
            os.rename(made.backup, name, src_dir_fd=fd, dst_dir_fd=fd)
    finally:
        os.close(fd)


def _rmdir_in(rootfd: int, path: str) -> None:
    fd, name = inroot.open_parent(rootfd, path)
    try:
        os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)


def unmake_nodes(procfd: int, nodes: Sequence[Node], done: Sequence[Made]) -> None:
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY)
    try:
        _undo(procfd, rootfd, nodes, done)
    finally:
        os.close(rootfd)


def commit_nodes(procfd: int, nodes: Sequence[Node], done: Sequence[Made]) -> None:
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY)
    try:
        for node, made in zip(nodes, done):  # noqa: B905
            if made.backup:
                with contextlib.suppress(OSError):
                    fd, _ = inroot.open_parent(rootfd, node.path)
                    try:
                        os.unlink(made.backup, dir_fd=fd)
                    finally:
                        os.close(fd)
    finally:
        os.close(rootfd)


def remove_nodes(procfd: int, nodes: Sequence[Node]) -> list[Node | None]:
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
                _drop_node(procfd, fd, name)
                gone.append(Node(node.path, "b" if stat.S_ISBLK(st.st_mode) else "c",
                                 os.major(st.st_rdev), os.minor(st.st_rdev),
                                 stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                 node.bind))
            finally:
                os.close(fd)
    except BaseException:
        restore = [n for n in gone if n is not None]
        if not any(n.bind for n in restore):  # a bind needs a new clone: the parent does it
            undo.quietly("put the nodes back", restore_nodes, procfd, restore,
                         [-1] * len(restore))
        raise
    finally:
        os.close(rootfd)
    return gone


def ensure_nodes(procfd: int, nodes: Sequence[Node], clones: Sequence[int]) -> None:
    """prestart: every node present; whatever else sat at a target is dropped."""
    made = make_nodes(procfd, nodes, clones, replace=True, keep_same=True)
    commit_nodes(procfd, nodes, made)


def restore_nodes(procfd: int, nodes: Sequence[Node], clones: Sequence[int]) -> None:
    """Undo of a removal: the nodes made again (run as an undo step, quietly)."""
    make_nodes(procfd, nodes, clones, replace=False, keep_same=True)


@dataclass
class Live:
    """A running container's handles for one command."""

    container: Container
    pidfd: int
    owner: tuple[int, int]
    cgroups: devcgroup.DeviceCgroups
    userns: bool
    procfd: int          # the host's /proc (mounts.host_proc), for unmounting by fd
    unit: systemd_unit.Unit | None = None     # systemd's unit of the container's cgroup

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(procfd, *args)`` in the container's mount namespace and root."""
        return ns.run_in(self.pidfd, self.container.pid, fn, self.procfd, *args, flags=ns.MNT,
                         rootfs=self.container.rootfs, fsids=self.owner)

    def run_nodes(self, fn: Callable[..., Any], nodes: Sequence[Node], *args: Any) -> Any:
        """``fn(procfd, nodes, clones, *args)`` in the container, with a
        detached mount of a host-made node for every node that is bound,
        not made."""
        with contextlib.ExitStack() as stack:
            clones = [stack.enter_context(host_node(n)) if n.bind else -1 for n in nodes]
            return self.run(fn, nodes, clones, *args)


@contextlib.contextmanager
def host_node(node: Node) -> Iterator[int]:
    """A detached mount of a device node made on the host for a container
    with a user namespace.

    The container's own /dev is a tmpfs its user namespace mounted, and the
    kernel refuses to open device nodes on such mounts (implicit nodev).
    So the node -- the host's type, major:minor and mode, owned by the
    container's root -- is made in a private directory on the host's /dev,
    cloned with open_tree, and the clone is attached in the container; the
    host-side name is removed again when the command ends."""
    import tempfile  # only for containers with a user namespace

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


def in_userns(pid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/user").st_ino != os.stat("/proc/self/ns/user").st_ino
    except OSError:
        return False


@contextlib.contextmanager
def live(container: Container) -> Iterator[Live]:
    with container.init_process() as pidfd, mounts.host_proc() as procfd:
        cgroups, unit = systemd_unit.device_cgroups(container.pid)
        yield Live(container, pidfd, container.host_ids(), cgroups, in_userns(container.pid),
                   procfd, unit)




def node_for(device: Device, lv: Live) -> Node:
    """The node ``device`` needs in the container, owned by its root."""
    return Node(device.container, device.type, device.major, device.minor, device.mode,
                *lv.owner, bind=lv.userns)
