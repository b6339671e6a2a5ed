"""Read kernel pseudo files (procfs, cgroupfs) cheaply and without surprises.

``os.open``/``os.read`` rather than ``open()``: no buffered-reader object,
no encoding layer, and one code path for every errno the kernel can return
from a pseudo file (ENOENT for a vanished cgroup, ENODEV/EOPNOTSUPP for a
controller file that is present but disabled, ESRCH for a dead process).

``OpenFiles`` keeps procfs and cgroupfs files open and re-reads them with
``pread(2)`` at offset 0, which makes the kernel generate the text anew (a
seq_file restarts at position 0): one syscall per read instead of three,
and no path walk.  It is safe there because such a file never silently
becomes another: once its cgroup is removed a read fails with ENODEV (a
dead process's /proc file: ESRCH), and a failed read is retried once on a
freshly opened file, so a cgroup re-created under the same path is read
anew.  Files of other filesystems (a test's temp tree, where a removed file
would keep its old content) are opened and closed every time.  The calls go
through ``ctypes.PyDLL`` and keep the GIL (see ``heldgil``): these files
answer in microseconds, and each GIL hand-over in the middle of a request
costs more than that on a busy daemon.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import threading
import time
from collections.abc import Callable
from typing import cast

_FLAGS = os.O_RDONLY | os.O_CLOEXEC
_CHUNK = 65536

# filesystems whose removed files fail reads instead of keeping their content
PROC_SUPER_MAGIC, CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC = 0x9FA0, 0x27E0EB, 0x63677270
KEEPABLE = frozenset({PROC_SUPER_MAGIC, CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC})
HELD_MAX = 8192
HELD_IDLE = 30.0   # seconds a kept file may go unread before it is closed

_libc = ctypes.PyDLL(None, use_errno=True)
_open = _libc.open
_open.argtypes = (ctypes.c_char_p, ctypes.c_int)
_open.restype = ctypes.c_int
_pread = _libc.pread
_pread.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_long)
_pread.restype = ctypes.c_ssize_t
_close = _libc.close
_close.argtypes = (ctypes.c_int,)
_close.restype = ctypes.c_int
_fstatfs = _libc.fstatfs
_fstatfs.argtypes = (ctypes.c_int, ctypes.c_char_p)
_fstatfs.restype = ctypes.c_int
_local = threading.local()


def read_bytes(path: str) -> bytes | None:
    """The whole file, or None when it cannot be opened or read."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError:
        return None
    try:
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:
            return data
        parts = [data]
        while True:
            more = os.read(fd, _CHUNK)
            if not more:
                return b"".join(parts)
            parts.append(more)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_text(path: str) -> str | None:
    data = read_bytes(path)
    return None if data is None else data.decode("utf-8", "replace")


def _buffer() -> ctypes.Array[ctypes.c_char]:
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = ctypes.create_string_buffer(_CHUNK)
    return buf


def pread_all(fd: int) -> bytes | None:
    """The file behind ``fd`` from offset 0 to its end (GIL kept), or None on an error."""
    buf = _buffer()
    n = _pread(fd, buf, _CHUNK, 0)
    if n < 0:
        return None
    if n < _CHUNK:   # a pseudo file gives all it has when it fits: a short read is the end
        return cast(bytes, buf[:n])
    parts = [cast(bytes, buf[:n])]
    offset = n
    while True:
        n = _pread(fd, buf, _CHUNK, offset)
        if n < 0:
            return None
        if n == 0:
            return b"".join(parts)
        parts.append(cast(bytes, buf[:n]))
        offset += n


