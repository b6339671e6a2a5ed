"""Bind a host file or directory into a container's mount namespace, and out again.

The new mount API carries a mount from one namespace into another without a
shared "tunnel" directory:

1. in this (host) process, ``open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)`` clones
   the source into a detached mount tree held by a file descriptor, and
   ``mount_setattr`` makes it read-only and sets its propagation while it is
   still detached (so it is never visible read-write);
2. a child forked by :func:`ns.run_in` (which inherits the descriptor) joins the
   container's mount namespace, resolves the target with openat2
   (RESOLVE_IN_ROOT) -- a symlink planted in the container resolves inside
   the container's root, never onto the host -- creates the mount point if
   missing, and attaches the tree there with ``move_mount``.

Unbinding resolves the target the same way, checks that what is mounted
there is the bind of the host source (same device and inode, and a mount
root), and unmounts exactly that mount through ``/proc/self/fd/N`` of the
resolved descriptor (read through the host's procfs: the container's procfs
cannot see the helper process).  The unmount is lazy (MNT_DETACH): the
helper's own descriptor keeps the mount busy, and so may processes in the
container.  Nothing is ever deleted, neither on the host nor in the container.

Kernel needs: open_tree/move_mount (Linux 5.2).  Without mount_setattr
(Linux 5.2-5.11) read-only and propagation are set with mount(2) right after
attaching, read-only on the top mount only.  Before 5.2 a live bind is refused
with a clear error.

At an OCI prestart hook runc has not pivoted into the rootfs yet: the init's
root is still the host's, and the container's root is the ``rootfs``
directory.  The child finds the container root by comparing device and inode
with the rootfs seen from the host.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from . import ns, syscalls
from .errors import Conflict, ToolError
from .inroot import open_in_root, open_parent
from .log import get_logger

log = get_logger(__name__)

Ident = tuple[int, int]

_STATVFS_KEEP = (
    (os.ST_NOSUID, syscalls.MS_NOSUID), (os.ST_NODEV, syscalls.MS_NODEV),
    (os.ST_NOEXEC, syscalls.MS_NOEXEC), (os.ST_NOATIME, 0x400),
    (os.ST_NODIRATIME, 0x800), (os.ST_RELATIME, 1 << 21),
)


@dataclass(frozen=True)
class Bind:
    """A host path to bind at ``target`` (a path as the container sees it)."""

    source: str
    target: str
    readonly: bool = False
    propagation: int = syscalls.MS_SLAVE   # MS_SLAVE, MS_PRIVATE or MS_SHARED
    recursive: bool = True                 # propagation for the submounts too


def _ident(st: os.stat_result) -> Ident:
    return (st.st_dev, st.st_ino)


def source_ident(path: str) -> Ident | None:
    try:
        return _ident(os.stat(path))
    except OSError:
        return None


# --- host side ---------------------------------------------------------------

def open_source(bind: Bind) -> tuple[int, bool]:
    """Clone the host source into a detached tree; return (fd, attrs_pending).

    ``attrs_pending`` is True where the kernel has no mount_setattr: the
    child then sets read-only and propagation after attaching."""
    flags = syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC | syscalls.AT_RECURSIVE
    try:
        fd = syscalls.open_tree(syscalls.AT_FDCWD, bind.source, flags)
    except OSError as err:
        if err.errno == errno.ENOSYS:
            raise ToolError("this kernel has no open_tree/move_mount, which a live bind into "
                            "a running container needs (Linux 5.2 or later)",
                            hint="use --update-config-only: the path is then mounted by "
                                 "the prestart hook on a kernel that has them") from None
        raise
    try:
        if bind.readonly:
            syscalls.mount_setattr(fd, bind.source, attr_set=syscalls.MOUNT_ATTR_RDONLY,
                                   recursive=True)
        if bind.propagation:
            syscalls.mount_setattr(fd, bind.source, propagation=bind.propagation,
                                   recursive=bind.recursive)
    except OSError as err:
        if err.errno != errno.ENOSYS:
            os.close(fd)
            raise
        log.debug("no mount_setattr: setting attributes of %s after attaching", bind.source)
        return fd, True
    except BaseException:
        os.close(fd)
        raise
    return fd, False


def bind_into(pidfd: int, pid: int, bind: Bind, *, rootfs: str | None = None,
              owner: tuple[int, int] | None = None) -> bool:
    """Bind ``bind.source`` at ``bind.target`` in the mount namespace of the
    process ``pidfd``/``pid``.  Missing mount points are created (owned by
    ``owner``, host ids).  Return False when that bind is already there."""
    tree, pending = open_source(bind)
    try:
        with host_proc() as proc:
            is_dir = stat.S_ISDIR(os.fstat(tree).st_mode)
            return ns.run_in(pidfd, pid, _attach, tree, proc, bind, is_dir,
                             owner, _ident(os.fstat(tree)), pending, rootfs=rootfs, fsids=owner)
    finally:
        os.close(tree)  # a tree that was not attached is dissolved here


def bind_all_into(pidfd: int, pid: int, binds: list[Bind], *, rootfs: str | None = None,
                  owner: tuple[int, int] | None = None) -> list[bool | OSError]:
    """``bind_into`` for each of ``binds`` in one helper process (one fork
    and one entry into the namespace for all of them, as a prestart
    re-applies them).  One result per bind tried, in order: True (attached),
    False (already there), or the OSError that stopped it, the last result
    then; the binds after a failure are not tried."""
    trees: list[int] = []
    items = []
    opened: OSError | None = None
    try:
        for bind in binds:
            try:
                tree, pending = open_source(bind)
            except OSError as err:
                opened = err
                break
            trees.append(tree)
            st = os.fstat(tree)
            items.append((tree, bind, stat.S_ISDIR(st.st_mode), _ident(st), pending))
        results: list[bool | OSError] = []
        if items:
            with host_proc() as proc:
                results = ns.run_in(pidfd, pid, _attach_all, proc, items, owner,
                                    rootfs=rootfs, fsids=owner)
        if opened is not None and len(results) == len(items) and not any(
                isinstance(r, OSError) for r in results):
            results.append(opened)
        return results
    finally:
        for tree in trees:
            os.close(tree)  # a tree that was not attached is dissolved here


def _attach_all(proc: int, items: list[tuple[int, Bind, bool, Ident, bool]],
                owner: tuple[int, int] | None) -> list[bool | OSError]:
    results: list[bool | OSError] = []
    for tree, bind, is_dir, source, pending in items:
        try:
            results.append(_attach(tree, proc, bind, is_dir, owner, source, pending))
        except OSError as err:
            results.append(err)
            break
    return results


def unbind_from(pidfd: int, pid: int, bind: Bind, *, rootfs: str | None = None) -> bool:
    """Unmount the bind of ``bind.source`` at ``bind.target`` in the process's
    mount namespace.  Return False when nothing is mounted there (already
    gone); raise Conflict when a different mount is there."""
    with host_proc() as proc:
        return ns.run_in(pidfd, pid, _detach, proc, bind, source_ident(bind.source),
                         rootfs=rootfs)


# --- shared mechanics (also lxcfs_toolkit's) ----------------------------------------

@contextlib.contextmanager
def host_proc() -> Iterator[int]:
    """An O_PATH fd of the host's /proc, opened before a child joins a
    container: ``umount_fd`` reaches the child's own fds through it (the
    container's procfs cannot see the helper process)."""
    fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def umount_fd(procfd: int, fd: int, what: str | None = None) -> None:
    """Lazily unmount exactly the mount ``fd`` is the root of, through
    ``/proc/self/fd/N`` of ``procfd``: no path walk, so never a path the
    container could swap under us.  An OSError names ``what``."""
    os.fchdir(procfd)
    try:
        syscalls.umount(f"self/fd/{fd}", syscalls.MNT_DETACH)
    except OSError as err:
        raise OSError(err.errno, err.strerror, what) from None
    finally:
        os.chdir("/")


