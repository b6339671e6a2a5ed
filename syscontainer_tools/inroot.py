"""Resolve paths inside a container's root, never through a symlink out of it.

All lookups go through openat2(RESOLVE_IN_ROOT) from a directory fd of the
container's root: absolute symlinks and ``..`` are clamped to that root, the
way the container itself would see them.  Magic links (/proc/self/fd/...) are
refused.  The functions work from the host (root fd = /proc/PID/root) and
inside a child that chrooted into the container (root fd = "/").
"""

from __future__ import annotations

import os
import posixpath

from . import syscalls

_RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS


def clean(path: str) -> str:
    """Normalise an absolute container path ("/a//b/../c/" -> "/a/c")."""
    return posixpath.normpath("/" + path.lstrip("/"))


def open_in_root(rootfd: int, path: str, flags: int = os.O_PATH, mode: int = 0) -> int:
    """Open ``path`` as the container sees it; a symlink resolves inside the root."""
    return syscalls.openat2(rootfd, clean(path), flags, _RESOLVE, mode)


def open_parent(rootfd: int, path: str, *, create: bool = False,
                mode: int = 0o755, owner: tuple[int, int] | None = None) -> tuple[int, str]:
    """Return (dirfd of the parent directory, last component) of ``path``.

    With ``create`` the missing parent directories are made, each checked
    with the same in-root resolution, and chowned to ``owner`` when given."""
    path = clean(path)
    parent, name = posixpath.split(path)
    if not name:
        raise OSError(22, "path has no last component", path)
    if not create:
        return open_in_root(rootfd, parent, os.O_PATH | os.O_DIRECTORY), name
    return _makedirs(rootfd, parent, mode, owner), name


def _makedirs(rootfd: int, target: str, mode: int, owner: tuple[int, int] | None) -> int:
    """mkdir -p inside the root; a dangling symlink is followed (in-root) to
    create its target, as mkdir -p through an existing symlink would."""
    for _hop in range(40):
        parts = [p for p in target.split("/") if p]
        fd = os.dup(rootfd)
        walked, restart = "/", None
        try:
            for i, part in enumerate(parts):
                walked = posixpath.join(walked, part)
                try:
                    nxt = open_in_root(rootfd, walked, os.O_PATH | os.O_DIRECTORY)
                except FileNotFoundError:
                    try:
                        # ``fd`` is the resolved parent; a fresh directory holds no symlink
                        os.mkdir(part, mode, dir_fd=fd)
                    except FileExistsError:
                        link = os.readlink(part, dir_fd=fd)  # EINVAL if not a symlink
                        rest = "/".join(parts[i + 1:])
                        restart = clean(posixpath.join(posixpath.dirname(walked), link, rest))
                        break
                    if owner is not None:
                        os.chown(part, *owner, dir_fd=fd, follow_symlinks=False)
                    nxt = open_in_root(rootfd, walked, os.O_PATH | os.O_DIRECTORY)
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        if restart is None:
            return fd
        os.close(fd)
        target = restart
    raise OSError(40, "Too many levels of symbolic links", target)
