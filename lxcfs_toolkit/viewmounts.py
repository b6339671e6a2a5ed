"""Putting the lxcfs view into containers, and taking it out again.

What lxcfs-hook (at prestart) and ``lxcfs-toolkit remount/umount`` share.

The view is a set of *targets* inside the container: the lxcfs files over
``/proc/{cpuinfo,meminfo,...}`` and ``/sys/devices/system/cpu/online``, and
the lxcfs directory itself at the same path as on the host.  Each target is
an ``open_tree(OPEN_TREE_CLONE)`` copy of the daemon's file, taken in the
host's mount namespace, made a *slave* (``mount_setattr``: events flow from
the host in, never out) and attached with ``move_mount`` onto the target,
which a forked child resolves inside the container's root.  No path of the
lxcfs directory has to exist inside the container for that.

A target is in one of three states, told apart by the device number of
whatever is mounted there (``fstat`` of the in-root resolved path):

* *live*: the current daemon's superblock -> left alone;
* *stale*: an lxcfs mount of a daemon that is gone (ENOTCONN) or of
  another lxcfs superblock -> unmounted (``remount``), then replaced;
* *absent*: anything else (the container's procfs, sysfs, a directory).

So ``mount_into`` is idempotent: run twice it changes nothing the second
time, and a remount never stacks a second mount on a live one.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import posixpath
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from syscontainer_tools import inroot, mountinfo, ns, syscalls
from syscontainer_tools.errors import ToolError
from syscontainer_tools.mounts import umount_fd

log = logging.getLogger(__name__)

DEFAULT_DIR = "/var/lib/lxc/lxcfs"
FSTYPE = "fuse.lxcfs"
PROC_FILES = ("cpuinfo", "meminfo", "stat", "uptime", "diskstats", "partitions", "swaps",
              "loadavg")
SYS_FILES = ("sys/devices/system/cpu/online",)
# served only where the host has PSI; a daemon without them (C lxcfs < 7) is fine
PRESSURE_FILES = ("proc/pressure/cpu", "proc/pressure/io", "proc/pressure/memory")
# lxcfs file (relative to the lxcfs directory) -> where it goes in the container
FILE_TARGETS = tuple((f"proc/{name}", f"/proc/{name}") for name in PROC_FILES) + tuple(
    (rel, "/" + rel) for rel in SYS_FILES + PRESSURE_FILES)
_STALE_ERRNOS = (errno.ENOTCONN, errno.ECONNABORTED)
_MAX_STACK = 8   # stale mounts stacked on one target that we unmount at most
PROBE_TIMEOUT = 5.0  # seconds a daemon has to answer one read


class NotAnswering(ToolError):
    """No lxcfs daemon answers at the lxcfs directory."""


def lxcfs_dir(value: str | None = None) -> str:
    """The lxcfs directory: ``value``, else $LXCFS_DIR, else /var/lib/lxc/lxcfs."""
    path = value or os.environ.get("LXCFS_DIR") or DEFAULT_DIR
    if not path.startswith("/"):
        raise ToolError(f"lxcfs directory must be an absolute path, not {path!r}")
    path = posixpath.normpath(path)
    if path == "/":
        raise ToolError("lxcfs directory cannot be /")
    # mountinfo names mount points without symlinks; the last component may be
    # a dead FUSE mount, so only the parent is resolved
    parent, name = posixpath.split(path)
    return posixpath.join(os.path.realpath(parent), name)


def target_paths(directory: str) -> tuple[str, ...]:
    """Every place inside a container where the lxcfs view can be mounted."""
    return tuple(path for _, path in FILE_TARGETS) + (directory,)


def lxcfs_mounts(entries: Iterable[mountinfo.MountEntry],
                 directory: str) -> list[mountinfo.MountEntry]:
    """The lxcfs mounts among ``entries`` that sit on one of the view's targets."""
    places = set(target_paths(directory))
    return [e for e in entries if e.fstype == FSTYPE and e.point in places]


# --- the daemon --------------------------------------------------------------

@dataclass(frozen=True)
class Daemon:
    """A live lxcfs at ``directory``; ``dev`` is its superblock's device number."""

    directory: str
    dev: int


def _stale(directory: str) -> NotAnswering:
    return NotAnswering(f"the lxcfs mount at {directory} is stale: its daemon is gone "
                        "(transport endpoint is not connected)")