def make_mount_point(rootfd: int, path: str, *, is_dir: bool,
                     owner: tuple[int, int] | None = None) -> int:
    """Open the mount point ``path`` inside the root ``rootfd`` (an O_PATH fd),
    creating it -- and missing parents -- where it is missing: a directory
    (mode 755) or an empty file (644), owned by ``owner`` (host ids), the way
    a bind mount (``-v``) makes one.  Every component is resolved inside the
    root (openat2 RESOLVE_IN_ROOT), so a symlink in the container can never
    place it on the host."""
    try:
        return open_in_root(rootfd, path)
    except FileNotFoundError:
        pass
    parent, name = open_parent(rootfd, path, create=True, owner=owner)
    try:
        try:
            if is_dir:
                os.mkdir(name, 0o755, dir_fd=parent)
            else:
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                                 0o644, dir_fd=parent))
            if owner is not None:
                os.chown(name, *owner, dir_fd=parent, follow_symlinks=False)
        except FileExistsError:
            pass  # made meanwhile, or a dangling symlink: the open below tells
        return open_in_root(rootfd, path)
    finally:
        os.close(parent)


def _target(rootfd: int, path: str, is_dir: bool, owner: tuple[int, int] | None) -> int:
    """Open (creating if missing) the mount point ``path`` inside the root."""
    try:
        fd = make_mount_point(rootfd, path, is_dir=is_dir, owner=owner)
    except OSError as err:
        raise OSError(err.errno, f"cannot create the mount point {path} in the container: "
                      f"{err.strerror}") from None
    mode = os.fstat(fd).st_mode
    if is_dir != stat.S_ISDIR(mode):
        os.close(fd)
        what = "a directory" if is_dir else "a file"
        raise ToolError(f"{path} in the container is not {what} like its host source")
    return fd


