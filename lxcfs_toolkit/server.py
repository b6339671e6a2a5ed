"""Mount the Python lxcfs and serve it in the foreground; restart without errors.

``serve(mountpoint)`` is what ``lxcfs-toolkit serve`` calls; ``python -m
lxcfs_toolkit.server MOUNTPOINT`` does the same without the CLI.

Where the connection comes from (``lxcfs_toolkit.handover``): systemd's
file-descriptor store, else the running daemon (it retires once we serve),
else the keeper a SIGKILLed daemon left, else a fresh mount.  Requests are
answered by ``lxcfs_toolkit.fuseloop`` (our own FUSE loop, no libfuse).

Signals:

* SIGTERM, SIGINT: stop for good -- the daemon's mounts in other mount
  namespaces (containers) are taken out while it still answers, the mount
  point is detached, the keeper ends.  Under systemd, when the unit is
  *restarting* (its job is a restart) the daemon instead parks: it stops
  answering and exits, systemd keeps the connection in its fd store, and
  the next daemon answers the requests that queued meanwhile;
* SIGUSR1: reload the view code in place (``importlib.reload``), no unmount;
* SIGUSR2: toggle virtualisation off/on (everyone gets the host's files);
* SIGHUP: reopen the log file.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from syscontainer_tools import mountinfo, syscalls
from syscontainer_tools.errors import ToolError, render

log = logging.getLogger(__name__)

THREADS = 8
# reloaded by SIGUSR1, in this order (what a module imports is reloaded before it)
RELOADABLE = (
    "lxcfs_toolkit.kernfile", "lxcfs_toolkit.views.inputs", "lxcfs_toolkit.views.meminfo",
    "lxcfs_toolkit.views.cpuinfo", "lxcfs_toolkit.views.cpuonline", "lxcfs_toolkit.views.diskstats",
    "lxcfs_toolkit.views.loadavg", "lxcfs_toolkit.views.stat", "lxcfs_toolkit.views.swaps",
    "lxcfs_toolkit.views.uptime", "lxcfs_toolkit.views.pressure", "lxcfs_toolkit.cgroupreader",
    "lxcfs_toolkit.pidns", "lxcfs_toolkit.loadavg", "lxcfs_toolkit.fs",
)




def mount_entry(path: str, mountinfo_path: str = "/proc/self/mountinfo") -> tuple[str, str] | None:
    """(fstype, source) of the topmost mount at ``path``, or None."""
    try:
        with open(mountinfo_path) as f:
            top = mountinfo.top_mount(mountinfo.parse(f.read()), path)
    except OSError:
        return None
    return None if top is None else (top.fstype, top.source)


def _umount_lazy(path: str) -> None:
    syscalls.umount(path, syscalls.MNT_DETACH)


def check_mountpoint(mountpoint: str, *, clean_stale: bool = True) -> None:
    """Refuse a live mount; detect (and by default lazily unmount) a stale one.

    The probe lists the directory: a dead FUSE daemon's attributes may still
    be cached by the kernel (stat succeeds), but an OPENDIR request fails
    with ENOTCONN.
    """
    try:
        os.listdir(mountpoint)
    except FileNotFoundError:
        os.makedirs(mountpoint, exist_ok=True)
        return
    except OSError as err:
        if err.errno not in (errno.ENOTCONN, errno.ECONNABORTED):
            raise ToolError(f"cannot use {mountpoint}: {err.strerror}") from err
        if not clean_stale:
            raise ToolError(
                f"stale FUSE mount at {mountpoint} (transport endpoint is not connected)",
                hint=f"unmount it with 'fusermount -u -z {mountpoint}' or 'umount -l {mountpoint}'",
            ) from err
        log.warning("stale FUSE mount at %s (transport endpoint is not connected): "
                    "detaching it with a lazy unmount", mountpoint)
        try:
            _umount_lazy(mountpoint)
        except OSError as uerr:
            raise ToolError(f"cannot unmount the stale mount at {mountpoint}: {uerr.strerror}") from uerr
        return
    entry = mount_entry(mountpoint)
    if entry is not None and entry[0].startswith("fuse"):
        raise ToolError(
            f"{mountpoint} is already served by a running {entry[1]} ({entry[0]})",
            hint="stop that daemon first; two lxcfs stacked on one directory confuse the hooks",
        )
    if not os.path.isdir(mountpoint):
        raise ToolError(f"{mountpoint} is not a directory")


def _mount_dev(mountpoint: str) -> int | None:
    top = mountinfo.top_mount(mountinfo.read(), mountpoint)
    return top.dev if top is not None and top.fstype == "fuse.lxcfs" else None


def _connect(mountpoint: str) -> tuple[Any, Any]:
    """(Connection, socket of the old daemon or None): take over or mount."""
    from lxcfs_toolkit import fuseloop, handover

    state = handover.read_state(mountpoint)
    dev = _mount_dev(mountpoint)
    fd = handover.from_systemd()
    if fd is not None:
        if dev is not None and dev == state.get("dev") and handover.connection_alive(fd):
            log.info("resuming the connection systemd kept for %s", mountpoint)
            return handover.Connection(fd, state.get("minor"), "systemd"), None
        log.warning("the connection systemd kept is not the one mounted at %s: dropping it",
                    mountpoint)
        handover.sd_notify(f"FDSTOREREMOVE=1\nFDNAME={handover.FDNAME}")
        os.close(fd)
    if dev is not None:
        taken = handover.take_from_daemon(mountpoint)
        if taken is not None:
            sock, conn = taken
            log.info("taking %s over from the running daemon (pid %d)", mountpoint, conn.old_pid)
            return conn, sock
        kept = handover.take_from_keeper(mountpoint)
        if kept is not None and handover.connection_alive(kept.fd):
            log.info("resuming the connection the keeper held for %s", mountpoint)
            return kept, None
    handover.stop_keeper(mountpoint)   # a keeper of a connection no longer mounted here
    check_mountpoint(mountpoint)
    try:
        fd = fuseloop.mount(mountpoint)
    except OSError as err:
        raise ToolError(f"cannot mount lxcfs at {mountpoint}: {err.strerror}",
                         hint="is the fuse module loaded and /dev/fuse present?") from err
    return handover.Connection(fd, None, "mount"), None


def _new_ops(cfs_quota: bool) -> Any:
    from lxcfs_toolkit import fs
    from lxcfs_toolkit.cgroupreader import Hierarchies

    return fs.LxcfsOperations(Hierarchies.discover(), cfs_quota=cfs_quota)


def reload_views(old_ops: Any, cfs_quota: bool) -> Any:
    """Re-import the view code and build new operations (SIGUSR1)."""
    kernfile = sys.modules.get("lxcfs_toolkit.kernfile")
    old_files = getattr(kernfile, "held", None)
    for name in RELOADABLE:
        module = sys.modules.get(name)
        module = importlib.reload(module) if module is not None else importlib.import_module(name)
    ops = _new_ops(cfs_quota)
    with contextlib.suppress(AttributeError):
        ops.loads = old_ops.loads   # keep the load average's history
    if old_files is not None and hasattr(old_files, "close"):
        old_files.close()           # the new module keeps its own files open
    return ops


def reopen_logs() -> None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            old = handler.setStream(handler._open())
            if old is not None:
                old.close()


def _restarting_under_systemd() -> bool:
    """Whether systemd is restarting our unit (vs. stopping it): its job type."""
    from syscontainer_tools.command import run
    from syscontainer_tools.errors import ToolError

    unit = ""
    try:
        with open("/proc/self/cgroup") as f:
            for part in f.read().replace("\n", "/").split("/"):
                if part.endswith(".service"):
                    unit = part
    except OSError:
        return False
    if not unit:
        return False
    try:
        out = run(["systemctl", "list-jobs", "--no-legend", "--plain", unit], check=False,
                  timeout=5).stdout
    except ToolError:
        return False
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == unit:
            return fields[2] in ("restart", "try-restart", "reload-or-restart", "start")
    return False


class _Daemon:
    """Signals and the main thread's loop."""

    def __init__(self, cfs_quota: bool) -> None:
        self.session: Any = None       # set once it serves; signals before that wait for it
        self.cfs_quota = cfs_quota
        self.wake = threading.Event()
        self.pending_toggles = 0
        self.stop_signal = 0
        self.lock = threading.Lock()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGUSR1, self._on_reload)
        signal.signal(signal.SIGUSR2, self._on_toggle)
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.stop_signal = signum
        self.wake.set()

    def _on_reload(self, signum: int, frame: Any) -> None:
        if self.session is None:
            return      # not serving yet: the code just loaded is the newest
        try:
            self.session.ops = reload_views(self.session.ops, self.cfs_quota)
            log.info("SIGUSR1: view code reloaded")
        except Exception:  # noqa: BLE001 - a broken upgrade keeps the old code serving
            log.exception("SIGUSR1: reloading the view code failed; the old code keeps serving")

    def _on_toggle(self, signum: int, frame: Any) -> None:
        if self.session is None:
            self.pending_toggles += 1
            return
        self.session.virtualize = not self.session.virtualize
        log.info("SIGUSR2: virtualisation %s", "on" if self.session.virtualize else
                 "off: every reader gets the host's files")

    def _on_hup(self, signum: int, frame: Any) -> None:
        reopen_logs()
        log.info("SIGHUP: log reopened")