def _probe(directory: str) -> int:
    """stat the directory, then read a file through it; return its st_dev."""
    try:
        st = os.stat(directory)
    except OSError as err:
        if err.errno in _STALE_ERRNOS:
            raise _stale(directory) from None
        raise NotAnswering(f"no lxcfs at {directory}: {err.strerror}") from None
    top = mountinfo.top_mount(mountinfo.read(), directory)
    if top is None or not top.fstype.startswith("fuse") or top.dev != st.st_dev:
        raise NotAnswering(f"no lxcfs is mounted at {directory}")
    probe = os.path.join(directory, "proc", "uptime")
    try:
        with open(probe, "rb", buffering=0) as f:
            f.read(256)
    except OSError as err:
        if err.errno in _STALE_ERRNOS:
            raise _stale(directory) from None
        raise NotAnswering(f"the lxcfs at {directory} does not answer: "
                           f"{err.strerror}: {probe}") from None
    return st.st_dev


def daemon(directory: str, timeout: float = PROBE_TIMEOUT) -> Daemon:
    """The daemon answering at ``directory``, or ``NotAnswering`` saying why not.

    Answering means: the topmost mount there is FUSE (any lxcfs: C or
    Python) and a real read of a file goes through within ``timeout``
    seconds -- attributes alone can come from the kernel's cache after the
    daemon died, and a hung daemon must not hang a container's start.  The
    probe runs on a short-lived thread that has ended before anything forks."""
    out: list[int | BaseException] = []

    def run() -> None:
        try:
            out.append(_probe(directory))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            out.append(exc)

    thread = threading.Thread(target=run, name="lxcfs-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive() or not out:
        raise NotAnswering(f"the lxcfs at {directory} does not answer within {timeout:g} s")
    result = out[0]
    if isinstance(result, BaseException):
        raise result
    return Daemon(directory, result)


def wait_daemon(directory: str, timeout: float) -> Daemon:
    """``daemon(directory)``, retried every 50 ms for up to ``timeout`` seconds."""
    deadline = time.monotonic() + max(timeout, 0)
    while True:
        try:
            return daemon(directory)
        except NotAnswering as err:
            if time.monotonic() >= deadline:
                if timeout > 0:
                    raise NotAnswering(f"{err.message} (waited {timeout:g} s)") from None
                raise
        time.sleep(0.05)


# --- inside the container (forked child, chrooted to the container's root) ---------

@dataclass
class Plan:
    """What the forked child does; plain data, picklable."""

    procfd: int                 # host /proc, opened before setns: umount by fd through it
    live_dev: int               # the current daemon's st_dev, 0 for umount
    lxcfs_devs: frozenset[int]  # every lxcfs superblock the container has mounted
    items: list[tuple[str, bool, int]]   # (container path, is the directory, clone fd or -1)
    owner: tuple[int, int] | None = None
    umount_only: bool = False
    slave_late: bool = False    # no mount_setattr (kernel < 5.12): make slave after attaching


@dataclass
class Report:
    """What happened in one container (returned by the child)."""

    mounted: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unmounted: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.mounted or self.replaced or self.unmounted)


def _state(fd: int, live_dev: int, lxcfs_devs: frozenset[int]) -> str:
    try:
        dev = os.fstat(fd).st_dev
    except OSError as err:
        if err.errno in _STALE_ERRNOS:
            return "stale"
        raise
    if live_dev and dev == live_dev:
        return "live"
    return "stale" if dev in lxcfs_devs else "absent"


def _make_slave_fd(procfd: int, fd: int, what: str) -> None:
    """mount(2) fallback of mount_setattr: make the mount ``fd`` is the root
    of a slave, through the host's /proc/self/fd/N."""
    os.fchdir(procfd)
    try:
        syscalls.mount(None, f"self/fd/{fd}", None, syscalls.MS_SLAVE)
    except OSError as err:
        raise OSError(err.errno, err.strerror, what) from None
    finally:
        os.chdir("/")


def _open_target(rootfd: int, path: str, is_dir: bool, plan: Plan, report: Report) -> int | None:
    try:
        return inroot.open_in_root(rootfd, path, os.O_PATH)
    except FileNotFoundError:
        if not is_dir or plan.umount_only:
            if not plan.umount_only:
                report.warnings.append(f"{path}: missing in the container, not mounted")
            return None
    # the lxcfs directory: make its mount point the way a bind (-v) would
    try:
        parent, name = inroot.open_parent(rootfd, path, create=True, owner=plan.owner)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=parent)
                if plan.owner is not None:
                    os.chown(name, *plan.owner, dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)
    except OSError as err:
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            report.warnings.append(f"{path}: cannot create the mount point "
                                   f"({err.strerror}): the lxcfs directory is not mounted "
                                   "inside, the /proc files are")
            return None
        raise
    return inroot.open_in_root(rootfd, path, os.O_PATH)


