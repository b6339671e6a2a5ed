"""LxcfsOperations end to end on a fake /proc and a cgroup v2 temp tree (no FUSE mount)."""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from lxcfs_toolkit.cgroupreader import Hierarchies
from lxcfs_toolkit.fs import FuseError, LxcfsOperations
from lxcfs_toolkit.views.meminfo import parse_meminfo

MiB = 1 << 20
HOST_MEMINFO = "MemTotal:        8000000 kB\nMemFree:         6000000 kB\nMemAvailable:    7000000 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n"
HOST_STAT = "cpu  4 0 4 40 0 0 0 0 0 0\ncpu0 1 0 1 10 0 0 0 0 0 0\ncpu1 1 0 1 10 0 0 0 0 0 0\ncpu2 1 0 1 10 0 0 0 0 0 0\ncpu3 1 0 1 10 0 0 0 0 0 0\nbtime 1\n"


@dataclass
class FakeFileInfo:
    flags: int = os.O_RDONLY
    fh: int = 0
    direct_io: int = 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _proc_pid(proc: Path, pid: int, cgroup: str, ns: str, nspid: str, ppid: int, start: int = 0) -> None:
    d = proc / str(pid)
    (d / "ns").mkdir(parents=True)
    (d / "ns" / "pid").symlink_to(ns)
    (d / "cgroup").write_text(cgroup)
    (d / "status").write_text(f"Name:\tx\nPPid:\t{ppid}\nNSpid:\t{nspid}\n")
    fields = ["S", str(ppid)] + ["0"] * 17 + [str(start)] + ["0"] * 10
    (d / "stat").write_text(f"{pid} (x y) " + " ".join(fields) + "\n")


@pytest.fixture
def env(tmp_path: Path) -> tuple[LxcfsOperations, Path, Clock, list[int]]:
    proc, cg = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self" / "ns").mkdir(parents=True)
    (proc / "self" / "ns" / "pid").symlink_to("pid:[1]")
    for name, text in {
        "meminfo": HOST_MEMINFO, "stat": HOST_STAT, "uptime": "500.00 1900.00\n",
        "cpuinfo": "".join(f"processor\t: {i}\nflags\t\t: fpu\n\n" for i in range(4)),
        "diskstats": "   8       0 sda 1 0 8 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        "partitions": "major minor  #blocks  name\n\n   8        0  100 sda\n",
        "swaps": "Filename\tType\tSize\tUsed\tPriority\n", "loadavg": "9.00 9.00 9.00 1/1 1\n",
    }.items():
        (proc / name).write_text(text)
    for rel, limit in (("ctr/app", 512 * MiB), ("other", 128 * MiB)):
        d = cg / rel
        d.mkdir(parents=True)
        (d / "memory.max").write_text(str(limit))
        (d / "memory.current").write_text(str(10 * MiB))
        (d / "memory.stat").write_text("file 0\n")
        (d / "cpuset.cpus.effective").write_text("2-3\n")
        (d / "cpu.stat").write_text("usage_usec 2000000\nuser_usec 1000000\nsystem_usec 1000000\n")
        (d / "cgroup.threads").write_text("")
    boot_ticks = int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))
    _proc_pid(proc, 100, "0::/ctr/app\n", "pid:[1]", "100", 1)
    _proc_pid(proc, 101, "0::/other\n", "pid:[1]", "101", 1)
    _proc_pid(proc, 102, "0::/\n", "pid:[1]", "102", 1)
    _proc_pid(proc, 250, "0::/ctr/app\n", "pid:[2]", "250 1", 1, start=boot_ticks - 5 * os.sysconf("SC_CLK_TCK"))
    _proc_pid(proc, 300, "0::/other\n", "pid:[2]", "300 7", 250)
    online = tmp_path / "online"
    online.write_text("0-3\n")
    caller = [100]
    clock = Clock()
    ops = LxcfsOperations(Hierarchies(v2=str(cg)), proc=str(proc), cpu_online=str(online),
                          clock=clock, context=lambda: (0, 0, caller[0]))
    return ops, cg, clock, caller