def serve(
    mountpoint: str,
    *,
    cfs_quota: bool = True,
    single_cpu: bool = True,
    threads: bool | int = True,
    debug: bool = False,
) -> None:
    """Serve the lxcfs view at ``mountpoint`` until SIGTERM/SIGINT or a successor.

    ``cfs_quota``: show only as many CPUs as the CFS quota allows (rounded
    up). ``single_cpu``: gather the daemon's threads on one CPU while many
    readers are concurrent (see ``lxcfs_toolkit.affinity``). ``threads``:
    worker threads (True: 8, False: 1)."""
    from lxcfs_toolkit import fs, fuseloop, handover

    mountpoint = os.path.abspath(mountpoint)
    daemon = _Daemon(cfs_quota)
    if threading.current_thread() is threading.main_thread():
        daemon.install()   # before mounting: no signal may kill it by accident
    conn, old = _connect(mountpoint)
    from lxcfs_toolkit import kernfile

    kernfile.raise_fd_limit()   # systemd's soft 1024 would leave few files to keep open
    ops = _new_ops(cfs_quota)
    governor = None
    if single_cpu:
        from lxcfs_toolkit.affinity import AffinityGovernor

        governor = AffinityGovernor()
        governor.register_thread()
    dirs, files = fs.tree()
    nthreads = THREADS if threads is True else max(1, int(threads))
    session = fuseloop.Session(
        conn.fd, ops, fuseloop.Tree(dirs, files), threads=nthreads, minor=conn.minor,
        on_open=governor.note_open if governor else None,
        on_thread=governor.register_thread if governor else None)
    session.start()
    if old is not None:
        handover.confirm(old)           # the old daemon finishes its requests and exits
    if conn.minor is None and not session.initialized.wait(10):
        session.stop()
        raise ToolError(f"the kernel sent no FUSE INIT for {mountpoint}")
    dev = _mount_dev(mountpoint) or 0
    handover.write_state(mountpoint, session.minor or fuseloop.OUR_MINOR, dev)
    fdstore = handover.sd_notify(f"FDSTORE=1\nFDNAME={handover.FDNAME}", [conn.fd])
    keeper = None
    if not fdstore:
        keeper = handover.attach(mountpoint)
        if keeper is None:
            handover.spawn_keeper(mountpoint, conn.fd)
            for _ in range(100):
                keeper = handover.attach(mountpoint)
                if keeper is not None:
                    break
                time.sleep(0.02)
    daemon.session = session
    if daemon.pending_toggles % 2:
        session.virtualize = False
    def retire() -> None:
        session.stop()
        daemon.wake.set()

    def watch() -> None:
        session.destroyed.wait()
        daemon.wake.set()

    control = handover.ControlServer(
        handover.paths(mountpoint)[0], conn.fd,
        info=lambda: {"minor": session.minor or fuseloop.OUR_MINOR}, retire=retire)
    threading.Thread(target=watch, name="destroyed", daemon=True).start()
    handover.sd_notify(f"READY=1\nMAINPID={os.getpid()}")
    log.info("serving lxcfs at %s (%s, %d workers, protocol 7.%s)", mountpoint,
             {"mount": "new mount", "daemon": "taken over from the running daemon",
              "keeper": "resumed from the keeper", "systemd": "resumed from systemd's store"}
             [conn.source], nthreads, session.minor)
    while not daemon.wake.wait(3600):
        pass
    if control.retired.is_set():
        log.info("handed %s over to the new daemon", mountpoint)
        os.close(conn.fd)
        return
    control.close()
    if session.destroyed.is_set():
        log.info("%s was unmounted", mountpoint)
        handover.stop_keeper(mountpoint)
        handover.remove_state(mountpoint)
        session.stop()
        os.close(conn.fd)
        return
    handover.sd_notify("STOPPING=1")
    if fdstore and _restarting_under_systemd():
        log.info("systemd restarts the unit: parking %s in its fd store", mountpoint)
        session.stop()
        os.close(conn.fd)
        return
    _stop_for_good(session, mountpoint, dev, conn.fd, fdstore)


