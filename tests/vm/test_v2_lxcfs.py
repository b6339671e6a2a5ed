"""lxcfs views on pure cgroup v2, read by a process inside a runc container
(its own cgroup namespace, as runc gives it on v2), the limits set on a
parent cgroup and the reader in a child.  The Python daemon is checked
against the kernel's files, and compared with C lxcfs 5.0.3 where C is right
on v2 (meminfo, cpuinfo, cpu/online); where C is wrong on v2 (its /proc/stat
per-CPU times and diskstats are the host's) the test shows ours are not."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainer_tools import mountinfo
from tests.system.cgroups import v2_dir
from tests.system.conftest import PREFIX, run
from tests.system.daemons import stop_process
from tests.vm.conftest import PURE_V2, need
from tests.vm.helpers import disk, wait_for

pytestmark = [pytest.mark.system,
              pytest.mark.skipif(not PURE_V2, reason="the views of pure cgroup v2")]

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20
KERNEL = tuple(int(x) for x in os.uname().release.split(".")[:2])


def _mounted(path: str) -> bool:
    return any(ln.split()[4] == path for ln in Path("/proc/self/mountinfo").read_text().splitlines())


@contextlib.contextmanager
def daemon(cmd: list[str], mnt: Path, log: Path) -> Iterator[str]:
    mnt.mkdir(exist_ok=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=log.open("w"))

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{cmd[0]} exited: {log.read_text()}")
        try:
            return _mounted(str(mnt)) and "meminfo" in os.listdir(mnt / "proc")
        except OSError:
            return False

    try:
        # the FUSE daemon took ~30 s to come up under emulation
        wait_for(up, f"{cmd} at {mnt}", 10)
        yield str(mnt)
    finally:
        stop_process(proc)
        if _mounted(str(mnt)):
            run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture(scope="module")
def lxcfs_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    exe = need("lxcfs")
    tmp = tmp_path_factory.mktemp("lx")
    with daemon([sys.executable, "-m", "lxcfs_toolkit.server", str(tmp / "py")], tmp / "py",
                tmp / "py.log") as py, \
            daemon([exe, "-f", "-l", "-p", str(tmp / "c.pid"), str(tmp / "c")], tmp / "c",
                   tmp / "c.log") as c:
        yield py, c


@pytest.fixture
def parent_cgroup() -> Iterator[Path]:
    d = Path("/sys/fs/cgroup", f"{PREFIX}-lx")
    d.mkdir()
    try:
        (d / "memory.max").write_text(str(256 * MIB))
        (d / "memory.swap.max").write_text(str(64 * MIB))
        (d / "cpuset.cpus").write_text("0")
        (d / "cpu.max").write_text("50000 100000")
        (d / "cgroup.subtree_control").write_text("+cpuset +cpu +io +memory +pids")
        yield d
    finally:
        for _ in range(100):
            with contextlib.suppress(OSError):
                for sub in d.iterdir():
                    if sub.is_dir():
                        sub.rmdir()
                d.rmdir()
                break
            time.sleep(0.2)


@pytest.fixture
def swap() -> Iterator[None]:
    """Swap on the lane disk's second partition, so the swap view has something to cap."""
    _, parts = disk()
    run(["mkswap", parts[1]])
    run(["swapon", parts[1]])
    try:
        yield
    finally:
        run(["swapoff", parts[1]], check=False)


def field_kb(meminfo: str, key: str) -> int:
    for line in meminfo.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} in {meminfo!r}")