def apply_plan(plan: Plan) -> Report:
    """Runs in the container's mount namespace (see ``ns.run_in``).

    For each target: unmount stale lxcfs mounts (all lxcfs mounts with
    ``umount_only``), then attach the clone unless a live one is there.
    A failure unmounts what this call attached and re-raises."""
    report = Report()
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY)
    attached: list[tuple[int, str]] = []
    try:
        for path, is_dir, clone in plan.items:
            fd = _open_target(rootfd, path, is_dir, plan, report)
            if fd is None:
                continue
            try:
                stale = False
                for _ in range(_MAX_STACK):
                    state = _state(fd, plan.live_dev, plan.lxcfs_devs)
                    if state == "live" and not plan.umount_only:
                        report.live.append(path)
                        break
                    if state == "absent":
                        break
                    umount_fd(plan.procfd, fd, path)
                    stale = True
                    os.close(fd)
                    fd = inroot.open_in_root(rootfd, path, os.O_PATH)
                else:
                    raise ToolError(f"{path}: more than {_MAX_STACK} lxcfs mounts stacked")
                if plan.umount_only:
                    if stale:
                        report.unmounted.append(path)
                    continue
                if path in report.live or clone < 0:
                    if stale:
                        report.unmounted.append(path)
                    continue
                syscalls.move_mount(clone, fd, path)
                attached.append((clone, path))
                if plan.slave_late:
                    _make_slave_fd(plan.procfd, clone, path)
                (report.replaced if stale else report.mounted).append(path)
            finally:
                os.close(fd)
    except BaseException:
        for clone, path in reversed(attached):
            try:
                umount_fd(plan.procfd, clone, path)
            except OSError as err:
                log.error("rollback: cannot unmount %s: %s", path, err.strerror)
        raise
    finally:
        os.close(rootfd)
    return report


# --- from the host -------------------------------------------------------------

@contextlib.contextmanager
def _clones(dmn: Daemon) -> Iterator[tuple[dict[str, int], bool]]:
    """Detached slave copies of every lxcfs file the daemon offers, plus its
    root, keyed by the path relative to the lxcfs directory ("" = root); and
    whether they still have to be made slaves after attaching (no
    mount_setattr before Linux 5.12)."""
    fds: dict[str, int] = {}
    late = False
    try:
        for rel in ["", *(rel for rel, _ in FILE_TARGETS)]:
            src = os.path.join(dmn.directory, rel) if rel else dmn.directory
            try:
                fd = syscalls.open_tree(syscalls.AT_FDCWD, src,
                                        syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC)
            except FileNotFoundError:
                continue   # this daemon does not offer it (C lxcfs has no proc/partitions)
            except OSError as err:
                if err.errno in _STALE_ERRNOS:
                    raise NotAnswering(f"the lxcfs at {dmn.directory} stopped answering "
                                       f"({err.strerror})") from None
                raise
            fds[rel] = fd
            if not late:
                try:
                    syscalls.mount_setattr(fd, src, propagation=syscalls.MS_SLAVE,
                                           recursive=False)
                except OSError as err:
                    if err.errno != errno.ENOSYS:
                        raise
                    late = True
        yield fds, late
    finally:
        for fd in fds.values():
            os.close(fd)


def _procfd() -> int:
    return os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _lxcfs_devs(pid: int) -> frozenset[int]:
    return frozenset(e.dev for e in mountinfo.read(pid) if e.fstype == FSTYPE)


def container_lxcfs_mounts(pid: int, directory: str) -> list[mountinfo.MountEntry]:
    """The lxcfs mounts on the view's targets in the mount namespace of ``pid``
    (stale ones included: mountinfo lists them whether the daemon lives or not)."""
    return lxcfs_mounts(mountinfo.read(pid), directory)


def mount_into(container: Any, pidfd: int, dmn: Daemon) -> Report:
    """Make the lxcfs view of ``container`` complete and live: stale lxcfs
    mounts on the targets are replaced, missing ones added, live ones kept.

    ``container`` is a running ``Container``; ``pidfd`` from
    ``container.init_process()``.  Works before pivot_root (prestart hook)
    and in a running container (remount).  All or nothing: on failure what
    this call attached is unmounted again."""
    pid = container.pid
    try:
        owner = container.host_ids()
    except ToolError:
        owner = None
    procfd = _procfd()
    try:
        with _clones(dmn) as (fds, slave_late):
            # the directory last: its mount point may have to be made, and
            # a failure there shows the rollback of the files
            items = [(path, False, fds.get(rel, -1)) for rel, path in FILE_TARGETS]
            items.append((dmn.directory, True, fds.get("", -1)))
            plan = Plan(procfd=procfd, live_dev=dmn.dev, lxcfs_devs=_lxcfs_devs(pid),
                        items=items, owner=owner, slave_late=slave_late)
            return ns.run_in(pidfd, pid, apply_plan, plan, flags=ns.MNT,
                             rootfs=container.rootfs)
    finally:
        os.close(procfd)


