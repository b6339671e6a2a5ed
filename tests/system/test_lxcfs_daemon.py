"""The Python lxcfs mounted for real, side by side with C lxcfs (root only).

Each test's readers are child processes placed in cgroups the test creates
(``sctest-<random>``, memory limited to 256 MiB, a one-CPU cpuset); both
daemons are mounted on temp dirs. Fixtures kill the daemons, unmount and
remove the cgroups even when a test fails.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcfs_toolkit.cgroupreader import Hierarchies
from lxcfs_toolkit.views.meminfo import parse_meminfo

from .waits import polls, scaled

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
CONTROLLERS = ("memory", "cpuset", "cpu", "cpuacct", "blkio")
FILES = ("meminfo", "cpuinfo", "stat", "uptime", "swaps", "loadavg", "diskstats")  # C 5.0.3 has no partitions
ONLINE = "sys/devices/system/cpu/online"

READER = r"""
import json, os, sys
out = {}
for path in sys.argv[1:]:
    try:
        with open(path, "rb") as f:
            out[path] = f.read().decode()
    except OSError as e:
        out[path] = f"ERROR {e.errno}"
print(json.dumps(out))
"""


def _skip_unless_ready() -> dict[str, str]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse")
    mounts = dict(Hierarchies.discover().v1)
    missing = [c for c in CONTROLLERS if c not in mounts]
    if missing:
        pytest.skip(f"cgroup v1 controllers not mounted: {missing}")
    return mounts


def _mounted(path: str) -> bool:
    return any(line.split()[4] == path for line in Path("/proc/self/mountinfo").read_text().splitlines())


class Daemon:
    def __init__(self, cmd: list[str], mnt: str, log: Path) -> None:
        self.mnt = mnt
        self.log = log
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("w"))

    def wait_up(self) -> None:
        deadline = time.monotonic() + scaled(10)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log.read_text()}")
            try:
                if _mounted(self.mnt) and "meminfo" in os.listdir(f"{self.mnt}/proc"):
                    return  # listdir is a real request: a stale mount fails it
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not come up at {self.mnt}: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scaled(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if _mounted(self.mnt):
            subprocess.run(["umount", "-l", self.mnt], check=False, stderr=subprocess.DEVNULL)


def python_daemon(mnt: Path, log: Path) -> Daemon:
    with contextlib.suppress(FileExistsError):
        mnt.mkdir()  # possibly a stale mount: stat would fail, mkdir does not look inside
    return Daemon([sys.executable, "-m", "lxcfs_toolkit.server", str(mnt)], str(mnt), log)


@pytest.fixture(scope="module")
def mounts() -> dict[str, str]:
    return _skip_unless_ready()


@pytest.fixture(scope="module")
def py_lxcfs(mounts: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("pylxcfs")
    d = python_daemon(tmp / "mnt", tmp / "log")
    try:
        d.wait_up()
        yield d.mnt
    finally:
        d.stop()


@pytest.fixture(scope="module")
def c_lxcfs(mounts: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("lxcfs")
    if exe is None:
        pytest.skip("C lxcfs not installed")
    tmp = tmp_path_factory.mktemp("clxcfs")
    (tmp / "mnt").mkdir()
    d = Daemon([exe, "-f", "-p", str(tmp / "pid"), str(tmp / "mnt")], str(tmp / "mnt"), tmp / "log")
    try:
        d.wait_up()
        yield d.mnt
    finally:
        d.stop()


class Cgroups:
    """One new cgroup per v1 controller, removed (after moving any process out) at the end."""

    def __init__(self, mounts: dict[str, str], cpu: int) -> None:
        self.mounts = mounts
        self.name = f"sctest-{secrets.token_hex(4)}"
        self.dirs: dict[str, Path] = {}
        for ctrl in CONTROLLERS:
            d = Path(mounts[ctrl], self.name)
            if d not in self.dirs.values():  # cpu and cpuacct are often one hierarchy
                d.mkdir()
            self.dirs[ctrl] = d
        (self.dirs["memory"] / "memory.limit_in_bytes").write_text(str(256 << 20))
        (self.dirs["cpuset"] / "cpuset.mems").write_text(Path(mounts["cpuset"], "cpuset.mems").read_text())
        (self.dirs["cpuset"] / "cpuset.cpus").write_text(str(cpu))

    def hierarchies(self) -> dict[Path, str]:
        """Each cgroup made, with one controller of its hierarchy."""
        made: dict[Path, str] = {}
        for ctrl, d in self.dirs.items():
            made.setdefault(d, ctrl)
        return made

    def enter_cmd(self, cmd: list[str], *, root: bool = False) -> list[str]:
        """``cmd`` run by a shell that first moves itself into these cgroups (or the roots)."""
        targets = [self.mounts[c] if root else str(d) for d, c in self.hierarchies().items()]
        script = 'for d in ' + " ".join(targets) + '; do echo $$ > "$d/cgroup.procs"; done; exec "$@"'
        return ["sh", "-c", script, "sh", *cmd]

    def remove(self) -> None:
        for d, ctrl in self.hierarchies().items():
            for _ in polls(5, 0.1):
                try:
                    for pid in (d / "cgroup.procs").read_text().split():
                        with open(Path(self.mounts[ctrl], "cgroup.procs"), "w") as f:
                            f.write(pid)
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


@pytest.fixture
def limited(mounts: dict[str, str]) -> Iterator[Cgroups]:
    cg = Cgroups(mounts, cpu=0)
    try:
        yield cg
    finally:
        cg.remove()


@pytest.fixture
def limited_last_cpu(mounts: dict[str, str]) -> Iterator[Cgroups]:
    cg = Cgroups(mounts, cpu=max(os.sched_getaffinity(0)))
    try:
        yield cg
    finally:
        cg.remove()


def read_as(cg: Cgroups, paths: list[str], *, root: bool = False, wrap: list[str] | None = None) -> dict[str, str]:
    cmd = cg.enter_cmd([*(wrap or []), sys.executable, "-c", READER, *paths], root=root)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=scaled(60))
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def cpu_lines(stat: str) -> set[str]:
    return {line.split()[0] for line in stat.splitlines() if line.startswith("cpu")}


def processors(cpuinfo: str) -> list[str]:
    return [line for line in cpuinfo.splitlines() if line.startswith("processor")]


def both(py: str, c: str, name: str) -> list[str]:
    return [f"{py}/proc/{name}", f"{c}/proc/{name}"]


def test_limited_reader_matches_c_lxcfs(py_lxcfs: str, c_lxcfs: str, limited: Cgroups) -> None:
    paths = [p for name in FILES for p in both(py_lxcfs, c_lxcfs, name)]
    paths += [f"{py_lxcfs}/{ONLINE}", f"{c_lxcfs}/{ONLINE}", f"{py_lxcfs}/proc/partitions"]
    got = read_as(limited, paths)
    py = {name: got[f"{py_lxcfs}/proc/{name}"] for name in FILES}
    c = {name: got[f"{c_lxcfs}/proc/{name}"] for name in FILES}
    assert not [v for v in got.values() if v.startswith("ERROR")]
    assert parse_meminfo(py["meminfo"].encode())["MemTotal"] == 262144
    assert parse_meminfo(py["meminfo"].encode())["MemTotal"] == parse_meminfo(c["meminfo"].encode())["MemTotal"]
    assert len(processors(py["cpuinfo"])) == len(processors(c["cpuinfo"])) == 1
    assert cpu_lines(py["stat"]) == cpu_lines(c["stat"]) == {"cpu", "cpu0"}
    assert abs(float(py["uptime"].split()[0]) - float(c["uptime"].split()[0])) < 1.0
    assert got[f"{py_lxcfs}/{ONLINE}"] == got[f"{c_lxcfs}/{ONLINE}"] == "0\n"
    assert py["swaps"].splitlines()[0].split() == c["swaps"].splitlines()[0].split()
    assert len(py["loadavg"].split()) == 5


def test_cpu_story_is_renumbered_where_c_lxcfs_is_not(py_lxcfs: str, c_lxcfs: str, limited_last_cpu: Cgroups) -> None:
    last = max(os.sched_getaffinity(0))
    if last == 0:
        pytest.skip("needs two CPUs")
    names = ["cpuinfo", "stat"]
    paths = [p for n in names for p in both(py_lxcfs, c_lxcfs, n)] + [f"{py_lxcfs}/{ONLINE}", f"{c_lxcfs}/{ONLINE}"]
    got = read_as(limited_last_cpu, paths)
    assert len(processors(got[f"{py_lxcfs}/proc/cpuinfo"])) == len(processors(got[f"{c_lxcfs}/proc/cpuinfo"])) == 1
    assert cpu_lines(got[f"{py_lxcfs}/proc/stat"]) == {"cpu", "cpu0"}
    assert got[f"{py_lxcfs}/{ONLINE}"] == "0\n"
    # C lxcfs keeps the host number in stat and cpu/online while cpuinfo says processor 0
    assert cpu_lines(got[f"{c_lxcfs}/proc/stat"]) == {"cpu", f"cpu{last}"}


def test_reader_in_new_pid_namespace_gets_its_inits_uptime(py_lxcfs: str, c_lxcfs: str, limited: Cgroups) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    paths = both(py_lxcfs, c_lxcfs, "uptime") + both(py_lxcfs, c_lxcfs, "meminfo")
    # the namespace's init sleeps 1.5 s, then becomes the reader
    wrap = ["unshare", "--pid", "--fork", "--kill-child", "sh", "-c", 'sleep 1.5; exec "$@"', "sh"]
    got = read_as(limited, paths, wrap=wrap)
    py_up, c_up = (float(got[p].split()[0]) for p in paths[:2])
    assert 1.4 <= py_up < 5.0
    assert abs(py_up - c_up) < 1.0
    assert parse_meminfo(got[paths[2]].encode())["MemTotal"] == 262144


def test_root_cgroup_reader_sees_host_values(py_lxcfs: str, limited: Cgroups) -> None:
    paths = [f"{py_lxcfs}/proc/meminfo", f"{py_lxcfs}/proc/cpuinfo", f"{py_lxcfs}/proc/stat",
             f"{py_lxcfs}/{ONLINE}", "/proc/meminfo", "/proc/cpuinfo", "/proc/stat", f"/{ONLINE}"]
    got = read_as(limited, paths, root=True)
    ours, host = list(got.values())[:4], list(got.values())[4:]
    assert parse_meminfo(ours[0].encode())["MemTotal"] == parse_meminfo(host[0].encode())["MemTotal"]
    assert processors(ours[1]) == processors(host[1])
    assert cpu_lines(ours[2]) == cpu_lines(host[2])
    assert ours[3] == host[3]


CHUNKED = r"""
import json, os, sys
path = sys.argv[1]
fd = os.open(path, os.O_RDONLY)
first = os.read(fd, 7)
print("opened", flush=True)
sys.stdin.readline()
rest = b""
while chunk := os.read(fd, 7):
    rest += chunk