def test_views_in_a_runc_container(lxcfs_pair, parent_cgroup, swap, make_container, tool):
    # (parent_cgroup before make_container: the container is gone before the
    # parent cgroup is removed)
    py, c = lxcfs_pair
    ctr = make_container("lxr", start=False)
    cfg = json.loads((ctr.bundle / "config.json").read_text())
    cfg["linux"]["cgroupsPath"] = f"/{parent_cgroup.name}/reader"
    assert any(ns["type"] == "cgroup" for ns in cfg["linux"]["namespaces"])
    cfg["mounts"] += [{"destination": "/lxpy", "type": "bind", "source": py,
                       "options": ["rbind", "ro"]},
                      {"destination": "/lxc", "type": "bind", "source": c,
                       "options": ["rbind", "ro"]}]
    (ctr.bundle / "config.json").write_text(json.dumps(cfg))
    ctr.start()
    assert ctr.exec("cat", "/proc/self/cgroup").stdout.strip() == "0::/"   # own cgroupns
    cg = parent_cgroup / "reader"
    assert int((cg / "cgroup.procs").read_text().split()[0]) == ctr.pid

    def view(where: str, name: str) -> str:
        return ctr.exec("cat", f"/{where}/{name}").stdout

    # meminfo: the parent's memory.max, what memory.current/stat say is used
    mem_py, mem_c = view("lxpy", "proc/meminfo"), view("lxc", "proc/meminfo")
    assert field_kb(mem_py, "MemTotal") == 256 * 1024 == field_kb(mem_c, "MemTotal")
    assert 0 < field_kb(mem_py, "MemFree") <= 256 * 1024
    # swaps: memory.swap.max of the parent caps the host's swap
    total = field_kb(mem_py, "SwapTotal")
    assert total == 64 * 1024, mem_py
    swaps = view("lxpy", "proc/swaps").splitlines()
    assert len(swaps) == 2 and int(swaps[1].split()[2]) == 64 * 1024, swaps
    # cpuinfo, stat, cpu/online from cpuset.cpus.effective (one CPU) and cpu.max
    for where in ("lxpy", "lxc"):
        info = view(where, "proc/cpuinfo")
        assert [ln for ln in info.splitlines() if ln.startswith("processor")] == \
            ["processor\t: 0"], where
        assert view(where, "sys/devices/system/cpu/online").strip() == "0", where
    stat_py = view("lxpy", "proc/stat")
    assert {ln.split()[0] for ln in stat_py.splitlines() if ln.startswith("cpu")} == \
        {"cpu", "cpu0"}
    # per-CPU busy times (user nice system irq softirq) are the container's
    # (cpu.stat), not the host's: C shows the host's.  idle is the rest of
    # the CPU's wall time, so a line still adds up as the host's does.
    usage_us = int(dict(ln.split() for ln in (cg / "cpu.stat").read_text().splitlines())
                   ["usage_usec"])

    def busy(line: str) -> int:
        f = [int(x) for x in line.split()[1:8]]
        return f[0] + f[1] + f[2] + f[5] + f[6]

    host_cpu0 = busy(next(ln for ln in Path("/proc/stat").read_text().splitlines()
                          if ln.startswith("cpu0 ")))
    py_cpu0 = busy(next(ln for ln in stat_py.splitlines() if ln.startswith("cpu0 ")))
    clk_tck = os.sysconf("SC_CLK_TCK")
    assert py_cpu0 <= usage_us * clk_tck // 1_000_000 + clk_tck, (py_cpu0, usage_us)
    assert py_cpu0 < host_cpu0, (py_cpu0, host_cpu0)
    # uptime: the container's, younger than the guest's
    assert float(view("lxpy", "proc/uptime").split()[0]) < \
        float(Path("/proc/uptime").read_text().split()[0])
    assert len(view("lxpy", "proc/loadavg").split()) == 5

    # diskstats from io.stat: reads by the container show, the host's do not
    whole, _ = disk()
    tool("add-device", ctr.id, f"{whole}:/dev/vdz:r", check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3")
    ctr.sh("dd if=/dev/vdz of=/dev/null bs=64k count=16 skip=2000")
    name = os.path.basename(whole)
    rbytes = 0
    st = os.stat(whole)
    for line in (cg / "io.stat").read_text().splitlines():
        if line.startswith(f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)} "):
            rbytes = int(dict(kv.split("=") for kv in line.split()[1:])["rbytes"])
    assert rbytes >= 16 * 65536
    rows = [ln.split() for ln in view("lxpy", "proc/diskstats").splitlines()]
    mine = [r for r in rows if r[2] == name]
    assert mine and int(mine[0][5]) * 512 == rbytes, (mine, rbytes)
    host = [ln.split() for ln in Path("/proc/diskstats").read_text().splitlines()
            if ln.split()[2] == name][0]
    assert int(host[5]) * 512 > rbytes   # the guest read the table and more before
    tool("remove-device", ctr.id, whole, check=True)


