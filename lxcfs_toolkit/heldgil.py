"""readlink() and small-file reads that do not let go of the GIL.

``os.readlink``/``os.read`` release the GIL around every syscall. In the
FUSE daemon several libfuse worker threads queue for the GIL, so each
release in the middle of a request hands the GIL to another thread and the
request then queues again to get it back (a convoy). The per-read hot path
(the reader's pid namespace link and its /proc/PID/cgroup) only touches
procfs, which answers in microseconds, so it calls libc through
``ctypes.PyDLL``, which keeps the GIL for the duration of the call: one GIL
acquisition per FUSE request instead of five.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import cast

_libc = ctypes.PyDLL(None, use_errno=True)
_readlink = _libc.readlink
_readlink.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t)
_readlink.restype = ctypes.c_ssize_t
_open = _libc.open
_open.argtypes = (ctypes.c_char_p, ctypes.c_int)
_open.restype = ctypes.c_int
_read = _libc.read
_read.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
_read.restype = ctypes.c_ssize_t
_close = _libc.close
_close.argtypes = (ctypes.c_int,)
_close.restype = ctypes.c_int

BUFSIZE = 16384
_FLAGS = os.O_RDONLY | os.O_CLOEXEC
_local = threading.local()


def _buffer() -> ctypes.Array[ctypes.c_char]:
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = ctypes.create_string_buffer(BUFSIZE)
    return buf


def _head(buf: ctypes.Array[ctypes.c_char], n: int) -> bytes:
    return cast(bytes, buf[:n])  # slicing a c_char array yields bytes (typeshed says list)


def readlink(path: bytes) -> bytes | None:
    buf = _buffer()
    n = _readlink(path, buf, BUFSIZE)
    return None if n < 0 else _head(buf, n)


def read_small(path: bytes) -> bytes | None:
    """A procfs file's content (any size), or None on any error."""
    fd = _open(path, _FLAGS)
    if fd < 0:
        return None
    try:
        buf = _buffer()
        n = _read(fd, buf, BUFSIZE)
        if n < 0:
            return None
        if n < BUFSIZE:
            # procfs seq_files produce the whole text on the first read when it
            # fits: a short read is the end (saves the EOF read syscall)
            return _head(buf, n)
        parts: list[bytes] = [_head(buf, n)]
        while True:
            n = _read(fd, buf, BUFSIZE)
            if n < 0:
                return None
            if n == 0:
                return b"".join(parts)
            parts.append(_head(buf, n))
    finally:
        _close(fd)