os.close(fd)
with open(path, "rb") as f:
    fresh = f.read()
print(json.dumps({"chunked": (first + rest).decode(), "fresh": fresh.decode()}), flush=True)
"""


def _chunked_read(cg: Cgroups, path: str, between: object) -> dict[str, str]:
    proc = subprocess.Popen(cg.enter_cmd([sys.executable, "-c", CHUNKED, path]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "opened"
        between(proc.pid)  # type: ignore[operator]
        time.sleep(0.3)  # well past the daemon's 100 ms cache
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out = json.loads(proc.stdout.readline())
        assert proc.wait(scaled(30)) == 0
        return out  # type: ignore[no-any-return]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _well_formed_meminfo(text: str) -> bool:
    return bool(text) and all(":" in line and line.split(":")[1].split() for line in text.splitlines())


def test_chunked_reads_see_one_consistent_file(py_lxcfs: str, limited: Cgroups) -> None:
    def shrink(pid: int) -> None:
        (limited.dirs["memory"] / "memory.limit_in_bytes").write_text(str(128 << 20))

    out = _chunked_read(limited, f"{py_lxcfs}/proc/meminfo", shrink)
    assert _well_formed_meminfo(out["chunked"])
    assert parse_meminfo(out["chunked"].encode())["MemTotal"] == 262144  # the snapshot of the open
    assert parse_meminfo(out["fresh"].encode())["MemTotal"] == 131072  # a new read sees the change
    assert len(out["chunked"].splitlines()) == len(out["fresh"].splitlines())


def test_reader_whose_cgroup_is_removed_gets_a_sane_answer(py_lxcfs: str, limited: Cgroups) -> None:
    def move_out_and_remove(pid: int) -> None:
        for d, ctrl in limited.hierarchies().items():
            for p in (d / "cgroup.procs").read_text().split():
                Path(limited.mounts[ctrl], "cgroup.procs").write_text(p)
            d.rmdir()

    out = _chunked_read(limited, f"{py_lxcfs}/proc/meminfo", move_out_and_remove)
    assert parse_meminfo(out["chunked"].encode())["MemTotal"] == 262144
    host_total = parse_meminfo(Path("/proc/meminfo").read_bytes())["MemTotal"]
    fresh = out["fresh"]
    assert fresh.startswith("ERROR") or parse_meminfo(fresh.encode())["MemTotal"] == host_total
    # the daemon is still serving
    assert parse_meminfo(Path(py_lxcfs, "proc/meminfo").read_bytes())["MemTotal"] > 0


def test_cgroup_recreated_under_the_same_path_is_read_anew(py_lxcfs: str, limited: Cgroups) -> None:
    """The daemon keeps cgroup files (and a namespace init's /proc/PID/cgroup) open and
    re-reads them with pread: a removed cgroup's file must not answer for its successor."""
    wrap = ["unshare", "--pid", "--fork", "--kill-child"]   # the reader is its namespace's init
    path = f"{py_lxcfs}/proc/meminfo"
    for limit_mib in (256, 96, 160):
        if limit_mib != 256:
            d = limited.dirs["memory"]
            for _ in polls(5, 0.1):   # the previous reader may still be leaving the cgroup
                if not (d / "cgroup.procs").read_text().split():
                    break
                time.sleep(0.1)
            d.rmdir()
            d.mkdir()
            (d / "memory.limit_in_bytes").write_text(str(limit_mib << 20))
            time.sleep(0.15)   # past the 100 ms cache
        got = read_as(limited, [path], wrap=wrap)
        assert parse_meminfo(got[path].encode())["MemTotal"] == limit_mib * 1024, limit_mib


def test_loadavg_counts_the_cgroups_own_tasks(py_lxcfs: str, limited: Cgroups) -> None:
    spin = subprocess.Popen(limited.enter_cmd([sys.executable, "-c", "while True: pass"]))
    try:
        time.sleep(0.5)
        got = read_as(limited, [f"{py_lxcfs}/proc/loadavg"])
        avg1, _, _, tasks, _last = next(iter(got.values())).split()
        running, total = (int(v) for v in tasks.split("/"))
        assert running >= 1 and total >= 2  # the spinner (R) and the reader
        assert total < 50  # not the host's thread count
        assert float(avg1) >= 0.5
    finally:
        spin.kill()
        spin.wait()
    # idle: the reader itself (blocked on the FUSE read) is not load
    for _ in range(3):
        time.sleep(0.15)  # past the 100 ms cache
        got = read_as(limited, [f"{py_lxcfs}/proc/loadavg"])
        running = int(next(iter(got.values())).split()[3].split("/")[0])
        assert running == 0


def test_diskstats_work_without_cfq(py_lxcfs: str, limited: Cgroups, tmp_path: Path) -> None:
    if shutil.which("losetup") is None:
        pytest.skip("no losetup")
    backing = tmp_path / "disk.img"
    with open(backing, "wb") as f:
        f.truncate(8 << 20)
    loop = subprocess.run(["losetup", "-f", "--show", str(backing)], check=True,
                          capture_output=True, text=True).stdout.strip()
    try:
        # Kernels >= 5 count v1 blkio bytes/ios only on queues where blk-throttle is
        # active (or that BFQ schedules): a generous limit, as engines set, turns it on.
        rdev = os.stat(loop).st_rdev
        (limited.dirs["blkio"] / "blkio.throttle.read_bps_device").write_text(
            f"{os.major(rdev)}:{os.minor(rdev)} {1 << 40}\n")
        subprocess.run(limited.enter_cmd(["dd", f"if={loop}", "of=/dev/null", "bs=4096", "count=256",
                                          "iflag=direct", "status=none"]), check=True, timeout=scaled(60))
        got = read_as(limited, [f"{py_lxcfs}/proc/diskstats", f"{py_lxcfs}/proc/partitions"])
        diskstats, partitions = got.values()
        name = os.path.basename(loop)
        line = next(ln.split() for ln in diskstats.splitlines() if ln.split()[2] == name)
        assert int(line[3]) >= 1 and int(line[5]) == 2048  # reads; sectors read: 1 MiB / 512
        assert name in partitions
        assert "vda" not in diskstats.split()  # only the devices this cgroup used
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)