def _stop_for_good(session: Any, mountpoint: str, dev: int, fd: int, fdstore: bool) -> None:
    from lxcfs_toolkit import handover, withdraw

    if dev:
        for pid, failure in withdraw.umount_everywhere(dev, mountpoint):
            log.error("cannot take the lxcfs view out of pid %d's mounts: %s", pid, failure)
    handover.stop_keeper(mountpoint)
    if fdstore:
        handover.sd_notify(f"FDSTOREREMOVE=1\nFDNAME={handover.FDNAME}")
    top = mountinfo.top_mount(mountinfo.read(), mountpoint)
    if top is not None and top.fstype == "fuse.lxcfs" and top.dev == dev:
        try:
            _umount_lazy(mountpoint)
        except OSError as err:
            log.error("cannot unmount %s: %s", mountpoint, err.strerror)
    session.stop()
    os.close(fd)
    handover.remove_state(mountpoint)
    log.info("unmounted %s", mountpoint)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lxcfs_toolkit.server",
                                     description="Serve the Python lxcfs at MOUNTPOINT.")
    parser.add_argument("mountpoint")
    parser.add_argument("--no-cfs-quota", action="store_true",
                        help="show every cpuset CPU even when a CFS quota allows fewer")
    parser.add_argument("--all-cpus", action="store_true",
                        help="never gather the daemon's threads on one CPU")
    parser.add_argument("--single-thread", action="store_true",
                        help="serve every request on one thread")
    parser.add_argument("--threads", type=int, default=THREADS, help="worker threads")
    parser.add_argument("--log", help="also log to this file (SIGHUP reopens it)")
    parser.add_argument("--debug", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if args.log:
        handlers.append(logging.FileHandler(args.log))
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=handlers)
    try:
        serve(args.mountpoint, cfs_quota=not args.no_cfs_quota, single_cpu=not args.all_cpus,
              threads=1 if args.single_thread else args.threads, debug=args.debug)
    except ToolError as err:
        for line in render(err, action="serve lxcfs"):
            print(line, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