def read_all(ops: LxcfsOperations, path: str, chunk: int = 4096) -> bytes:
    fi = FakeFileInfo()
    ops.open(path, fi)
    assert fi.direct_io == 1
    out = b""
    while True:
        data = ops.read(path, chunk, len(out), fi)
        if not data:
            break
        out += data
    ops.release(path, fi)
    return out


def test_tree_attributes_and_errors(env: tuple[LxcfsOperations, Path, Clock, list[int]]) -> None:
    ops = env[0]
    assert ops.readdir("/proc", None)[2:] == ["cpuinfo", "meminfo", "stat", "uptime", "diskstats",
                                               "swaps", "loadavg", "partitions"]
    assert ops.readdir("/sys/devices/system/cpu", None)[2:] == ["online"]
    assert ops.getattr("/proc/meminfo")["st_mode"] & 0o777 == 0o444
    with pytest.raises(FuseError) as e:
        ops.getattr("/proc/nope")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(FuseError) as e:
        ops.open("/proc/meminfo", FakeFileInfo(flags=os.O_WRONLY))
    assert e.value.errno == errno.EACCES
    with pytest.raises(FuseError) as e:
        ops.read("/proc/meminfo", 10, 0, FakeFileInfo(fh=12345))
    assert e.value.errno == errno.EBADF


def test_views_follow_the_readers_cgroup(env: tuple[LxcfsOperations, Path, Clock, list[int]]) -> None:
    ops, _, _, caller = env
    assert parse_meminfo(read_all(ops, "/proc/meminfo"))["MemTotal"] == 524288
    caller[0] = 101  # different cgroup, same instant: the cache must not mix them up
    assert parse_meminfo(read_all(ops, "/proc/meminfo"))["MemTotal"] == 131072
    caller[0] = 102  # root cgroup: the host's own files
    assert read_all(ops, "/proc/meminfo") == HOST_MEMINFO.encode()
    assert read_all(ops, "/proc/stat") == HOST_STAT.encode()
    assert read_all(ops, "/sys/devices/system/cpu/online") == b"0-3\n"


def test_cpu_story_is_consistent(env: tuple[LxcfsOperations, Path, Clock, list[int]]) -> None:
    ops = env[0]
    cpuinfo = read_all(ops, "/proc/cpuinfo").decode()
    stat = read_all(ops, "/proc/stat").decode()
    assert [ln for ln in cpuinfo.splitlines() if ln.startswith("processor")] == ["processor\t: 0", "processor\t: 1"]
    assert [ln.split()[0] for ln in stat.splitlines() if ln.startswith("cpu")] == ["cpu", "cpu0", "cpu1"]
    assert read_all(ops, "/sys/devices/system/cpu/online") == b"0-1\n"


def test_offset_reads_continue_one_snapshot(env: tuple[LxcfsOperations, Path, Clock, list[int]]) -> None:
    ops, cg, clock, _ = env
    fi = FakeFileInfo()
    ops.open("/proc/meminfo", fi)
    first = ops.read("/proc/meminfo", 7, 0, fi)
    (cg / "ctr/app/memory.max").write_text(str(256 * MiB))
    clock.now += 1  # past the cache: a fresh render would differ
    rest = b""
    while chunk := ops.read("/proc/meminfo", 7, len(first) + len(rest), fi):
        rest += chunk
    assert parse_meminfo(first + rest)["MemTotal"] == 524288
    again = ops.read("/proc/meminfo", 4096, 0, fi)  # offset 0 renders anew (top rereads this way)
    assert parse_meminfo(again)["MemTotal"] == 262144
    ops.release("/proc/meminfo", fi)


def test_cache_lives_at_most_100ms(env: tuple[LxcfsOperations, Path, Clock, list[int]]) -> None:
    ops, cg, clock, _ = env
    assert LxcfsOperations(Hierarchies(), proc=ops.proc, cache_ttl=5).cache_ttl == 0.1
    assert parse_meminfo(read_all(ops, "/proc/meminfo"))["MemTotal"] == 524288
    (cg / "ctr/app/memory.max").write_text(str(256 * MiB))
    clock.now += 0.05
    assert parse_meminfo(read_all(ops, "/proc/meminfo"))["MemTotal"] == 524288
    clock.now += 0.06
    assert parse_meminfo(read_all(ops, "/proc/meminfo"))["MemTotal"] == 262144