# --- /proc/pressure through lxcfs-hook ------------------------------------------------

@pytest.fixture
def hooked_lxcfs(tmp_path: Path) -> Iterator[str]:
    """The Python daemon at a test-owned lxcfs directory prepared as the
    systemd unit prepares it (``lxcfs-toolkit prestart``)."""
    parent = Path(f"/run/{PREFIX}-lxpsi")
    directory = parent / "lxcfs"
    env = dict(os.environ, LXCFS_DIR=str(directory))
    try:
        run([sys.executable, "-m", "lxcfs_toolkit.cli", "prestart"], env=env)
        with daemon([sys.executable, "-m", "lxcfs_toolkit.server", str(directory)], directory,
                    tmp_path / "py.log") as d:
            yield d
    finally:
        while _mounted(str(parent)):
            run(["umount", "-l", str(parent)], check=False)
        shutil.rmtree(parent, ignore_errors=True)


def psi_totals(text: str) -> dict[str, int]:
    """``{"some": total, "full": total}`` of a PSI file (microseconds)."""
    out = {}
    for line in text.splitlines():
        kind, *fields = line.split()
        values = dict(f.split("=") for f in fields)
        assert list(values) == ["avg10", "avg60", "avg300", "total"], text
        out[kind] = int(values["total"])
    return out


def test_pressure_through_lxcfs_hook(make_container, hooked_lxcfs, tmp_path):
    """/proc/pressure/{cpu,io,memory} in a container wired with lxcfs-hook are
    its own cgroup's *.pressure (lxcfs 7.0's view; C lxcfs 5.0.3 has none)."""
    hook = str(Path(sys.executable).parent / "lxcfs-hook")
    ctr = make_container("psi", cpus="0", hooks={"prestart": [{
        "path": hook, "args": ["lxcfs-hook", "--lxcfs-dir", hooked_lxcfs,
                               "--log", str(tmp_path / "hook.log")]}]})
    points = {e.point for e in mountinfo.read(ctr.pid) if e.fstype == "fuse.lxcfs"}
    assert {"/proc/pressure/cpu", "/proc/pressure/io", "/proc/pressure/memory"} <= points, \
        (points, (tmp_path / "hook.log").read_text())
    cg = v2_dir(ctr.pid)
    # two busy loops on the container's one CPU: each waits while the other
    # runs, so the container's cpu "some" pressure grows
    ctr.sh("spin() { i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; }; spin & spin; wait")
    for res in ("cpu", "io", "memory"):
        before = psi_totals((cg / f"{res}.pressure").read_text())
        seen = psi_totals(ctr.exec("cat", f"/proc/pressure/{res}").stdout)
        after = psi_totals((cg / f"{res}.pressure").read_text())
        host = psi_totals(Path(f"/proc/pressure/{res}").read_text())
        # cpu.pressure has a "full" line from 5.13 on (bullseye's 5.10: "some" only)
        kinds = {"some"} if res == "cpu" and KERNEL < (5, 13) else {"some", "full"}
        assert set(seen) == set(before) == kinds, (res, seen, before)
        for kind in seen:
            # totals only grow: the view read between two reads of the file
            assert before[kind] <= seen[kind] <= after[kind], (res, kind, before, seen, after)
        if res == "cpu":
            assert seen["some"] > 0, "the busy loops made no cpu pressure in the container"
            # the guest's own pressure since boot (before the container) is in
            # the host's file and not in the container's
            assert host["some"] > after["some"], (host, after)