def _is_bind_of(fd: int, source: Ident | None, what: str) -> bool:
    root = syscalls.is_mount_root(fd, what)
    if root is False:
        return False
    return source is None or _ident(os.fstat(fd)) == source


def _set_attrs_late(proc: int, tree: int, bind: Bind) -> None:
    """mount(2) fallback for kernels without mount_setattr (after attaching)."""
    os.fchdir(proc)
    path = f"self/fd/{tree}"
    if bind.readonly:
        keep = os.statvfs(path).f_flag
        flags = sum(ms for st, ms in _STATVFS_KEEP if keep & st)
        syscalls.mount(None, path, None,
                       syscalls.MS_REMOUNT | syscalls.MS_BIND | syscalls.MS_RDONLY | flags)
    if bind.propagation:
        syscalls.mount(None, path, None,
                       bind.propagation | (syscalls.MS_REC if bind.recursive else 0))


def _attach(tree: int, proc: int, bind: Bind, is_dir: bool,
            owner: tuple[int, int] | None, source: Ident, pending: bool) -> bool:
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        target = _target(rootfd, bind.target, is_dir, owner)
        try:
            if _is_bind_of(target, source, bind.target):
                return False
            syscalls.move_mount(tree, target, bind.target)
        finally:
            os.close(target)
        if pending:
            try:
                _set_attrs_late(proc, tree, bind)
            except BaseException:
                umount_fd(proc, tree, bind.target)
                raise
        return True
    finally:
        os.close(rootfd)


def _detach(proc: int, bind: Bind, source: Ident | None) -> bool:
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = open_in_root(rootfd, bind.target)
        except (FileNotFoundError, NotADirectoryError):
            return False
        try:
            if syscalls.is_mount_root(fd, bind.target) is False:
                return False
            if source is not None and _ident(os.fstat(fd)) != source:
                raise Conflict(f"{bind.target} in the container is another mount, not the bind "
                               f"of {bind.source}: left alone",
                               hint="a symlink on the way may have changed since the path "
                                    "was added")
            if source is None:
                log.warning("host path %s is gone: unmounting whatever is mounted at %s",
                            bind.source, bind.target)
            try:
                umount_fd(proc, fd, bind.target)
            except OSError as err:
                if err.errno == errno.EINVAL:  # not a mount root (kernel < 5.8 cannot tell)
                    return False
                raise
            return True
        finally:
            os.close(fd)
    finally:
        os.close(rootfd)
