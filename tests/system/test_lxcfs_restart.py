"""The Python lxcfs daemon restarted, upgraded, reloaded and killed under readers (root only).

Readers are processes in a test-owned memory-limited cgroup (256 MiB) that
loop over open-read-close of ``proc/meminfo`` and re-read one ``proc/stat``
they keep open; each reports its reads and errors.  Daemons run on temp
mount points with their own run directory (``LXCFS_TOOLKIT_RUN_DIR``);
fixtures stop them, their keeper, and unmount, also on failure.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcfs_toolkit.views.meminfo import parse_meminfo

from .test_lxcfs_daemon import Cgroups, _mounted, _skip_unless_ready
from .waits import polls, scaled

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
LIMIT_KB = 256 << 10

READER = r"""
import json, os, sys, time
mnt, seconds = sys.argv[1], float(sys.argv[2])
kept = os.open(mnt + "/proc/stat", os.O_RDONLY)
reads = errors = 0
firsts, totals = [], set()
print("ready", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        fd = os.open(mnt + "/proc/meminfo", os.O_RDONLY)
        try:
            data = os.read(fd, 65536)
        finally:
            os.close(fd)
        totals.add(int(data.split(b"\n", 1)[0].split()[1]))
        if not os.pread(kept, 65536, 0).startswith(b"cpu "):
            raise OSError(0, "bad /proc/stat")
        reads += 1
    except OSError as e:
        errors += 1
        if len(firsts) < 5:
            firsts.append(str(e))
        time.sleep(0.005)
print(json.dumps({"reads": reads, "errors": errors, "firsts": firsts, "totals": sorted(totals)}))
"""


class Lxcfs:
    """``python -m lxcfs_toolkit.server MNT`` from ``pkg`` (a copy of the package) or the repo."""

    def __init__(self, mnt: Path, run_dir: Path, log: Path, pkg: Path | None = None) -> None:
        self.mnt, self.log = mnt, log
        env = dict(os.environ, LXCFS_TOOLKIT_RUN_DIR=str(run_dir))
        if pkg is not None:
            env["PYTHONPATH"] = str(pkg)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lxcfs_toolkit.server", "--log", str(log), str(mnt)],
            cwd=pkg or ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_log(self, needle: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + scaled(timeout)
        while needle not in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in the daemon's log: {self.text()[-2000:]}")
            time.sleep(0.05)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)


class World:
    def __init__(self, tmp: Path, mounts: dict[str, str]) -> None:
        self.tmp = tmp
        self.mnt = tmp / "mnt"
        self.mnt.mkdir()
        self.run_dir = tmp / "run"
        self.daemons: list[Lxcfs] = []
        self.cg = Cgroups(mounts, cpu=0)

    def daemon(self, name: str, pkg: Path | None = None) -> Lxcfs:
        d = Lxcfs(self.mnt, self.run_dir, self.tmp / f"{name}.log", pkg)
        self.daemons.append(d)
        d.wait_log("serving lxcfs at")
        return d

    def readers(self, n: int, seconds: float) -> list[subprocess.Popen[str]]:
        """``n`` processes reading the view for ``seconds`` (scaled: a daemon's restart
        under emulation takes most of an unscaled five seconds, and the tests count reads)."""
        procs = [subprocess.Popen(self.cg.enter_cmd([sys.executable, "-c", READER, str(self.mnt),
                                                     str(scaled(seconds))]),
                                  stdout=subprocess.PIPE, text=True) for _ in range(n)]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return procs

    @staticmethod
    def results(procs: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
        out = []
        for p in procs:
            stdout, _ = p.communicate(timeout=scaled(120))
            out.append(json.loads(stdout))
        return out

    def keepers(self) -> list[int]:
        pids = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"lxcfs_toolkit.handover" in cmd and os.fsencode(str(self.mnt)) in cmd:
                    pids.append(int(pid))
        return pids

    def close(self) -> None:
        for d in self.daemons:
            if d.proc.poll() is None:
                d.proc.terminate()
                try:
                    d.proc.wait(scaled(20))
                except subprocess.TimeoutExpired:
                    d.proc.kill()
                    d.proc.wait()
        for pid in self.keepers():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for _ in range(8):
            if not _mounted(str(self.mnt)):
                break
            subprocess.run(["umount", "-l", str(self.mnt)], check=False)
        self.cg.remove()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, _skip_unless_ready())
    try:
        yield w
    finally:
        w.close()


def package_copy(tmp: Path, marker: str) -> Path:
    """A second installation of the package whose meminfo ends with ``marker``."""
    pkg = tmp / f"pkg-{marker}"
    for name in ("lxcfs_toolkit", "syscontainer_tools"):
        shutil.copytree(ROOT / name, pkg / name, ignore=shutil.ignore_patterns("__pycache__"))
    with open(pkg / "lxcfs_toolkit/views/meminfo.py", "a") as f:
        f.write(f"\n_orig_render = render_meminfo\n\n\ndef render_meminfo(*a, **k):\n"
                f"    return _orig_render(*a, **k) + b'{marker}:        1 kB\\n'\n")
    return pkg


def meminfo(w: World) -> str:
    out = subprocess.run(w.cg.enter_cmd(["cat", f"{w.mnt}/proc/meminfo"]), capture_output=True,
                         text=True, check=True, timeout=scaled(30))
    return out.stdout


def test_restart_and_upgrade_under_readers_show_no_errors(world: World) -> None:
    first = world.daemon("first")
    procs = world.readers(4, 6.0)
    time.sleep(1)
    second = world.daemon("second")                      # restart: takes the connection over
    assert first.proc.wait(scaled(20)) == 0
    assert "handed" in first.text() and "taken over from the running daemon" in second.text()
    time.sleep(1)
    upgraded = world.daemon("upgraded", package_copy(world.tmp, "Upgraded"))
    assert second.proc.wait(scaled(20)) == 0
    results = world.results(procs)
    assert all(r["errors"] == 0 for r in results), results
    assert all(r["reads"] > 10 and r["totals"] == [LIMIT_KB] for r in results), results
    assert _mounted(str(world.mnt))
    assert "Upgraded:" in meminfo(world)                  # the new code answers
    assert upgraded.proc.poll() is None


def test_signals_reload_toggle_reopen_and_stop(world: World) -> None:
    pkg = package_copy(world.tmp, "Before")
    d = world.daemon("d", pkg)
    procs = world.readers(2, 4.0)
    assert "Before:" in meminfo(world)
    # SIGUSR1: the code on disk changed (an upgrade of the views): reload it in place
    view = pkg / "lxcfs_toolkit/views/meminfo.py"
    view.write_text(view.read_text().replace("Before", "After"))
    d.signal(signal.SIGUSR1)
    d.wait_log("view code reloaded")
    time.sleep(0.2)                                        # the 0.1 s render cache
    text = meminfo(world)
    assert "After:" in text and "Before:" not in text
    # SIGUSR2: virtualisation off (host values), then on again
    host_total = parse_meminfo(Path("/proc/meminfo").read_bytes())["MemTotal"]
    d.signal(signal.SIGUSR2)
    d.wait_log("virtualisation off")
    assert parse_meminfo(meminfo(world).encode())["MemTotal"] == host_total
    d.signal(signal.SIGUSR2)
    d.wait_log("virtualisation on")
    time.sleep(0.2)
    assert parse_meminfo(meminfo(world).encode())["MemTotal"] == LIMIT_KB
    # SIGHUP: the log was rotated away; the daemon writes to a new file
    d.log.rename(d.log.with_suffix(".old"))
    d.signal(signal.SIGHUP)
    for _ in polls(5):
        if d.log.exists():
            break
        time.sleep(0.05)
    d.wait_log("log reopened")
    results = world.results(procs)
    assert all(r["errors"] == 0 and r["reads"] > 10 for r in results), results
    assert d.proc.poll() is None and _mounted(str(world.mnt))
    # SIGTERM: stop for good: unmounted, no keeper, nothing left in the run directory
    d.signal(signal.SIGTERM)
    assert d.proc.wait(scaled(20)) == 0
    assert not _mounted(str(world.mnt))
    os.listdir(world.mnt)                                  # not a stale endpoint
    for _ in polls(5):
        if not world.keepers():
            break
        time.sleep(0.05)
    assert world.keepers() == []
    assert [p.name for p in world.run_dir.iterdir() if not p.is_dir()] == []


def test_sigint_stops_too(world: World) -> None:
    d = world.daemon("d")
    d.signal(signal.SIGINT)
    assert d.proc.wait(scaled(20)) == 0
    assert not _mounted(str(world.mnt))


def test_sigkill_heals_with_the_keeper(world: World) -> None:
    first = world.daemon("first")
    procs = world.readers(4, 5.0)
    time.sleep(1)
    first.proc.kill()
    first.proc.wait()
    assert world.keepers(), "no keeper holds the connection"
    time.sleep(0.5)                                        # readers wait in the kernel meanwhile
    second = world.daemon("second")
    assert "resumed from the keeper" in second.text()
    results = world.results(procs)
    # only requests the killed daemon had read and not answered fail (ECONNABORTED)
    assert sum(r["errors"] for r in results) <= 4, results   # type: ignore[misc]
    assert all(r["reads"] > 10 and r["totals"] == [LIMIT_KB] for r in results), results
    assert parse_meminfo(meminfo(world).encode())["MemTotal"] == LIMIT_KB


def test_sigkill_of_daemon_and_keeper_leaves_a_stale_mount_the_next_daemon_cleans(
        world: World) -> None:
    first = world.daemon("first")
    first.proc.kill()
    first.proc.wait()
    for pid in world.keepers():
        os.kill(pid, signal.SIGKILL)
    for _ in polls(5):
        if not world.keepers():
            break
        time.sleep(0.05)
    # a request sent while the last descriptor is being closed is aborted
    # (ECONNABORTED); once the connection is gone every request gets ENOTCONN
    for _ in polls(5):
        with pytest.raises(OSError) as err:
            os.listdir(world.mnt)
        if err.value.errno != errno.ECONNABORTED:
            break
        time.sleep(0.05)
    assert err.value.errno == errno.ENOTCONN
    second = world.daemon("second")
    assert "stale FUSE mount" in second.text()
    assert parse_meminfo(meminfo(world).encode())["MemTotal"] == LIMIT_KB


class FakeSystemd:
    """The notify socket of a service manager: collects messages and stored descriptors."""

    def __init__(self, path: Path) -> None:
        import socket

        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self.store: list[int] = []

    def drain(self) -> None:
        import array
        import socket

        while True:
            fds = array.array("i")
            try:
                msg, anc, _f, _a = self.sock.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
            except (socket.timeout, BlockingIOError):
                return
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            text = msg.decode()
            self.messages.append(text)
            if "FDSTORE=1" in text:
                self.store.extend(fds)
            else:
                for fd in fds:
                    os.close(fd)

    def start(self, w: World, name: str) -> Lxcfs:
        """Start a daemon as systemd would: NOTIFY_SOCKET, and the store in LISTEN_FDS."""
        env = dict(os.environ, LXCFS_TOOLKIT_RUN_DIR=str(w.run_dir), NOTIFY_SOCKET=str(self.path))
        log = w.tmp / f"{name}.log"
        argv = [sys.executable, "-m", "lxcfs_toolkit.server", "--log", str(log), str(w.mnt)]
        stored = self.store[:1]
        if stored:
            env.update(LISTEN_FDS="1", LISTEN_FDNAMES="lxcfs-fuse")
            argv = ["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", *argv]
        d = Lxcfs.__new__(Lxcfs)
        d.mnt, d.log = w.mnt, log
        d.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, pass_fds=(3,) if stored else (),
            preexec_fn=(lambda: os.dup2(stored[0], 3)) if stored else None)
        w.daemons.append(d)
        d.wait_log("serving lxcfs at")
        return d

    def close(self) -> None:
        self.sock.close()
        for fd in self.store:
            with contextlib.suppress(OSError):
                os.close(fd)


def test_systemd_fd_store_keeps_the_connection_across_a_crash_and_stop_empties_it(
        world: World) -> None:
    sd = FakeSystemd(world.tmp / "notify")
    try:
        first = sd.start(world, "first")
        sd.drain()
        assert any("READY=1" in m for m in sd.messages)
        assert len(sd.store) == 1, sd.messages          # the connection is in the store
        assert world.keepers() == []                    # systemd holds it: no keeper
        procs = world.readers(4, 5.0)
        time.sleep(1)
        first.proc.kill()                               # a crash; systemd restarts it 1 s later
        first.proc.wait()
        time.sleep(1)
        second = sd.start(world, "second")
        assert "resumed from systemd's store" in second.text()
        results = world.results(procs)
        assert sum(r["errors"] for r in results) <= 4, results   # type: ignore[misc]
        assert all(r["reads"] > 10 and r["totals"] == [LIMIT_KB] for r in results), results
        # systemctl stop (the unit's job is not a restart): unmount, empty the store
        second.signal(signal.SIGTERM)
        assert second.proc.wait(scaled(20)) == 0
        sd.drain()
        assert any("FDSTOREREMOVE=1" in m for m in sd.messages), sd.messages
        assert not _mounted(str(world.mnt))
    finally:
        sd.close()
