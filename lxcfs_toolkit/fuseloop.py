"""Our own FUSE request loop over a /dev/fuse file descriptor (no libfuse).

Why not libfuse: a FUSE connection lives as long as any process holds its
/dev/fuse descriptor, so a new daemon can take over a running mount -- but
only if it can answer requests for a connection it did not set up.  libfuse
(2 and 3) insists on the INIT request first and keeps its own node table in
memory (its high-level API answers an inode number it did not hand out with
ENOENT).  Our tree is fixed, so every daemon version can use the same inode
numbers (``NODES``, never renumbered) and file handles that say which file
they are (``fh = serial << 8 | kind``): any daemon can answer any request of
the connection, whoever mounted it.

The protocol subset an lxcfs needs: INIT, LOOKUP, FORGET/BATCH_FORGET,
GETATTR, OPEN, READ, RELEASE, OPENDIR, READDIR, RELEASEDIR, STATFS,
INTERRUPT (ignored: answers are quick), DESTROY; everything else is ENOSYS
(the kernel then stops sending FLUSH, ACCESS, GETXATTR...).

Each daemon works on its own clone of the connection's descriptor
(``FUSE_DEV_IOC_CLONE``): requests it has read but not yet answered belong to
that clone, so a daemon that is killed mid-request fails only those (the
kernel answers them ECONNABORTED) and the rest wait in the connection's queue
for the next daemon.  Idle workers block in read(2) (the kernel wakes exactly
one per request; poll() would wake them all); ``Session.stop`` interrupts
them with a signal (``WAKE_SIGNAL``, read(2) through ctypes sees EINTR
instead of Python retrying), after the request each one is answering.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import itertools
import logging
import os
import signal
import stat
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# --- the tree: inode numbers are part of the connection, never renumber -------------

NODES: dict[str, int] = {
    "/": 1, "/proc": 2, "/sys": 3, "/sys/devices": 4, "/sys/devices/system": 5,
    "/sys/devices/system/cpu": 6,
    "/proc/cpuinfo": 10, "/proc/meminfo": 11, "/proc/stat": 12, "/proc/uptime": 13,
    "/proc/diskstats": 14, "/proc/swaps": 15, "/proc/loadavg": 16, "/proc/partitions": 17,
    "/sys/devices/system/cpu/online": 18,
    "/proc/pressure": 19, "/proc/pressure/cpu": 20, "/proc/pressure/io": 21,
    "/proc/pressure/memory": 22,
}
# file handle low byte: which file (stable across daemon versions, like NODES)
KINDS = ("", "cpuinfo", "meminfo", "stat", "uptime", "diskstats", "swaps", "loadavg",
         "partitions", "cpu_online", "pressure_cpu", "pressure_io", "pressure_memory")
KIND_INDEX = {k: i for i, k in enumerate(KINDS) if k}
DIR_FH = 0xFF

# --- protocol constants (linux/fuse.h) ------------------------------------------------

LOOKUP, FORGET, GETATTR, OPEN, READ, STATFS, RELEASE = 1, 2, 3, 14, 15, 17, 18
INIT, OPENDIR, READDIR, RELEASEDIR, INTERRUPT, DESTROY, BATCH_FORGET = 26, 27, 28, 29, 36, 38, 42
KERNEL_MAJOR, OUR_MINOR, MIN_MINOR = 7, 31, 12
FUSE_ASYNC_READ, FUSE_MAX_PAGES, FUSE_NO_OPENDIR_SUPPORT = 1, 1 << 22, 1 << 24
FOPEN_DIRECT_IO, FOPEN_KEEP_CACHE, FOPEN_CACHE_DIR = 1, 2, 8
FUSE_DEV_IOC_CLONE = 0x8004E500  # _IOR(229, 0, uint32_t)
BUFSIZE = 0x21000  # >= max_write + headers, as the kernel demands of every read
MAX_WRITE = 4096
CACHE_SECONDS = 3600

IN_HEADER = struct.Struct("<IIQQIIIHH")    # len opcode unique nodeid uid gid pid extlen pad
OUT_HEADER = struct.Struct("<IiQ")         # len error unique
INIT_IN = struct.Struct("<IIII")           # major minor max_readahead flags
INIT_OUT = struct.Struct("<IIIIHHIIHHI7I")
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")  # fuse_attr, 88 bytes
ENTRY_OUT = struct.Struct("<QQQQII")       # + ATTR
ATTR_OUT = struct.Struct("<QII")           # + ATTR
OPEN_OUT = struct.Struct("<QII")
READ_IN = struct.Struct("<QQI")            # fh offset size (the rest is unused)
STATFS_OUT = struct.Struct("<QQQQQIIII6I")
DIRENT = struct.Struct("<QQII")
FH = struct.Struct("<Q")
OPEN_IN = struct.Struct("<I")              # flags (the rest is unused)

_libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: a reply write keeps the GIL (it never blocks)
_write = _libc.write
_write.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
_write.restype = ctypes.c_ssize_t
_libc_nogil = ctypes.CDLL(None, use_errno=True)  # CDLL: a blocking read lets go of the GIL
_read = _libc_nogil.read
_read.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t)
_read.restype = ctypes.c_ssize_t
WAKE_SIGNAL = signal.SIGURG


@dataclass(frozen=True)
class Tree:
    """What the mount shows: directories with their entries, and files by kind."""

    dirs: dict[str, tuple[str, ...]]
    files: dict[str, str]          # path -> kind

    def __post_init__(self) -> None:
        for path in [*self.dirs, *self.files]:
            if path not in NODES:
                raise ValueError(f"{path} has no inode number in fuseloop.NODES")


def clone_fd(fd: int) -> int:
    """A new /dev/fuse description on the connection of ``fd`` (cloexec)."""
    new = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(new, FUSE_DEV_IOC_CLONE, struct.pack("<I", fd))
    except OSError:
        os.close(new)
        raise
    return new


def mount(mountpoint: str) -> int:
    """Open /dev/fuse and mount it at ``mountpoint`` as ``lxcfs`` (``fuse.lxcfs``).

    Returns the connection's descriptor (blocking, not cloexec: handed over)."""
    from syscontainer_tools import syscalls

    fd = os.open("/dev/fuse", os.O_RDWR)
    try:
        st = os.stat(mountpoint)
        opts = (f"fd={fd},rootmode={stat.S_IFDIR:o},user_id=0,group_id=0,allow_other,"
                f"max_read={BUFSIZE - 4096}")
        del st
        syscalls.mount("lxcfs", mountpoint, "fuse.lxcfs",
                       syscalls.MS_NOSUID | syscalls.MS_NODEV, opts)
    except BaseException:
        os.close(fd)
        raise
    return fd


