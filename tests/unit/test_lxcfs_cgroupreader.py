"""cgroupreader.py on parsed text and on temp-dir trees laid out like cgroupfs (v1 and v2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcfs_toolkit.blkio import parse_blkio
from lxcfs_toolkit.cgroupfiles import parse_cpu_list
from lxcfs_toolkit.cgroupreader import (
    CgroupGone,
    CgroupReader,
    Hierarchies,
    pruned_membership,
)
from lxcfs_toolkit.views.inputs import CpuSet, DiskCounters
from syscontainer_tools.cgroup import Membership

MiB = 1 << 20

MOUNTINFO_HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
90 31 0:32 /sub /mnt/bind\\040x rw,relatime - cgroup cgroup rw,memory
"""


def test_mountinfo_hybrid_separate_cpu_and_cpuacct() -> None:
    h = Hierarchies.from_mountinfo(MOUNTINFO_HYBRID)
    assert h.v1 == {"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct",
                    "memory": "/sys/fs/cgroup/memory"}
    assert h.v2 == "/sys/fs/cgroup/unified"


def test_mountinfo_comounted_and_pure_v2() -> None:
    h = Hierarchies.from_mountinfo(
        "30 1 0:5 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    )
    assert h.v1 == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct"}
    h2 = Hierarchies.from_mountinfo("30 1 0:5 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
    assert h2.v1 == {} and h2.v2 == "/sys/fs/cgroup"


def test_proc_cgroup_and_init_scope_pruning() -> None:
    m = pruned_membership(
        "9:name=systemd:/\n4:memory:/ctr/init.scope\n2:cpu,cpuacct:/ctr\n0::/ctr/init.scope\n"
        "garbage\n"
    )
    assert m.v1 == {"memory": "/ctr", "cpu": "/ctr", "cpuacct": "/ctr"}
    assert m.v2 == "/ctr"
    assert pruned_membership("0::/init.scope\n").v2 == "/"


def test_cpu_list() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == (0, 1, 2, 3, 8, 10, 11)
    assert parse_cpu_list("") == ()
    assert parse_cpu_list("3-1") is None
    assert parse_cpu_list("x") is None


def write(root: Path, rel: str, files: dict[str, str]) -> Path:
    d = root / rel.strip("/") if rel != "/" else root
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


@pytest.fixture
def v2(tmp_path: Path) -> tuple[CgroupReader, Path]:
    """A pure cgroup v2 tree: /ctr (512M, cpus 2-5) with child /ctr/app (256M)."""
    root = tmp_path / "unified"
    write(root, "/", {"cgroup.controllers": "cpuset cpu io memory pids\n", "cpu.stat": "usage_usec 1\n"})
    write(root, "/ctr", {
        "memory.max": str(512 * MiB), "memory.current": str(300 * MiB),
        "memory.swap.max": str(64 * MiB), "memory.swap.current": str(MiB),
        "cpu.max": "max 100000\n", "cpuset.cpus.effective": "2-5\n",
    })
    write(root, "/ctr/app", {
        "memory.max": "max\n", "memory.current": str(100 * MiB),
        "memory.stat": "anon 60000000\nfile 40000000\nshmem 1000\nbogus line here\n",
        "memory.swap.max": "max\n", "memory.swap.current": str(2 * MiB),
        "cpu.max": "150000 100000\n", "cpuset.cpus.effective": "2-5\n",
        "cpu.stat": "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\n",
        "io.stat": "8:0 rbytes=4096 wbytes=1024 rios=2 wios=1 dbytes=0 dios=0\n259:0 rbytes=0 wbytes=0 rios=0 wios=0\n",
        "cgroup.threads": "101\n102\n",
    })
    write(root, "/ctr/app/sub", {"cgroup.threads": "103\n"})
    return CgroupReader(Hierarchies(v1={}, v2=str(root))), root


APP = Membership(v2="/ctr/app")


def test_v2_memory_lowest_limit_up_the_tree(v2: tuple[CgroupReader, Path]) -> None:
    reader, _ = v2
    mem = reader.memory(APP)
    assert mem is not None
    assert mem.limit == 512 * MiB  # the child says max; the parent limits
    assert mem.usage == 100 * MiB
    assert mem.stat["file"] == 40000000 and mem.stat["anon"] == 60000000
    assert mem.swap_limit == 64 * MiB and mem.swap_usage == 2 * MiB


def test_v2_cpuset_and_cfs_quota(v2: tuple[CgroupReader, Path]) -> None:
    reader, _ = v2
    host = tuple(range(8))
    assert reader.cpuset(APP, host, cfs_quota=False) == CpuSet((2, 3, 4, 5), (2, 3, 4, 5))
    assert reader.cpu_quota(APP) == 1.5
    assert reader.cpuset(APP, host, cfs_quota=True) == CpuSet((2, 3), (2, 3, 4, 5))


def test_v2_cpu_usage_and_io(v2: tuple[CgroupReader, Path]) -> None:
    reader, _ = v2
    usage = reader.cpu_usage(APP)
    assert usage is not None and usage.user_ns == 2_000_000 and usage.system_ns == 1_000_000
    assert usage.per_cpu is None
    io = reader.io(APP)
    assert io is not None
    assert io[(8, 0)] == DiskCounters(reads=2, read_sectors=8, writes=1, write_sectors=2)
    assert not io[(259, 0)].any()


def test_v2_tasks_include_descendants(v2: tuple[CgroupReader, Path]) -> None:
    reader, _ = v2
    assert sorted(reader.tasks(APP) or []) == [101, 102, 103]


def test_root_cgroup_means_host(v2: tuple[CgroupReader, Path]) -> None:
    reader, _ = v2
    root = Membership(v2="/")
    assert reader.memory(root) is None
    assert reader.cpuset(root, (0, 1), cfs_quota=True) is None
    assert reader.cpu_usage(root) is None
    assert reader.io(root) is None
    assert reader.tasks(root) is None


def test_vanished_cgroup_raises_cgroup_gone(v2: tuple[CgroupReader, Path]) -> None:
    reader, _ = v2
    gone = Membership(v2="/ctr/deleted")
    for call in (reader.memory, reader.cpu_usage, reader.io, reader.tasks):
        with pytest.raises(CgroupGone):
            call(gone)
    with pytest.raises(CgroupGone):
        reader.cpuset(gone, (0, 1), cfs_quota=False)


def test_controller_not_enabled_means_host(v2: tuple[CgroupReader, Path]) -> None:
    reader, root = v2
    write(root, "/plain", {"cgroup.procs": ""})
    assert reader.memory(Membership(v2="/plain")) is None


def test_malformed_files_do_not_raise(v2: tuple[CgroupReader, Path]) -> None:
    reader, root = v2
    write(root, "/ctr/app", {
        "memory.max": "lots\n", "memory.current": "\x00\x01", "memory.stat": "file\nanon x\n",
        "cpu.max": "1 2 3\n", "cpuset.cpus.effective": "9-2\n", "cpu.stat": "usage_usec nope\n",
        "io.stat": "8:x rbytes=1\n::\n8:0 rbytes=abc\n",
    })
    mem = reader.memory(APP)
    assert mem is not None and mem.usage == 0 and mem.limit == 512 * MiB and mem.stat == {}
    # an unreadable cpuset and quota show the host's CPUs rather than fail
    assert reader.cpuset(APP, (0, 1, 2, 3, 4, 5), cfs_quota=True) is None
    assert reader.cpu_usage(APP) is None
    assert reader.io(APP) == {(8, 0): DiskCounters()}


@pytest.fixture
def v1(tmp_path: Path) -> tuple[CgroupReader, dict[str, Path]]:
    """cgroup v1 with separate cpu, cpuacct, cpuset, memory and blkio hierarchies."""
    mounts = {c: tmp_path / c for c in ("cpu", "cpuacct", "cpuset", "memory", "blkio")}
    unlimited = "9223372036854771712\n"
    write(mounts["memory"], "/", {"memory.limit_in_bytes": unlimited, "memory.memsw.limit_in_bytes": unlimited})
    write(mounts["memory"], "/ctr", {"memory.limit_in_bytes": str(256 * MiB), "memory.memsw.limit_in_bytes": unlimited})
    write(mounts["memory"], "/ctr/app", {
        "memory.limit_in_bytes": unlimited, "memory.usage_in_bytes": str(100 * MiB),
        "memory.memsw.limit_in_bytes": str(384 * MiB), "memory.memsw.usage_in_bytes": str(90 * MiB),
        "memory.swappiness": "60\n",
        "memory.stat": "cache 1\ntotal_cache 41943040\ntotal_rss 1000\ntotal_shmem 7\n"
                       f"hierarchical_memory_limit {256 * MiB}\n",   # the kernel's min up the tree
    })
    write(mounts["cpuacct"], "/ctr/app", {
        "cpuacct.usage_all": "cpu user system\n0 1000 2000\n1 3000 4000\n",
    })
    write(mounts["cpu"], "/ctr", {"cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n"})
    write(mounts["cpu"], "/ctr/app", {"cpu.cfs_quota_us": "50000\n", "cpu.cfs_period_us": "100000\n",
                                      "tasks": "7\n8\n"})
    write(mounts["cpuset"], "/ctr/app", {"cpuset.effective_cpus": "1\n", "cpuset.cpus": "1\n"})
    write(mounts["blkio"], "/ctr/app", {
        "blkio.throttle.io_serviced_recursive": "8:0 Read 5\n8:0 Write 2\n8:0 Total 7\nTotal 7\n",
        "blkio.throttle.io_service_bytes_recursive": "8:0 Read 40960\n8:0 Write 1024\nTotal 1\n",
    })
    return CgroupReader(Hierarchies(v1={c: str(p) for c, p in mounts.items()})), mounts


APP_V1 = Membership(v1=dict.fromkeys(("cpu", "cpuacct", "cpuset", "memory", "blkio"), "/ctr/app"))


def test_v1_memory_lowest_limit_and_swap_without_underflow(v1: tuple[CgroupReader, dict[str, Path]]) -> None:
    reader, _ = v1
    mem = reader.memory(APP_V1)
    assert mem is not None
    assert mem.limit == 256 * MiB  # parent's limit is the lowest
    assert mem.stat == {"file": 41943040, "anon": 1000, "shmem": 7}
    assert mem.swap_limit == 384 * MiB
    assert mem.swap_usage == 0  # memsw usage below memory usage: no negative swap
    assert mem.swappiness == 60


def test_v1_memory_limit_from_the_kernels_hierarchical_minimum(v1: tuple[CgroupReader, dict[str, Path]]) -> None:
    """memory.stat's hierarchical limits are what the kernel enforces (also limits set
    above the mounted tree); without them the limit files up the tree are read."""
    reader, mounts = v1
    stat = mounts["memory"] / "ctr/app/memory.stat"
    text = stat.read_text()
    stat.write_text(text.replace(f"hierarchical_memory_limit {256 * MiB}",
                                 f"hierarchical_memory_limit {200 * MiB}\n"
                                 f"hierarchical_memsw_limit {300 * MiB}"))
    mem = reader.memory(APP_V1)
    assert mem is not None and mem.limit == 200 * MiB and mem.swap_limit == 300 * MiB
    stat.write_text(text.replace(f"hierarchical_memory_limit {256 * MiB}\n", ""))
    mem = reader.memory(APP_V1)
    assert mem is not None and mem.limit == 256 * MiB and mem.swap_limit == 384 * MiB
    assert mem.stat == {"file": 41943040, "anon": 1000, "shmem": 7}
    stat.write_text("total_cache 5\nodd line here\ntotal_rss x\n")   # not one pair a line
    mem = reader.memory(APP_V1)
    assert mem is not None and mem.stat == {"file": 5} and mem.limit == 256 * MiB


def test_v1_cpuacct_per_cpu_quota_and_blkio_throttle(v1: tuple[CgroupReader, dict[str, Path]]) -> None:
    reader, _ = v1
    usage = reader.cpu_usage(APP_V1)
    assert usage is not None and usage.per_cpu == {0: (1000, 2000), 1: (3000, 4000)}
    assert usage.user_ns == 4000 and usage.system_ns == 6000
    assert reader.cpu_quota(APP_V1) == 0.5
    assert reader.cpuset(APP_V1, (0, 1), cfs_quota=True) == CpuSet((1,), (1,))
    io = reader.io(APP_V1)
    assert io == {(8, 0): DiskCounters(reads=5, read_sectors=80, writes=2, write_sectors=2)}
    assert sorted(reader.tasks(APP_V1) or []) == [7, 8]


def test_v1_without_cpuacct_files_and_vanished(v1: tuple[CgroupReader, dict[str, Path]]) -> None:
    reader, mounts = v1
    (mounts["cpuacct"] / "ctr/app/cpuacct.usage_all").unlink()
    (mounts["cpuacct"] / "ctr/app/cpuacct.usage").write_text("123\n")
    usage = reader.cpu_usage(APP_V1)
    assert usage is not None and usage.total_ns == 123 and usage.per_cpu is None
    gone = Membership(v1=dict.fromkeys(("memory", "blkio", "cpuacct"), "/nope"))
    with pytest.raises(CgroupGone):
        reader.memory(gone)
    with pytest.raises(CgroupGone):
        reader.io(gone)


def test_parse_blkio_skips_junk() -> None:
    assert parse_blkio("8:0 Read 5\nTotal 7\n8:0 Write x\n") == {(8, 0): {"Read": 5}}