def _fd_budget() -> int:
    """How many files may be kept: half the soft RLIMIT_NOFILE (the rest is the daemon's)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return HELD_MAX if soft == resource.RLIM_INFINITY else max(1, soft // 2)


def raise_fd_limit(want: int = 2 * HELD_MAX + 1024) -> None:
    """Raise the soft RLIMIT_NOFILE towards ``want`` (never above the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def kernel_pseudo_fs(fd: int) -> bool:
    """Whether ``fd`` is on procfs or cgroupfs (v1 or v2)."""
    buf = ctypes.create_string_buffer(256)   # struct statfs; f_type (a long) comes first
    if _fstatfs(fd, buf) != 0:
        return False
    return ctypes.c_long.from_buffer(buf).value in KEEPABLE


class OpenFiles:
    """Pseudo files kept open by path (at most ``limit``; the least recently read
    is closed first, so the files of removed cgroups go before live ones).

    A file not read for ``idle`` seconds is closed too: an open file of a
    removed cgroup would keep it as a dying cgroup (its memory accounting
    pinned in the kernel) for as long as the daemon holds it, and live
    containers' readers come back long before that.

    No lock on the read path: a kept descriptor belongs to whoever took it out
    of ``_fds`` (one atomic ``dict.pop``), is read by that thread only and put
    back with ``setdefault`` (if another thread kept the same path meanwhile,
    the second descriptor is closed). Only a descriptor's owner closes it, so
    none is closed, and its number reused, in the middle of another's read."""

    def __init__(self, limit: int = HELD_MAX,
                 keepable: Callable[[int], bool] = kernel_pseudo_fs,
                 idle: float = HELD_IDLE, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = max(1, limit)
        self.keepable = keepable
        self.idle = idle
        self._clock = clock
        self._fds: dict[str, tuple[int, float]] = {}   # path -> (fd, last read); oldest first
        self._swept = clock()
        self._closed = False
        self._sweeping = threading.Lock()   # one sweeper at a time (readers never wait)

    def __len__(self) -> int:
        return len(self._fds)

    def _sweep(self, now: float) -> None:
        """Close the files not read for ``idle`` seconds (at most once a second)."""
        if not self._sweeping.acquire(blocking=False):
            return
        try:
            self._swept = now
            for key, entry in list(self._fds.items()):   # oldest first
                if now - entry[1] < self.idle:
                    break
                taken = self._fds.pop(key, None)
                if taken is None:
                    continue               # a reader has it right now
                if now - taken[1] >= self.idle:
                    _close(taken[0])
                else:                       # read again meanwhile: put it back
                    self._put(key, taken)
        finally:
            self._sweeping.release()

    def _put(self, key: str, entry: tuple[int, float]) -> None:
        if self._fds.setdefault(key, entry) is not entry or self._closed:
            if self._closed and self._fds.get(key) is entry:
                self._fds.pop(key, None)
            _close(entry[0])

    def _evict_oldest(self) -> None:
        try:
            oldest = next(iter(self._fds))
        except (StopIteration, RuntimeError):   # emptied or changed meanwhile: next time
            return
        taken = self._fds.pop(oldest, None)
        if taken is not None:
            _close(taken[0])

    def read(self, path: str) -> bytes | None:
        now = self._clock()
        if now - self._swept >= 1.0:
            self._sweep(now)
        kept = self._fds.pop(path, None)
        if kept is not None:
            data = pread_all(kept[0])
            if data is not None:
                self._put(path, (kept[0], now))   # now the newest: the least recently read go first
                return data
            _close(kept[0])                  # removed (ENODEV) or dead (ESRCH): look again
        fd = _open(path.encode(), _FLAGS)
        if fd < 0:
            return None
        data = pread_all(fd)
        if data is None or self._closed or not self.keepable(fd):
            _close(fd)
            return data
        if len(self._fds) >= min(self.limit, _fd_budget()):
            self._evict_oldest()
        self._put(path, (fd, now))
        return data

    def read_text(self, path: str) -> str | None:
        data = self.read(path)
        return None if data is None else data.decode("utf-8", "replace")

    def close(self) -> None:
        """Close every kept file; later reads open and close each time."""
        self._closed = True
        while self._fds:
            try:
                key = next(iter(self._fds))
            except (StopIteration, RuntimeError):
                continue
            taken = self._fds.pop(key, None)
            if taken is not None:
                _close(taken[0])


held = OpenFiles()
