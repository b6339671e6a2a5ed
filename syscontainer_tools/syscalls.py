"""The few Linux syscalls Python does not wrap, each wrapped once.

Every wrapper raises ``OSError(errno, strerror, what)`` naming the path or
pid it worked on.  Syscall numbers are the generic ones (identical on x86_64
and aarch64 for everything from 424 on).
"""

from __future__ import annotations

import ctypes
import os

# The interpreter's own symbols include libc's.  Not ctypes.util.find_library:
# it runs ``ldconfig -p`` (and gcc, when that finds nothing) -- a subprocess
# costing more than the rest of a command's start-up.
_libc = ctypes.CDLL(None, use_errno=True)
_MACHINE = os.uname().machine

# --- namespaces -----------------------------------------------------------
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# --- mount(2) flags -------------------------------------------------------
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8

# --- new mount API / openat2 -----------------------------------------------
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_IDMAP = 0x00100000
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
STATX_MNT_ID = 0x1000
STATX_ATTR_MOUNT_ROOT = 0x2000

_NR = {"open_tree": 428, "move_mount": 429, "openat2": 437, "mount_setattr": 442}
if _MACHINE not in ("x86_64", "aarch64", "riscv64", "loongarch64"):  # pragma: no cover
    raise ImportError(f"syscall numbers unknown for {_MACHINE}")

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setfsuid.argtypes = [ctypes.c_uint]
_libc.setfsgid.argtypes = [ctypes.c_uint]
_libc.syscall.restype = ctypes.c_long
_libc.statx.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint,
                        ctypes.c_void_p]


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _fail(what: object) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err), str(what))


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        raise _fail(target)


def umount(target: str, flags: int = 0) -> None:
    if _libc.umount2(_b(target), flags) != 0:
        raise _fail(target)


def setns(fd: int, nstype: int, what: object = "namespace") -> None:
    """Join the namespace(s) of ``fd`` (a /proc/PID/ns file or a pidfd)."""
    if _libc.setns(fd, nstype) != 0:
        raise _fail(what)


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = _libc.syscall(_NR["openat2"], dirfd, _b(path), ctypes.byref(how),
                       ctypes.sizeof(how))
    if fd < 0:
        raise _fail(path)
    return int(fd)


def open_tree(dirfd: int, path: str, flags: int) -> int:
    fd = _libc.syscall(_NR["open_tree"], dirfd, _b(path), ctypes.c_uint(flags))
    if fd < 0:
        raise _fail(path)
    return int(fd)


def move_mount(from_fd: int, to_fd: int, what: object, from_path: str = "",
               to_path: str = "") -> None:
    flags = (MOVE_MOUNT_F_EMPTY_PATH if not from_path else 0) | (
        MOVE_MOUNT_T_EMPTY_PATH if not to_path else 0)
    if _libc.syscall(_NR["move_mount"], from_fd, _b(from_path), to_fd, _b(to_path),
                     ctypes.c_uint(flags)) != 0:
        raise _fail(what)


def mount_setattr(fd: int, what: object, *, attr_set: int = 0, attr_clr: int = 0,
                  propagation: int = 0, recursive: bool = True, userns_fd: int = 0) -> None:
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    if _libc.syscall(_NR["mount_setattr"], fd, b"", ctypes.c_uint(flags), ctypes.byref(attr),
                     ctypes.sizeof(attr)) != 0:
        raise _fail(what)


class _Statx(ctypes.Structure):
    _fields_ = [("mask", ctypes.c_uint32), ("blksize", ctypes.c_uint32),
                ("attributes", ctypes.c_uint64), ("nlink", ctypes.c_uint32),
                ("uid", ctypes.c_uint32), ("gid", ctypes.c_uint32), ("mode", ctypes.c_uint16),
                ("_spare0", ctypes.c_uint16), ("ino", ctypes.c_uint64), ("size", ctypes.c_uint64),
                ("blocks", ctypes.c_uint64), ("attributes_mask", ctypes.c_uint64),
                ("_times", ctypes.c_uint8 * 64), ("rdev_major", ctypes.c_uint32),
                ("rdev_minor", ctypes.c_uint32), ("dev_major", ctypes.c_uint32),
                ("dev_minor", ctypes.c_uint32), ("mnt_id", ctypes.c_uint64),
                ("_spare", ctypes.c_uint8 * 104)]


def is_mount_root(fd: int, what: object) -> bool | None:
    """Whether ``fd`` is the root of a mount (statx STATX_ATTR_MOUNT_ROOT);
    None where the kernel does not report it (before Linux 5.8)."""
    buf = _Statx()
    if _libc.statx(fd, b"", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID,
                   ctypes.byref(buf)) != 0:
        raise _fail(what)
    if not buf.attributes_mask & STATX_ATTR_MOUNT_ROOT:
        return None
    return bool(buf.attributes & STATX_ATTR_MOUNT_ROOT)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_CAP_V3 = 0x20080522


def set_fsids(uid: int, gid: int) -> None:
    """Create files as ``uid``/``gid`` (setfsuid/setfsgid), keeping every
    capability: changing the fsuid from 0 drops CAP_MKNOD, CAP_CHOWN,
    CAP_DAC_OVERRIDE... from the effective set, so they are raised again.

    This is how a file gets an owner that a user namespace maps -- needed on
    a filesystem mounted inside one (a container's /dev tmpfs), where an
    unmapped owner (host root) fails with EOVERFLOW."""
    _libc.setfsgid(gid)
    _libc.setfsuid(uid)
    header = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    if _libc.capget(ctypes.byref(header), data) != 0:
        raise _fail("capget")
    for half in data:
        half.effective = half.permitted
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise _fail("capset")


def pidfd_open(pid: int) -> int:
    try:
        return os.pidfd_open(pid)
    except OSError as err:
        raise OSError(err.errno, err.strerror, f"pid {pid}") from None


def proc_start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat: the start time in clock ticks since boot."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    # comm may contain spaces and parentheses: split after the last ')'
    return int(data[data.rindex(b")") + 2:].split()[19])


# --- bpf(2) -----------------------------------------------------------------
# Not one of the generic numbers: x86_64 has its own, the newer ports share 280.
_NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "loongarch64": 280}


def bpf(cmd: int, attr: bytearray, what: object = "bpf") -> int:
    """bpf(cmd, attr, len(attr)); ``attr`` is the union bpf_attr as bytes and
    is updated in place (queries write their answers into it)."""
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    ret = _libc.syscall(_NR_BPF[_MACHINE], ctypes.c_int(cmd), buf,
                        ctypes.c_uint(len(attr)))
    if ret < 0:
        raise _fail(what)
    return int(ret)
