"""Run a function inside a container's namespaces, in a forked child.

The parent never calls setns: joining a mount or user namespace fails in a
multithreaded process, and a process that switched namespaces would have to
switch back.  The child joins the namespaces through the container init's
pidfd (so a recycled pid can never be entered), chroots to the init's root,
runs the function, and sends its result -- or its exception, with the real
errno -- back through a pipe, where the parent returns or re-raises it.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable

from . import syscalls
from .errors import ToolError

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, TypeVar

    T = TypeVar("T")

MNT = syscalls.CLONE_NEWNS
NET = syscalls.CLONE_NEWNET
USER = syscalls.CLONE_NEWUSER


def _encode_error(exc: BaseException) -> tuple[Any, ...]:
    if isinstance(exc, OSError):
        return ("oserror", exc.errno, exc.strerror, exc.filename)
    if isinstance(exc, ToolError):
        return ("tool", type(exc).__name__, exc.message, exc.hint)
    return ("other", type(exc).__name__, str(exc))


def _raise_error(payload: tuple[Any, ...]) -> None:
    kind = payload[0]
    if kind == "oserror":
        _, errno, strerror, filename = payload
        raise OSError(errno, strerror, filename)
    if kind == "tool":
        from . import errors

        cls = getattr(errors, payload[1], ToolError)
        raise cls(payload[2], hint=payload[3])
    raise ToolError(f"{payload[1]}: {payload[2]}")


def _ident(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _enter_root(rootfd: int, rootfs: tuple[str, tuple[int, int]] | None,
                host_root: tuple[int, int]) -> None:
    """chroot to the process's root -- or, before the runtime's pivot_root
    (runc runs prestart hooks then), to the container's rootfs directory,
    recognised by its device and inode as seen from the host.  Never stays
    in the host's own root directory."""
    os.fchdir(rootfd)
    os.chroot(".")
    os.chdir("/")
    here = _ident(os.stat("/"))
    if rootfs is None or here == rootfs[1]:
        if here == host_root:
            raise ToolError("the container's root is still the host's root "
                            "(not pivoted yet, and its rootfs is unknown)")
        return
    path, ident = rootfs
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY)
    try:
        if _ident(os.fstat(fd)) != ident:
            raise ToolError(f"cannot find the container's root {path} in its mount namespace")
        os.fchdir(fd)
        os.chroot(".")
        os.chdir("/")
    finally:
        os.close(fd)


def _child(pidfd: int, pid: int, flags: int, chroot: bool,
           rootfs: tuple[str, tuple[int, int]] | None, host_root: tuple[int, int],
           fsids: tuple[int, int] | None, w: int,
           fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        rootfd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY) if chroot else -1
        # /proc/PID named the process the pidfd pins only if it is still alive now.
        import _signal  # signal's C half: signal.py's enums cost start-up

        _signal.pidfd_send_signal(pidfd, 0)
        syscalls.setns(pidfd, flags, f"namespaces of pid {pid}")
        if chroot:
            _enter_root(rootfd, rootfs, host_root)
            os.close(rootfd)
        if fsids is not None and fsids != (0, 0):
            syscalls.set_fsids(*fsids)
        result: tuple[Any, ...] = ("ok", fn(*args))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        result = ("err", _encode_error(exc))
    try:
        data = pickle.dumps(result)
    except Exception as exc:  # noqa: BLE001
        data = pickle.dumps(("err", ("other", "PicklingError", str(exc))))
    view = memoryview(data)
    while view:
        n = os.write(w, view)
        view = view[n:]


def run_in(pidfd: int, pid: int, fn: Callable[..., T], *args: Any,
           flags: int = MNT, chroot: bool = True, rootfs: str | None = None,
           fsids: tuple[int, int] | None = None) -> T:
    """Call ``fn(*args)`` inside the namespaces ``flags`` of the process
    ``pidfd`` refers to (``pid`` is its number, used for /proc/PID/root).

    With ``chroot`` the child also takes the process's root directory, so
    absolute paths in ``fn`` are the container's paths.  Give ``rootfs`` (the
    container's root directory as the host sees it) to get the container's
    root also before the runtime pivoted into it."""
    root_arg = None
    if chroot and rootfs:
        try:
            root_arg = (rootfs, _ident(os.stat(rootfs)))
        except OSError:
            root_arg = None
    host_root = _ident(os.stat("/"))
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        status = 0
        try:
            os.close(r)
            _child(pidfd, pid, flags, chroot, root_arg, host_root, fsids, w, fn, args)
        except BaseException:  # noqa: BLE001
            status = 1
        finally:
            os._exit(status)
    os.close(w)
    chunks = []
    with os.fdopen(r, "rb") as pipe:
        while chunk := pipe.read(65536):
            chunks.append(chunk)
    _, status = os.waitpid(child, 0)
    if not chunks:
        raise ToolError(f"helper process for pid {pid} died (wait status {status})")
    kind, payload = pickle.loads(b"".join(chunks))
    if kind == "err":
        _raise_error(payload)
    return payload  # type: ignore[no-any-return]
