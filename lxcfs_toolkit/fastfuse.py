"""fusepy's FUSE class with a shorter path for the requests every read makes.

``fuse.FUSE`` binds each operation as ``partial(self._wrapper, self.<op>)``
and its ``read``/``open``/``release`` convert arguments and dispatch through
``operations(op, ...)``. For the three requests of every open-read-close
this subclass calls the operations object directly, copies the reply with a
memmove that keeps the GIL (``ctypes.memmove`` releases it), and reads the
caller's pid through a libfuse handle that keeps the GIL as well. Errors
still follow fusepy's convention: an OSError becomes -errno; anything else
is logged and becomes -EIO, and the daemon keeps serving.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import threading
from collections.abc import Callable
from typing import Any

import fuse

from lxcfs_toolkit.affinity import AffinityGovernor

log = logging.getLogger(__name__)

_memmove = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t)(
    ctypes._memmove_addr  # type: ignore[attr-defined]
)
_libfuse_keep_gil = ctypes.PyDLL(fuse._libfuse._name)
_get_context = _libfuse_keep_gil.fuse_get_context
_get_context.restype = ctypes.POINTER(fuse.fuse_context)


def caller_pid() -> int:
    return int(_get_context().contents.pid)


def context() -> tuple[int, int, int]:
    ctx = _get_context().contents
    return ctx.uid, ctx.gid, ctx.pid


_tls = threading.local()
governor: AffinityGovernor | None = None


def _pin_thread_state() -> None:
    """Keep this libfuse worker thread's Python thread state alive.

    ctypes wraps a callback arriving on a thread Python did not create in
    PyGILState_Ensure/Release, which creates and destroys a whole thread
    state every time. One extra Ensure that is never released makes the
    state persist for the life of the worker thread (libfuse keeps its
    workers; one that exits leaves a few kB behind).
    """
    ctypes.pythonapi.PyGILState_Ensure()
    _tls.pinned = True
    if governor is not None:
        governor.register_thread()


class FastFUSE(fuse.FUSE):  # type: ignore[misc]  # fusepy has no types
    @staticmethod
    def _wrapper(func: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
        if not getattr(_tls, "pinned", False):
            _pin_thread_state()
        try:
            return func(*args, **kwargs) or 0
        except OSError as err:
            return -(err.errno or errno.EIO)
        except BaseException:
            log.exception("FUSE operation %s failed", getattr(func, "__name__", func))
            return -errno.EIO

    def open(self, path: bytes, fip: Any) -> int:
        if governor is not None:
            governor.note_open(caller_pid())
        return self.operations.open(path.decode(self.encoding), fip.contents)  # type: ignore[no-any-return]

    def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        data = self.operations.read(None, size, offset, fip.contents)
        n = len(data)
        if n:
            _memmove(buf, data, n)
        return n

    def release(self, path: bytes | None, fip: Any) -> int:
        return self.operations.release(None, fip.contents)  # type: ignore[no-any-return]
