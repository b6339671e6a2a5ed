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

_ensure = ctypes.pythonapi["PyGILState_Ensure"]
_ensure.restype = ctypes.c_int
_release = ctypes.pythonapi["PyGILState_Release"]
_release.argtypes = (ctypes.c_int,)
_this_state = ctypes.pythonapi["PyGILState_GetThisThreadState"]
_this_state.restype = ctypes.c_void_p
_clear_state = ctypes.pythonapi["PyThreadState_Clear"]
_clear_state.argtypes = (ctypes.c_void_p,)
_delete_state = ctypes.pythonapi["PyThreadState_Delete"]
_delete_state.argtypes = (ctypes.c_void_p,)
_libc = ctypes.CDLL(None, use_errno=True)
_setspecific = _libc.pthread_setspecific
_setspecific.argtypes = (ctypes.c_uint, ctypes.c_void_p)


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _thread_exit(state: int | None) -> None:
    """pthread key destructor: a libfuse worker is exiting; drop its pinned state.

    libfuse 2 ends a worker when more than 10 are idle, so bursts of
    concurrent readers keep creating and ending workers; without this each
    one left its whole thread state (and its thread-local buffers) behind:
    the daemon's RSS grew by megabytes a second with 50 busy containers.

    glibc clears every key's value of the thread before calling the
    destructors, normally including Python's own: then ctypes has made a
    fresh state for this call and the pinned one is cleared and deleted
    here.  If Python's value is still there, the pinned state is the
    current one: releasing the pin lets ctypes delete it after this call."""
    try:
        if governor is not None:
            governor.forget_thread(threading.get_native_id())
        if not state:
            return
        if _this_state() == state:
            _release(_tls.__dict__.get("gil", 0))
        else:
            _clear_state(state)
            _delete_state(state)
    except BaseException:  # noqa: BLE001 - nothing may escape a pthread destructor
        log.exception("releasing an exiting FUSE worker's thread state failed")


_key = ctypes.c_uint(0)
if _libc.pthread_key_create(ctypes.byref(_key), _thread_exit) != 0:  # pragma: no cover
    raise OSError(ctypes.get_errno(), "pthread_key_create")


def _pin_thread_state() -> None:
    """Keep this libfuse worker thread's Python thread state alive.

    ctypes wraps a callback arriving on a thread Python did not create in
    PyGILState_Ensure/Release, which creates and destroys a whole thread
    state every time. One extra Ensure that is never released makes the
    state persist for the life of the worker thread; a pthread key
    destructor (``_thread_exit``) deletes it when libfuse ends the worker.
    """
    _tls.gil = _ensure()
    _tls.pinned = True
    _setspecific(_key.value, _this_state())
    if governor is not None:
        governor.register_thread()


class FastFUSE(fuse.FUSE):
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