def test_sigterm_unmounts_cleanly(mounts: dict[str, str], tmp_path: Path) -> None:
    d = python_daemon(tmp_path / "mnt", tmp_path / "log")
    try:
        d.wait_up()
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(scaled(10)) == 0
        assert not _mounted(d.mnt)
        os.stat(d.mnt)  # not a stale endpoint
    finally:
        d.stop()


def test_stale_mount_is_detected_and_cleaned(mounts: dict[str, str], tmp_path: Path) -> None:
    first = python_daemon(tmp_path / "mnt", tmp_path / "log1")
    second = None
    try:
        first.wait_up()
        from .test_lxcfs_hook import keepers

        for _ in polls(10):   # fully up: its keeper started (it logs "serving" after that)
            if "serving lxcfs at" in (tmp_path / "log1").read_text():
                break
            time.sleep(0.05)
        first.proc.kill()  # with its keeper: leaves the mount behind, answering ENOTCONN
        first.proc.wait()
        pids = keepers(first.mnt)
        assert pids, "the daemon started no keeper"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        for _ in polls(5):
            if not keepers(first.mnt):
                break
            time.sleep(0.05)
        # a request in flight while the kernel aborts the connection (the
        # last descriptor's release can trail the keeper's exit) ends with
        # ECONNABORTED; every request after that with ENOTCONN
        with pytest.raises(OSError) as err:
            os.listdir(first.mnt)
        assert err.value.errno in (errno.ENOTCONN, errno.ECONNABORTED), err.value
        with pytest.raises(OSError) as err:
            os.listdir(first.mnt)
        assert err.value.errno == errno.ENOTCONN, err.value
        second = python_daemon(tmp_path / "mnt", tmp_path / "log2")
        second.wait_up()
        assert "stale FUSE mount" in (tmp_path / "log2").read_text()
        assert parse_meminfo(Path(second.mnt, "proc/meminfo").read_bytes())["MemTotal"] > 0
    finally:
        if second is not None:
            second.stop()
        first.stop()