def test_reader_moved_to_another_cgroup_is_seen_after_20ms(
        env: tuple[LxcfsOperations, Path, Clock, list[int]]) -> None:
    """Whose view a reader gets is looked up once per READER_TTL (a monitor's burst of
    files), well within the render cache's 100 ms."""
    ops, _, clock, caller = env
    assert parse_meminfo(read_all(ops, "/proc/meminfo"))["MemTotal"] == 524288
    Path(ops.proc, "100", "cgroup").write_text("0::/other\n")   # moved
    clock.now += 0.01
    assert parse_meminfo(read_all(ops, "/proc/meminfo"))["MemTotal"] == 524288   # same burst
    clock.now += 0.015
    assert parse_meminfo(read_all(ops, "/proc/meminfo"))["MemTotal"] == 131072   # looked up again
    clock.now += 30
    caller[0] = 101
    read_all(ops, "/proc/stat")               # the 5 s sweep forgets readers not seen since
    assert set(ops._readers) == {101}


def test_foreign_pid_namespace_uses_its_init(env: tuple[LxcfsOperations, Path, Clock, list[int]]) -> None:
    ops, _, _, caller = env
    caller[0] = 300  # lives in /other, but its namespace's init (250) is in /ctr/app
    assert parse_meminfo(read_all(ops, "/proc/meminfo"))["MemTotal"] == 524288
    age, idle = (float(v) for v in read_all(ops, "/proc/uptime").split())
    assert 4.0 < age < 7.0  # since the init started, not since boot
    assert idle == pytest.approx(2 * age - 2.0, abs=0.05)  # 2 CPUs minus 2 s of CPU used
    caller[0] = 100  # a reader sharing the daemon's namespace sees the host's uptime
    assert read_all(ops, "/proc/uptime") == b"500.00 1900.00\n"


def test_vanished_cgroup_is_eio_and_daemon_goes_on(env: tuple[LxcfsOperations, Path, Clock, list[int]]) -> None:
    ops, _, _, caller = env
    Path(ops.proc, "100", "cgroup").write_text("0::/ctr/gone\n")  # a cgroup removed meanwhile
    with pytest.raises(FuseError) as e:
        read_all(ops, "/proc/meminfo")
    assert e.value.errno == errno.EIO
    caller[0] = 101
    assert parse_meminfo(read_all(ops, "/proc/meminfo"))["MemTotal"] == 131072


def test_reader_gone_is_esrch(env: tuple[LxcfsOperations, Path, Clock, list[int]]) -> None:
    ops, _, _, caller = env
    caller[0] = 4242
    with pytest.raises(FuseError) as e:
        read_all(ops, "/proc/meminfo")
    assert e.value.errno == errno.ESRCH


def test_malformed_files_and_renderer_bugs_become_eio(env: tuple[LxcfsOperations, Path, Clock, list[int]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ops, cg, _, _ = env
    (cg / "ctr/app/memory.stat").write_bytes(b"\xff\xfe garbage\nfile=3\n")
    (cg / "ctr/app/memory.max").write_text("-5\n")
    assert parse_meminfo(read_all(ops, "/proc/meminfo"))["MemTotal"] == 8000000
    Path(ops.proc, "stat").write_text("cpu0 x y z\nnonsense\n")
    assert b"nonsense" in read_all(ops, "/proc/stat")

    def boom(*args: object) -> bytes:
        raise ValueError("bug")

    monkeypatch.setitem(ops._renderers, "loadavg", boom)
    with pytest.raises(FuseError) as e:
        read_all(ops, "/proc/loadavg")
    assert e.value.errno == errno.EIO


def test_loadavg_of_the_cgroups_own_tasks(env: tuple[LxcfsOperations, Path, Clock, list[int]]) -> None:
    ops, cg, _, _ = env
    (cg / "ctr/app/cgroup.threads").write_text("100\n101\n")
    Path(ops.proc, "101", "stat").write_text("101 (a) R 1 " + "0 " * 30 + "\n")
    # the reader (pid 100, blocked on this very read) is not counted, even as R
    Path(ops.proc, "100", "stat").write_text("100 (a) R 1 " + "0 " * 30 + "\n")
    assert read_all(ops, "/proc/loadavg") == b"1.00 1.00 1.00 1/2 101\n"