class Session:
    """Answer FUSE requests on a clone of ``fd`` with ``threads`` workers.

    ``ops`` must offer ``attr(path)``, ``render(kind, pid)``, ``host(kind)``
    and ``statfs()``; ``self.ops`` may be replaced at any time (reload), as
    may ``self.virtualize`` (False: every reader gets the host's file).
    ``minor`` is the protocol minor of the connection when it was set up
    by another daemon (no INIT will come); None for a fresh mount."""

    def __init__(self, fd: int, ops: Any, tree: Tree, *, threads: int = 4,
                 minor: int | None = None,
                 on_open: Callable[[int], None] | None = None,
                 on_thread: Callable[[], None] | None = None) -> None:
        self.master = fd
        self.fd = clone_fd(fd)
        self.ops = ops
        self.tree = tree
        self.virtualize = True
        self.minor = minor
        self.threads_wanted = max(1, threads)
        self.on_open = on_open
        self.on_thread = on_thread
        self.destroyed = threading.Event()
        self.initialized = threading.Event()
        if minor is not None:
            self.initialized.set()
        self._stop = False
        self._threads: list[threading.Thread] = []
        # handle serials start at the clock in microseconds: a successor's handles
        # never equal those its predecessor handed out (fewer than one open per us)
        self._serials = itertools.count(time.time_ns() // 1000)
        self._kind_of = {ino: KIND_INDEX[tree.files[path]]
                         for path, ino in NODES.items() if path in tree.files}
        self._snapshots: dict[int, bytes] = {}
        self._ino_path = {ino: path for path, ino in NODES.items()}
        self._entries = self._dir_entries()
        self._handlers: dict[int, Callable[[int, int, int, memoryview], None]] = {
            LOOKUP: self._lookup, GETATTR: self._getattr, OPEN: self._open, READ: self._read,
            RELEASE: self._release, OPENDIR: self._opendir, READDIR: self._readdir,
            RELEASEDIR: self._releasedir, STATFS: self._statfs, INIT: self._init,
            DESTROY: self._destroy,
        }

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            # a handler (not SIG_IGN) so that the signal interrupts read(2)
            signal.signal(WAKE_SIGNAL, lambda signum, frame: None)
        for i in range(self.threads_wanted):
            t = threading.Thread(target=self._worker, name=f"fuse-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers once each has answered the request it is on."""
        self._stop = True
        me = threading.current_thread()
        for t in self._threads:
            if t is me:
                continue
            for _ in range(int(timeout / 0.05)):
                if t.ident is None or not t.is_alive():
                    break
                try:
                    signal.pthread_kill(t.ident, WAKE_SIGNAL)
                except (ProcessLookupError, OSError):
                    break
                t.join(0.05)
        os.close(self.fd)

    # -- the loop ----------------------------------------------------------------

    def _worker(self) -> None:
        if self.on_thread is not None:
            self.on_thread()
        fd = self.fd
        buf = ctypes.create_string_buffer(BUFSIZE)
        view = memoryview(buf).cast("B")
        unpack = IN_HEADER.unpack_from
        hsize = IN_HEADER.size
        silent = frozenset((FORGET, BATCH_FORGET, INTERRUPT))
        handlers, reply_err = self._handlers, self._reply_error
        while not self._stop:
            n = _read(fd, buf, BUFSIZE)
            if n < 0:
                err = ctypes.get_errno()
                if err in (errno.EINTR, errno.EAGAIN, errno.ENOENT):  # ENOENT: interrupted request
                    continue
                if err != errno.ENODEV:     # ENODEV: unmounted and aborted
                    log.error("reading /dev/fuse: %s", os.strerror(err))
                self.destroyed.set()
                return
            req = view[:n]
            _len, opcode, unique, nodeid, _uid, _gid, pid, _x, _p = unpack(req)
            if opcode in silent:
                continue   # no answer: nothing to forget in a fixed tree
            handler = handlers.get(opcode)
            if handler is None:
                reply_err(unique, errno.ENOSYS)
                continue
            try:
                handler(unique, nodeid, pid, req[hsize:])
            except OSError as err:
                reply_err(unique, err.errno or errno.EIO)
            except Exception:
                log.exception("FUSE request %d failed", opcode)
                reply_err(unique, errno.EIO)

    def _send(self, data: bytes) -> None:
        if _write(self.fd, data, len(data)) < 0:
            err = ctypes.get_errno()
            if err not in (errno.ENOENT, errno.EAGAIN):   # ENOENT: the reader was interrupted
                log.debug("FUSE reply failed: %s", os.strerror(err))

    def _reply(self, unique: int, payload: bytes = b"") -> None:
        self._send(OUT_HEADER.pack(16 + len(payload), 0, unique) + payload)

    def _reply_error(self, unique: int, err: int) -> None:
        self._send(OUT_HEADER.pack(16, -err, unique))

    # -- requests -------------------------------------------------------------

    def _init(self, unique: int, nodeid: int, pid: int, body: memoryview) -> None:
        major, minor, readahead, flags = INIT_IN.unpack_from(body)
        if major != KERNEL_MAJOR:
            log.error("kernel FUSE protocol %d.%d is not supported", major, minor)
            self._reply(unique, struct.pack("<II", KERNEL_MAJOR, OUR_MINOR) + bytes(16))
            return
        self.minor = min(minor, OUR_MINOR)
        want = flags & (FUSE_ASYNC_READ | FUSE_NO_OPENDIR_SUPPORT)
        out = INIT_OUT.pack(KERNEL_MAJOR, OUR_MINOR, readahead, want, 16, 12, MAX_WRITE, 1,
                            0, 0, 0, *([0] * 7))
        self._reply(unique, out if self.minor >= 23 else out[:24])
        self.initialized.set()

    def _destroy(self, unique: int, nodeid: int, pid: int, body: memoryview) -> None:
        self._reply(unique)
        self.destroyed.set()

    def _attr(self, nodeid: int) -> bytes:
        path = self._ino_path.get(nodeid)
        if path is None:
            raise OSError(errno.ENOENT, "no such node")
        a = self.ops.attr(path)
        ns = a["st_mtime"]
        sec, nsec = divmod(ns, 1_000_000_000)
        return ATTR.pack(nodeid, a.get("st_size", 0), 0, sec, sec, sec, nsec, nsec, nsec,
                         a["st_mode"], a["st_nlink"], 0, 0, 0, 4096, 0)

    def _lookup(self, unique: int, nodeid: int, pid: int, body: memoryview) -> None:
        parent = self._ino_path.get(nodeid)
        name = bytes(body).split(b"\0", 1)[0].decode("utf-8", "replace")
        if parent is None or name not in self.tree.dirs.get(parent, ()):
            # the kernel keeps the negative answer as long as a positive one
            self._reply(unique, ENTRY_OUT.pack(0, 0, CACHE_SECONDS, 0, 0, 0) + bytes(ATTR.size))
            return
        path = (parent.rstrip("/") + "/" + name)
        ino = NODES[path]
        self._reply(unique, ENTRY_OUT.pack(ino, 0, CACHE_SECONDS, CACHE_SECONDS, 0, 0)
                    + self._attr(ino))

    def _getattr(self, unique: int, nodeid: int, pid: int, body: memoryview) -> None:
        self._reply(unique, ATTR_OUT.pack(CACHE_SECONDS, 0, 0) + self._attr(nodeid))

    def _open(self, unique: int, nodeid: int, pid: int, body: memoryview) -> None:
        kind = self._kind_of.get(nodeid)
        if kind is None:
            path = self._ino_path.get(nodeid)
            raise OSError(errno.EISDIR if path in self.tree.dirs else errno.ENOENT, "open")
        if OPEN_IN.unpack_from(body)[0] & os.O_ACCMODE != os.O_RDONLY:
            raise OSError(errno.EACCES, "read-only")
        if self.on_open is not None:
            self.on_open(pid)
        fh = next(self._serials) << 8 | kind   # next() of a count is atomic under the GIL
        self._reply(unique, OPEN_OUT.pack(fh, FOPEN_DIRECT_IO, 0))

    def _read(self, unique: int, nodeid: int, pid: int, body: memoryview) -> None:
        fh, offset, size = READ_IN.unpack_from(body)
        if fh & 0xFF == DIR_FH:
            raise OSError(errno.EISDIR, "read")
        data = self._snapshots.get(fh) if offset else None
        if data is None:
            kind = KINDS[fh & 0xFF] if (fh & 0xFF) < len(KINDS) else ""
            if not kind:
                raise OSError(errno.EBADF, "read")
            # a handle opened by an earlier daemon is as good as our own
            data = (self.ops.render(kind, pid) if self.virtualize else self.ops.host(kind))
            self._snapshots[fh] = data
        self._reply(unique, data[offset:offset + size])

    def _release(self, unique: int, nodeid: int, pid: int, body: memoryview) -> None:
        self._snapshots.pop(FH.unpack_from(body)[0], None)
        self._reply(unique)

    def _opendir(self, unique: int, nodeid: int, pid: int, body: memoryview) -> None:
        path = self._ino_path.get(nodeid)
        if path not in self.tree.dirs:
            raise OSError(errno.ENOTDIR if path in self.tree.files else errno.ENOENT, "opendir")
        self._reply(unique, OPEN_OUT.pack(DIR_FH, FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR, 0))

    def _dir_entries(self) -> dict[int, list[bytes]]:
        out: dict[int, list[bytes]] = {}
        for path, names in self.tree.dirs.items():
            ino = NODES[path]
            parent = NODES.get(path.rsplit("/", 1)[0] or "/", 1)
            entries = [(ino, ".", stat.S_IFDIR), (parent, "..", stat.S_IFDIR)]
            for name in names:
                child = (path.rstrip("/") + "/" + name)
                mode = stat.S_IFDIR if child in self.tree.dirs else stat.S_IFREG
                entries.append((NODES[child], name, mode))
            packed = []
            for off, (e_ino, name, mode) in enumerate(entries, 1):
                raw = name.encode()
                rec = DIRENT.pack(e_ino, off, len(raw), mode >> 12) + raw
                packed.append(rec + bytes(-len(rec) % 8))
            out[ino] = packed
        return out

    def _readdir(self, unique: int, nodeid: int, pid: int, body: memoryview) -> None:
        _fh, offset, size = READ_IN.unpack_from(body)
        records = self._entries.get(nodeid)
        if records is None:
            raise OSError(errno.ENOTDIR, "readdir")
        out = b""
        for rec in records[offset:]:
            if len(out) + len(rec) > size:
                break
            out += rec
        self._reply(unique, out)

    def _releasedir(self, unique: int, nodeid: int, pid: int, body: memoryview) -> None:
        self._reply(unique)

    def _statfs(self, unique: int, nodeid: int, pid: int, body: memoryview) -> None:
        self._reply(unique, STATFS_OUT.pack(0, 0, 0, 0, 0, 4096, 255, 4096, 0, *([0] * 6)))