def umount_from(container: Any, pidfd: int, directory: str) -> Report:
    """Unmount every lxcfs mount on the view's targets in ``container``
    (live or stale): it sees the host's /proc values again.  Nothing there
    is success."""
    pid = container.pid
    procfd = _procfd()
    try:
        items = [(directory, True, -1)] + [(path, False, -1) for _, path in FILE_TARGETS]
        plan = Plan(procfd=procfd, live_dev=0, lxcfs_devs=_lxcfs_devs(pid), items=items,
                    umount_only=True)
        return ns.run_in(pidfd, pid, apply_plan, plan, flags=ns.MNT, rootfs=container.rootfs)
    finally:
        os.close(procfd)


# --- prestart: the host side, before the daemon starts ------------------------------

def prestart(directory: str) -> list[str]:
    """Prepare ``directory`` for the daemon (systemd ExecStartPre).

    * a stale lxcfs mount left by a daemon that died is detached, so the
      new daemon can mount there (a live one is an error: stop it first);
    * the parent directory becomes a mount of its own (a recursive bind on
      itself), made private -- out of whatever peer group it inherited from
      its parent, e.g. a shared ``/`` -- and then shared: the daemon's mount
      propagates from it into containers that hold a slave bind of that
      parent (``-v /var/lib/lxc:/var/lib/lxc:rslave``, the guide's layout).
      An existing mount point there is only made shared, never private, and
      never bound again: prestart can run before every daemon start.  A
      parent with other mounts below it (``/var/lib`` for Debian's
      ``/var/lib/lxcfs``) is left alone: binding it on itself would hide or
      leak those; lxcfs-hook and remount do not need the shared parent.
    """
    from . import handover

    lines: list[str] = []
    top = mountinfo.top_mount(mountinfo.read(), directory)
    held = handover.read_state(directory).get("dev")
    if (top is not None and top.fstype == FSTYPE and held is not None and top.dev == held
            and handover.daemon_running(directory)):
        raise ToolError(f"an lxcfs daemon already answers at {directory}",
                        hint="stop it before running prestart")
    if top is not None and top.fstype == FSTYPE and held is not None and top.dev == held:
        # a restart: systemd's fd store or the keeper holds the connection and
        # the next daemon takes it over (serve detaches it if it is dead)
        lines.append(f"left the lxcfs mount at {directory} in place: its connection is "
                     "kept for the next daemon")
        directory_ready = True
    else:
        directory_ready = False
        try:
            daemon(directory)
        except NotAnswering:
            pass
        else:
            raise ToolError(f"an lxcfs daemon already answers at {directory}",
                            hint="stop it before running prestart")
    for _ in range(0 if directory_ready else _MAX_STACK):
        top = mountinfo.top_mount(mountinfo.read(), directory)
        if top is None or not top.fstype.startswith("fuse"):
            break
        syscalls.umount(directory, syscalls.MNT_DETACH)
        lines.append(f"detached the stale {top.fstype} mount at {directory}")
    if not directory_ready:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    parent = os.path.dirname(directory)
    if parent == "/":
        raise ToolError(f"{directory}: the lxcfs directory needs a parent other than /")
    entries = mountinfo.read()
    top = mountinfo.top_mount(entries, parent)
    below = sorted({e.point for e in entries if e.point.startswith(parent + "/")
                    and e.point != directory and not e.point.startswith(directory + "/")})
    if top is None and below:
        # a bind of e.g. /var/lib on itself would hide, or leak, other
        # programs' mounts below it: lxcfs-hook does not need it
        lines.append(f"left {parent} as it is: other mounts below it ({', '.join(below[:3])}"
                     f"{', ...' if len(below) > 3 else ''}); containers get the lxcfs view "
                     "from lxcfs-hook, -v binds of the parent do not follow daemon restarts")
    elif top is None:
        syscalls.mount(parent, parent, None, syscalls.MS_BIND | syscalls.MS_REC)
        syscalls.mount(None, parent, None, syscalls.MS_PRIVATE)
        syscalls.mount(None, parent, None, syscalls.MS_SHARED)
        lines.append(f"bound {parent} on itself, private then shared")
    elif not top.shared:
        syscalls.mount(None, parent, None, syscalls.MS_SHARED)
        lines.append(f"made the mount at {parent} shared")
    else:
        lines.append(f"{parent} is already a shared mount")
    return lines

