"""lxcfs-hook and lxcfs-toolkit remount/umount/check-lxcfs/prestart with real
runc containers, against each lxcfs daemon: the C ``lxcfs`` and this
project's Python one (``lxcfs_toolkit.server``).

Each daemon gets its own test-owned lxcfs directory under /run (prepared
with ``lxcfs-toolkit prestart``, like the systemd unit does), its own
containers, and is killed, restarted and stopped by the tests.  No host
lxcfs (/var/lib/lxcfs, /var/lib/lxc) is ever touched.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lxcfs_toolkit import viewmounts
from syscontainer_tools import mountinfo, ns, syscalls

from .conftest import PREFIX, Ctr, write_config
from .waits import polls, scaled

pytestmark = pytest.mark.system

MEMORY = 256 << 20
BIN = Path(sys.executable).parent
# the Python daemon: importable here, or (until the branches are merged) run by
# the interpreter LXCFS_SERVER_PYTHON names (e.g. another checkout's venv)
SERVER_PYTHON = os.environ.get("LXCFS_SERVER_PYTHON")
HAVE_PY_SERVER = bool(SERVER_PYTHON) or importlib.util.find_spec("lxcfs_toolkit.server") is not None


def host_memtotal() -> int:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1])


class Daemon:
    """One lxcfs daemon process serving ``directory``."""

    def __init__(self, kind: str, directory: str, tmp: Path) -> None:
        self.kind = kind
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / "daemon.log"
        self.pidfile = tmp / "daemon.pid"

    def argv(self) -> list[str]:
        if self.kind == "c":
            return ["lxcfs", "-f", "-p", str(self.pidfile), self.directory]
        return [SERVER_PYTHON or sys.executable, "-m", "lxcfs_toolkit.server", self.directory]

    def _servings(self) -> int:
        return self.log.read_text(errors="replace").count("serving lxcfs at") if self.log.exists() else 0

    def start(self) -> None:
        servings = self._servings()
        env = dict(os.environ)
        out = open(self.log, "ab")  # noqa: SIM115 - the daemon keeps it
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=out, env=env, cwd=self.log.parent,
                                     start_new_session=True)
        out.close()
        # (the VM lane's emulated guest is slower: the FUSE daemon took ~30 s there)
        deadline = time.monotonic() + scaled(15)
        while True:
            try:
                viewmounts.daemon(self.directory)
                # the Python daemon is fully up (its keeper started) once it says so
                if self.kind == "c" or self._servings() > servings:
                    return
                raise viewmounts.NotAnswering("not fully up yet")
            except viewmounts.NotAnswering:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{self.kind} lxcfs did not come up: "
                                         f"{self.log.read_text(errors='replace')[-2000:]}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the mount stays behind, stale (ENOTCONN).  The Python
        daemon's keeper is killed too (else it keeps the connection for
        the next daemon: test_lxcfs_restart.py tests that)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(scaled(10))
        self.proc = None
        for pid in keepers(self.directory):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for _ in polls(5):
            if not keepers(self.directory):
                break
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: the daemon unmounts itself."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(scaled(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(scaled(10))
            self.proc = None
        for _ in range(8):   # a killed daemon leaves its mount: never leave it behind
            top = mountinfo.top_mount(mountinfo.read(), self.directory)
            if top is None or not top.fstype.startswith("fuse"):
                break
            syscalls.umount(self.directory, syscalls.MNT_DETACH)


def keepers(directory: str) -> list[int]:
    """Pids of the Python lxcfs keepers holding ``directory``'s connection."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"lxcfs_toolkit.handover" in cmd and os.fsencode(directory) in cmd:
                pids.append(int(pid))
    return pids


@pytest.fixture(scope="module", params=["c", "python"])
def daemon(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    kind = request.param
    if kind == "c" and not shutil.which("lxcfs"):
        pytest.skip("C lxcfs (/usr/bin/lxcfs) is not installed")
    if kind == "python" and not HAVE_PY_SERVER:
        pytest.skip("lxcfs_toolkit.server (the Python daemon) is not importable on this branch")
    parent = f"/run/{PREFIX}-lxcfs-{kind}"
    directory = f"{parent}/lxcfs"
    dmn = Daemon(kind, directory, tmp_path_factory.mktemp(f"lxcfs-daemon-{kind}"))
    try:
        proc = toolkit(directory, "prestart")
        assert proc.returncode == 0, proc.stderr
        dmn.start()
        yield dmn
    finally:
        dmn.stop()
        with contextlib.suppress(OSError):
            if mountinfo.top_mount(mountinfo.read(), parent):
                syscalls.umount(parent, syscalls.MNT_DETACH)
        shutil.rmtree(parent, ignore_errors=True)


def toolkit(directory: str, *args: str, root: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LXCFS_DIR=directory, SYSCONTAINER_ENGINE="runc")
    if root:
        env["SYSCONTAINER_RUNTIME_ROOT"] = root
    return subprocess.run([sys.executable, "-m", "lxcfs_toolkit.cli", *args], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, check=False)


def hook_path(tmp: Path) -> str:
    script = BIN / "lxcfs-hook"
    if script.exists():
        return str(script)
    wrapper = tmp / "lxcfs-hook"
    wrapper.write_text(f"#!{sys.executable}\nimport sys\nfrom lxcfs_toolkit.hook import main\n"
                       "sys.exit(main())\n")
    wrapper.chmod(0o755)
    return str(wrapper)


class Env:
    """The daemon, its directory, and module-owned containers."""

    def __init__(self, daemon: Daemon, root: str, template: Path, tmp: Path) -> None:
        self.daemon = daemon
        self.directory = daemon.directory
        self.root = root
        self.template = template
        self.tmp = tmp
        self.hook = hook_path(tmp)
        self.made: list[Ctr] = []

    def hooks(self, log: Path) -> dict[str, Any]:
        return {"prestart": [{"path": self.hook, "args": [
            "lxcfs-hook", "--lxcfs-dir", self.directory, "--log", str(log)]}]}

    def container(self, name: str, *, hook: bool = True, start: bool = True,
                  plant: str | None = None) -> Ctr:
        cid = f"{PREFIX}-{self.daemon.kind[0]}{name}-{secrets.token_hex(2)}"
        bundle = self.tmp / cid
        bundle.mkdir()
        shutil.copytree(self.template, bundle / "rootfs", symlinks=True)
        if plant:     # a file where the hook must create the lxcfs directory
            target = bundle / "rootfs" / plant.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("in the way\n")
        write_config(bundle, memory=MEMORY, cpus="0",
                     hooks=self.hooks(bundle / "hook.log") if hook else None)
        ctr = Ctr(cid, bundle, self.root)
        self.made.append(ctr)
        if start:
            ctr.start()
        return ctr

    def tool(self, *args: str) -> subprocess.CompletedProcess[str]:
        return toolkit(self.directory, *args, root=self.root)


@pytest.fixture(scope="module")
def env(daemon: Daemon, runtime_root: str, rootfs_template: Path,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(daemon, runtime_root, rootfs_template,
            tmp_path_factory.mktemp(f"lxcfs-{daemon.kind}"))
    try:
        yield e
    finally:
        for ctr in e.made:
            ctr.stop()


@pytest.fixture
def live(env: Env) -> Env:
    """The daemon is running when the test starts (a test may have stopped it)."""
    if env.daemon.proc is None or env.daemon.proc.poll() is not None:
        env.daemon.stop()
        assert env.tool("prestart").returncode == 0
        env.daemon.start()
    return env


def memtotal(ctr: Ctr) -> int:
    out = ctr.exec("cat", "/proc/meminfo").stdout
    line = next(x for x in out.splitlines() if x.startswith("MemTotal:"))
    return int(line.split()[1])


def lxcfs_points(ctr: Ctr) -> dict[str, str]:
    """Mount point -> optional fields, of the fuse.lxcfs mounts inside ``ctr``."""
    out = {}
    for entry in mountinfo.read(ctr.pid):
        if entry.fstype == viewmounts.FSTYPE:
            out[entry.point] = " ".join(entry.optional)
    return out


def mount_ids(ctr: Ctr) -> set[int]:
    return {e.mount_id for e in mountinfo.read(ctr.pid) if e.fstype == viewmounts.FSTYPE}


# --- the hook -----------------------------------------------------------------

def test_hook_shows_memory_limit_and_cpuset(live: Env) -> None:
    ctr = live.container("view")
    assert memtotal(ctr) == MEMORY >> 10
    assert host_memtotal() != MEMORY >> 10
    cpuinfo = ctr.exec("cat", "/proc/cpuinfo").stdout
    processors = [x for x in cpuinfo.splitlines() if x.startswith("processor")]
    assert len(processors) == 1, cpuinfo
    assert ctr.exec("cat", "/sys/devices/system/cpu/online").stdout.strip() == "0"
    points = lxcfs_points(ctr)
    expected = {"/proc/meminfo", "/proc/cpuinfo", "/proc/stat", "/proc/uptime",
                "/proc/diskstats", "/proc/swaps", "/proc/loadavg",
                "/sys/devices/system/cpu/online", live.directory}
    assert expected <= set(points), points
    # slave of the host's mount, never shared
    for point, optional in points.items():
        assert "shared:" not in optional, (point, optional)
    # the lxcfs directory itself is inside, served by the daemon
    assert ctr.exec("cat", f"{live.directory}/proc/meminfo").stdout.startswith("MemTotal:")
    log = (ctr.bundle / "hook.log").read_text()
    assert "mounted /proc/meminfo" in log


def test_hook_fails_cleanly_when_mounting_fails(live: Env) -> None:
    """A daemon answers but the view cannot be completed: the start fails
    with the reason, nothing is left mounted in the host's namespace."""
    before = mountinfo.read()
    ctr = live.container("trap", start=False, plant=os.path.dirname(live.directory))
    with pytest.raises(AssertionError) as info:
        ctr.start()
    assert "Failed to mount lxcfs:" in str(info.value)
    assert "Not a directory" in str(info.value)
    after = mountinfo.read()
    assert _ours(after) == _ours(before)


_OTHER_SESSION = re.compile(r"/(sct[0-9a-z]{6}|scdemo)")


def _ours(entries: list[mountinfo.MountEntry]) -> set[tuple[str, str]]:
    """The host's mounts, less those another test session or the demo running
    on the same host may be making or removing at the same time."""
    return {(e.point, e.fstype) for e in entries
            if PREFIX in e.point or not _OTHER_SESSION.search(e.point)}


def test_container_started_without_daemon_keeps_host_values(live: Env) -> None:
    live.daemon.stop()
    try:
        ctr = live.container("nodaemon")
        assert memtotal(ctr) == host_memtotal()
        assert lxcfs_points(ctr) == {}
        log = (ctr.bundle / "hook.log").read_text()
        assert "lxcfs not mounted" in log and "host's /proc values" in log
        # a killed daemon's stale mount is "no daemon" too
        assert live.tool("prestart").returncode == 0
        live.daemon.start()
        live.daemon.kill()
        stale = live.container("staledaemon")
        assert memtotal(stale) == host_memtotal()
        assert lxcfs_points(stale) == {}
    finally:
        live.daemon.stop()
    assert live.tool("prestart").returncode == 0
    live.daemon.start()
    # remount all gives the view to containers wired for lxcfs (the hook ran
    # for them) that started without it, and leaves unwired ones alone ...
    plain = live.container("nohook", hook=False)
    proc = live.tool("remount", "all")
    assert proc.returncode == 0, proc.stderr
    assert f"Remount lxcfs to container({ctr.id}) done." in proc.stdout.splitlines()
    assert plain.id not in proc.stdout
    assert memtotal(ctr) == MEMORY >> 10
    assert memtotal(plain) == host_memtotal() and lxcfs_points(plain) == {}
    # ... a named one gets the view, and is wired from then on
    proc = live.tool("remount", plain.id)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"Remount lxcfs to container({plain.id}) done."
    assert memtotal(plain) == MEMORY >> 10
    assert live.tool("umount", plain.id).returncode == 0
    proc = live.tool("remount", "all")
    assert f"Remount lxcfs to container({plain.id}) done." in proc.stdout.splitlines()
    assert memtotal(plain) == MEMORY >> 10


def test_hung_daemon_does_not_hang_container_start(live: Env) -> None:
    """A daemon that stopped answering (SIGSTOP) but still holds its mount:
    the hook gives up after its probe timeout and the container starts on
    the host's values."""
    assert live.daemon.proc is not None
    live.daemon.proc.send_signal(signal.SIGSTOP)
    try:
        start = time.monotonic()
        ctr = live.container("hung")
        took = time.monotonic() - start
    finally:
        live.daemon.proc.send_signal(signal.SIGCONT)
    assert took < viewmounts.PROBE_TIMEOUT + scaled(10)
    assert memtotal(ctr) == host_memtotal()
    assert "does not answer within" in (ctr.bundle / "hook.log").read_text()
    assert live.tool("check-lxcfs").returncode == 0      # answering again


# --- daemon restart, remount, umount ------------------------------------------------

def test_daemon_restart_then_remount_all_heals_containers(live: Env) -> None:
    c1, c2 = live.container("r1"), live.container("r2")
    plain = live.container("plain", hook=False)
    pids = (c1.pid, c2.pid)
    assert memtotal(c1) == memtotal(c2) == MEMORY >> 10
    live.daemon.kill()
    for ctr in (c1, c2):
        proc = ctr.exec("cat", "/proc/meminfo", check=False)
        assert proc.returncode != 0
        assert "Transport endpoint is not connected" in proc.stderr
    assert memtotal(plain) == host_memtotal()
    check = live.tool("check-lxcfs")
    assert check.returncode == 1
    assert check.stderr.startswith("Failed to check lxcfs:")
    assert "not connected" in check.stderr
    # what the systemd unit does: prestart, the daemon, remount all
    assert live.tool("prestart").returncode == 0
    live.daemon.start()
    assert live.tool("check-lxcfs").returncode == 0
    proc = live.tool("remount", "all")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"Remount lxcfs to container({c1.id}) done." in lines
    assert f"Remount lxcfs to container({c2.id}) done." in lines
    assert plain.id not in proc.stdout
    assert memtotal(c1) == memtotal(c2) == MEMORY >> 10
    assert (c1.pid, c2.pid) == pids            # never restarted
    assert c1.exec("cat", "/proc/uptime").returncode == 0
    assert memtotal(plain) == host_memtotal()
    assert lxcfs_points(plain) == {}
    # the stale mounts were replaced, not stacked: one mount per target
    entries = [e for e in mountinfo.read(c1.pid) if e.fstype == viewmounts.FSTYPE]
    assert len(entries) == len({e.point for e in entries})
    # a second remount finds everything live and changes nothing
    ids = mount_ids(c1)
    assert live.tool("remount", "-a").returncode == 0
    assert mount_ids(c1) == ids


def test_umount_and_remount_one_container(live: Env) -> None:
    c1, c2 = live.container("u1"), live.container("u2")
    c2_ids = mount_ids(c2)
    proc = live.tool("umount", c1.id)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"Umount lxcfs from container({c1.id}) done."
    assert memtotal(c1) == host_memtotal()
    assert lxcfs_points(c1) == {}
    assert memtotal(c2) == MEMORY >> 10
    assert mount_ids(c2) == c2_ids             # untouched
    # umount again: nothing there is success
    assert live.tool("umount", "-c", c1.id).returncode == 0
    proc = live.tool("remount", "-c", c1.id)
    assert proc.returncode == 0, proc.stderr
    assert memtotal(c1) == MEMORY >> 10
    assert mount_ids(c2) == c2_ids
    # umount all takes every container's view; remount all puts it back into
    # every wired one (their hook ran), also one whose mounts are all gone
    plain = live.container("u3", hook=False)
    proc = live.tool("umount", "all")
    assert proc.returncode == 0, proc.stderr
    assert {f"Umount lxcfs from container({c.id}) done." for c in (c1, c2)} <= set(
        proc.stdout.splitlines())
    assert memtotal(c1) == memtotal(c2) == host_memtotal()
    assert lxcfs_points(c1) == lxcfs_points(c2) == {}
    proc = live.tool("remount", "all")
    assert proc.returncode == 0, proc.stderr
    assert {f"Remount lxcfs to container({c.id}) done." for c in (c1, c2)} <= set(
        proc.stdout.splitlines())
    assert plain.id not in proc.stdout
    assert memtotal(c1) == memtotal(c2) == MEMORY >> 10
    assert memtotal(plain) == host_memtotal() and lxcfs_points(plain) == {}


def test_remount_all_fails_when_one_container_fails(live: Env) -> None:
    good, bad = live.container("good"), live.container("bad")
    live.daemon.kill()
    assert live.tool("prestart").returncode == 0
    live.daemon.start()
    # make the bad one's lxcfs directory impossible to mount again: its
    # stale mount goes, and a file takes the place of the directory
    ns_umount(bad, live.directory)
    parent = bad.rootfs / os.path.dirname(live.directory).lstrip("/")
    shutil.rmtree(parent)
    parent.write_text("in the way\n")
    proc = live.tool("remount", "all")
    assert proc.returncode == 1
    assert f"Remount lxcfs to container({good.id}) done." in proc.stdout.splitlines()
    assert f"Failed to remount lxcfs: container {bad.id}:" in proc.stderr
    assert memtotal(good) == MEMORY >> 10
    # the bad one: rolled back, no live lxcfs mount was left half-way
    live_dev = viewmounts.daemon(live.directory).dev
    assert not [e for e in mountinfo.read(bad.pid) if e.dev == live_dev]
    parent.unlink()


def _umount_in(path: str) -> None:
    syscalls.umount(path, syscalls.MNT_DETACH)


def _mount_tmpfs(path: str) -> None:
    syscalls.mount("lxcfs-leak-probe", path, "tmpfs", 0, "size=64k")


def ns_umount(ctr: Ctr, path: str) -> None:
    pidfd = os.pidfd_open(ctr.pid)
    try:
        ns.run_in(pidfd, ctr.pid, _umount_in, path)
    finally:
        os.close(pidfd)


def test_container_mounts_under_lxcfs_dir_stay_inside(live: Env) -> None:
    ctr = live.container("prop")
    pidfd = os.pidfd_open(ctr.pid)
    target = f"{live.directory}/proc"
    try:
        ns.run_in(pidfd, ctr.pid, _mount_tmpfs, target)
        inside = [e for e in mountinfo.read(ctr.pid) if e.source == "lxcfs-leak-probe"]
        assert [e.point for e in inside] == [target]
        host = [e for e in mountinfo.read() if e.source == "lxcfs-leak-probe"]
        assert host == []
        # nor in another container
        other = live.container("prop2")
        assert not [e for e in mountinfo.read(other.pid)
                    if e.source == "lxcfs-leak-probe"]
    finally:
        with contextlib.suppress(Exception):
            ns.run_in(pidfd, ctr.pid, _umount_in, target)
        os.close(pidfd)


def test_mount_without_mount_setattr_is_still_a_slave(live: Env,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels before 5.12 lack mount_setattr: the clones are made slaves with
    mount(2) after attaching, and nothing mounted inside leaks to the host."""
    from syscontainer_tools.engines import Engine, find

    def no_mount_setattr(*args: Any, **kw: Any) -> None:
        import errno

        raise OSError(errno.ENOSYS, "Function not implemented")

    ctr = live.container("nosetattr", hook=False)
    monkeypatch.setattr(syscalls, "mount_setattr", no_mount_setattr)
    c = find(ctr.id, Engine.RUNC, live.root)
    with c.init_process() as pidfd:
        report = viewmounts.mount_into(c, pidfd, viewmounts.daemon(live.directory))
        assert "/proc/meminfo" in report.mounted
        assert memtotal(ctr) == MEMORY // 1024
        inside = [e for e in mountinfo.read(ctr.pid) if e.fstype == viewmounts.FSTYPE]
        assert inside and all(any(o.startswith("master:") for o in e.optional)
                              for e in inside), inside
        target = f"{live.directory}/proc"
        ns.run_in(pidfd, ctr.pid, _mount_tmpfs, target)
        try:
            assert [e for e in mountinfo.read() if e.source == "lxcfs-leak-probe"] == []
        finally:
            ns.run_in(pidfd, ctr.pid, _umount_in, target)


# --- the CLI's edges -----------------------------------------------------------------

def test_cli_errors(live: Env) -> None:
    proc = live.tool("remount", f"{PREFIX}-nosuch")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Failed to remount lxcfs: container ")
    assert "not found" in proc.stderr
    assert live.tool("remount").returncode == 2
    assert live.tool("umount", "all", "-c", "x").returncode == 2
    proc = live.tool("remount", "all", "--wait", "soon")
    assert proc.returncode == 1 and proc.stderr.startswith("Failed to remount lxcfs: --wait")
    # no daemon at a directory
    nothing = toolkit(f"/run/{PREFIX}-nolxcfs/lxcfs", "check-lxcfs")
    assert nothing.returncode == 1
    assert nothing.stderr.startswith("Failed to check lxcfs: no lxcfs at ")
    nothing = toolkit(f"/run/{PREFIX}-nolxcfs/lxcfs", "remount", "all", "--wait", "0.2")
    assert nothing.returncode == 1
    assert "waited 0.2 s" in nothing.stderr
    # a container that is not running
    stopped = live.container("stopped")
    stopped.runc("kill", stopped.id, "KILL")
    for _ in polls(5):
        if stopped.state()["status"] == "stopped":
            break
        time.sleep(0.05)
    proc = live.tool("remount", stopped.id)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"Failed to remount lxcfs: container {stopped.id} is not "
                                  "running")
    # prestart refuses to run under a live daemon
    proc = live.tool("prestart")
    assert proc.returncode == 1 and "already answers" in proc.stderr
    assert live.tool("check-lxcfs").stdout.strip() == f"lxcfs is running at {live.directory}"


def test_prestart_binds_parent_once_and_leaves_busy_parents() -> None:
    base = f"/run/{PREFIX}-prestart"
    directory = f"{base}/lxc/lxcfs"
    busy = f"{base}/busy"
    try:
        proc = toolkit(directory, "prestart")
        assert proc.returncode == 0, proc.stderr
        assert os.path.isdir(directory)
        at_parent = [e for e in mountinfo.read() if e.point == f"{base}/lxc"]
        assert len(at_parent) == 1 and at_parent[0].shared
        # again (every daemon start): no second bind
        proc = toolkit(directory, "prestart")
        assert proc.returncode == 0 and "already a shared mount" in proc.stdout
        assert len([e for e in mountinfo.read() if e.point == f"{base}/lxc"]) == 1
        # a parent with someone else's mount below it is left alone
        os.makedirs(f"{busy}/other")
        syscalls.mount("prestart-probe", f"{busy}/other", "tmpfs", 0, "size=64k")
        proc = toolkit(f"{busy}/lxcfs", "prestart")
        assert proc.returncode == 0, proc.stderr
        assert f"left {busy} as it is" in proc.stdout
        assert not [e for e in mountinfo.read() if e.point == busy]
        assert os.path.isdir(f"{busy}/lxcfs")
    finally:
        for point in (f"{busy}/other", f"{base}/lxc"):
            with contextlib.suppress(OSError):
                syscalls.umount(point, syscalls.MNT_DETACH)
        shutil.rmtree(base, ignore_errors=True)


def test_hook_exit_status_without_daemon(tmp_path: Path) -> None:
    """The hook with no daemon: exit 0, nothing mounted (no container needed:
    it gives up before it enters one)."""
    state = {"id": "x", "pid": os.getpid(), "bundle": str(tmp_path), "status": "creating"}
    (tmp_path / "config.json").write_text(json.dumps({"root": {"path": "rootfs"}}))
    log = tmp_path / "hook.log"
    proc = subprocess.run([sys.executable, "-m", "lxcfs_toolkit.hook", "--lxcfs-dir",
                           f"/run/{PREFIX}-nolxcfs/lxcfs", "--log", str(log)],
                          input=json.dumps(state), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "lxcfs not mounted" in log.read_text()
    bad = subprocess.run([sys.executable, "-m", "lxcfs_toolkit.hook"], input="{not json",
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert bad.stderr.startswith("Failed to mount lxcfs: the OCI state on stdin is not JSON")


# --- the Python daemon: restart without errors, stop without dead mounts ----------------

def _reader(ctr: Ctr) -> subprocess.Popen[str]:
    """A loop of cat /proc/meminfo inside ``ctr`` until /tmp/stop exists; prints "reads errors"."""
    script = ("i=0; e=0; while [ ! -e /tmp/stop ]; do "
              "cat /proc/meminfo > /dev/null 2>&1 || e=$((e+1)); i=$((i+1)); done; echo $i $e")
    return subprocess.Popen(["runc", "--root", ctr.root, "exec", ctr.id, "/bin/sh", "-c", script],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)


def test_python_daemon_restart_is_invisible_and_stop_leaves_host_values(live: Env) -> None:
    if live.daemon.kind != "python":
        pytest.skip("C lxcfs has no handover (its restart is what remount all heals)")
    c1, c2 = live.container("h1"), live.container("h2")
    plain = live.container("hplain", hook=False)
    readers = [_reader(c) for c in (c1, c2)]
    time.sleep(1)
    old = live.daemon.proc
    assert old is not None
    # restart: a second daemon takes the connection over, the first exits 0
    live.daemon.start()
    assert old.wait(scaled(20)) == 0
    time.sleep(0.5)
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGUSR2, signal.SIGHUP):
        live.daemon.proc.send_signal(sig)   # type: ignore[union-attr]
        time.sleep(0.3)
    for c in (c1, c2):
        (c.rootfs / "tmp" / "stop").write_text("")
    for r in readers:
        reads, errors = map(int, r.communicate(timeout=scaled(60))[0].split())
        assert errors == 0 and reads > 10, (reads, errors)
    assert memtotal(c1) == memtotal(c2) == MEMORY >> 10
    # stop for good: no dead mount anywhere, the containers see the host's values
    live.daemon.stop()
    assert mountinfo.top_mount(mountinfo.read(), live.directory) is None
    for c in (c1, c2):
        assert lxcfs_points(c) == {}
        assert memtotal(c) == host_memtotal()
    assert memtotal(plain) == host_memtotal()
    # back: remount all (the unit's ExecStartPost) gives the wired ones the view again
    assert live.tool("prestart").returncode == 0
    live.daemon.start()
    proc = live.tool("remount", "all")
    assert proc.returncode == 0, proc.stderr
    assert memtotal(c1) == memtotal(c2) == MEMORY >> 10
    assert lxcfs_points(plain) == {}
