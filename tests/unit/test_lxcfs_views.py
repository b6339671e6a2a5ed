"""Pure views: fixed inputs, exact outputs."""

from __future__ import annotations

from lxcfs_toolkit.views.cpuinfo import render_cpuinfo
from lxcfs_toolkit.views.cpuonline import render_cpu_online
from lxcfs_toolkit.views.diskstats import render_diskstats, render_partitions
from lxcfs_toolkit.views.inputs import CpuSet, CpuUsage, DiskCounters, Load, Memory
from lxcfs_toolkit.views.loadavg import render_loadavg
from lxcfs_toolkit.views.meminfo import parse_meminfo, render_meminfo
from lxcfs_toolkit.views.stat import parse_stat, render_stat
from lxcfs_toolkit.views.swaps import render_swaps
from lxcfs_toolkit.views.uptime import render_uptime

MiB = 1 << 20
HOST_MEMINFO = (
    b"MemTotal:        8000000 kB\n"
    b"MemFree:         6000000 kB\n"
    b"MemAvailable:    7000000 kB\n"
    b"Buffers:           10000 kB\n"
    b"Cached:           900000 kB\n"
    b"SwapCached:            0 kB\n"
    b"Active:           500000 kB\n"
    b"Inactive:         400000 kB\n"
    b"Mlocked:               0 kB\n"
    b"SwapTotal:       2000000 kB\n"
    b"SwapFree:        2000000 kB\n"
    b"Shmem:              1000 kB\n"
    b"Slab:              50000 kB\n"
    b"HugePages_Total:       0\n"
)


def mem(**kw: object) -> Memory:
    base: dict[str, object] = {"limit": 256 * MiB, "usage": 100 * MiB, "stat": {"file": 40 * MiB}}
    base.update(kw)
    return Memory(**base)  # type: ignore[arg-type]


def test_meminfo_root_cgroup_is_host_verbatim() -> None:
    assert render_meminfo(None, HOST_MEMINFO) is HOST_MEMINFO


def test_meminfo_limit_usage_and_passthrough() -> None:
    out = parse_meminfo(render_meminfo(mem(), HOST_MEMINFO))
    assert out["MemTotal"] == 262144
    assert out["MemFree"] == 262144 - 102400
    assert out["MemAvailable"] == 262144 - 102400 + 40960
    assert out["Cached"] == 40960
    assert out["Buffers"] == 0
    assert out["Mlocked"] == 0 and out["HugePages_Total"] == 0  # passed through


def test_meminfo_line_format_matches_kernel() -> None:
    lines = render_meminfo(mem(), HOST_MEMINFO).decode().splitlines()
    assert lines[0] == "MemTotal:         262144 kB"
    assert "Inactive(anon):" not in lines  # only host keys are emitted
    assert len(lines) == len(HOST_MEMINFO.splitlines())


def test_meminfo_never_above_host() -> None:
    out = parse_meminfo(render_meminfo(mem(limit=64 << 30, usage=MiB), HOST_MEMINFO))
    assert out["MemTotal"] == 8000000
    assert out["MemFree"] <= 6000000
    assert out["MemAvailable"] <= 7000000


def test_meminfo_unlimited_uses_host_total() -> None:
    out = parse_meminfo(render_meminfo(mem(limit=None), HOST_MEMINFO))
    assert out["MemTotal"] == 8000000


def test_meminfo_usage_above_limit_does_not_underflow() -> None:
    out = parse_meminfo(render_meminfo(mem(usage=300 * MiB), HOST_MEMINFO))
    assert out["MemFree"] == 0 and out["MemAvailable"] >= 0


def test_meminfo_swap_from_limit_and_usage() -> None:
    out = parse_meminfo(render_meminfo(mem(swap_limit=512 * MiB, swap_usage=10 * MiB), HOST_MEMINFO))
    assert out["SwapTotal"] == 524288
    assert out["SwapFree"] == 524288 - 10240


def test_meminfo_swap_capped_by_host_and_no_underflow() -> None:
    out = parse_meminfo(render_meminfo(mem(swap_limit=None, swap_usage=3_000_000 * 1024), HOST_MEMINFO))
    assert out["SwapTotal"] == 2000000
    assert out["SwapFree"] == 0


def test_meminfo_no_swap_accounting_shows_no_swap() -> None:
    out = parse_meminfo(render_meminfo(mem(swap_usage=None), HOST_MEMINFO))
    assert out["SwapTotal"] == 0 and out["SwapFree"] == 0


def test_meminfo_swappiness_zero_means_no_free_swap() -> None:
    out = parse_meminfo(render_meminfo(mem(swap_limit=512 * MiB, swap_usage=5 * MiB, swappiness=0), HOST_MEMINFO))
    assert out["SwapTotal"] == 5120 and out["SwapFree"] == 0


def test_swaps_root_and_limited() -> None:
    host_swaps = b"Filename\tType\tSize\tUsed\tPriority\n/dev/zram0 partition 100 0 100\n"
    assert render_swaps(None, HOST_MEMINFO, host_swaps) is host_swaps
    text = render_swaps(mem(swap_limit=512 * MiB, swap_usage=MiB), HOST_MEMINFO, host_swaps).decode()
    header, line = text.splitlines()
    assert header.startswith("Filename")
    assert line.split() == ["none", "virtual", "524288", "1024", "0"]
    assert render_swaps(mem(swap_usage=None), HOST_MEMINFO, host_swaps).decode().count("\n") == 1


def _cpuinfo(n: int) -> bytes:
    blocks = []
    for i in range(n):
        blocks.append(
            f"processor\t: {i}\nvendor_id\t: X\nphysical id\t: 0\nsiblings\t: {n}\n"
            f"core id\t\t: {i}\ncpu cores\t: {n}\nflags\t\t: fpu\n\n"
        )
    return "".join(blocks).encode()


def test_cpuinfo_renumbers_and_presents_single_core_packages() -> None:
    text = render_cpuinfo(CpuSet(cpus=(2, 5), allowed=(2, 5)), _cpuinfo(8)).decode()
    blocks = [b for b in text.split("\n\n") if b]
    assert len(blocks) == 2
    assert blocks[1].splitlines() == [
        "processor\t: 1", "vendor_id\t: X", "physical id\t: 1", "siblings\t: 1",
        "core id\t\t: 0", "cpu cores\t: 1", "flags\t\t: fpu",
    ]


def test_cpuinfo_root_is_host_and_offline_cpus_skipped() -> None:
    host = _cpuinfo(2)
    assert render_cpuinfo(None, host) is host
    text = render_cpuinfo(CpuSet(cpus=(1, 7), allowed=(1, 7)), host).decode()
    assert text.count("processor") == 1


def test_cpu_online() -> None:
    assert render_cpu_online(None, b"0-7\n") == b"0-7\n"
    assert render_cpu_online(CpuSet((3,), (3,)), b"0-7\n") == b"0\n"
    assert render_cpu_online(CpuSet((3, 4, 6), (3, 4, 6)), b"0-7\n") == b"0-2\n"


HOST_STAT = (
    b"cpu  400 40 200 4000 10 0 0 0 0 0\n"
    b"cpu0 100 10 50 1000 5 0 0 0 0 0\n"
    b"cpu1 100 10 50 1000 5 0 0 0 0 0\n"
    b"cpu2 100 10 50 1000 0 0 0 0 0 0\n"
    b"cpu3 100 10 50 1000 0 0 0 0 0 0\n"
    b"intr 12345 0 0\n"
    b"ctxt 999\n"
    b"btime 1700000000\n"
)


def _cpu_lines(text: bytes) -> dict[str, list[int]]:
    return {
        line.split()[0]: [int(v) for v in line.split()[1:]]
        for line in text.decode().splitlines()
        if line.startswith("cpu")
    }


def test_stat_root_is_host() -> None:
    assert render_stat(None, None, HOST_STAT, 100) is HOST_STAT


def test_stat_host_lines_of_cpuset_renumbered() -> None:
    out = render_stat(CpuSet((1, 3), (1, 3)), None, HOST_STAT, 100)
    lines = _cpu_lines(out)
    assert set(lines) == {"cpu", "cpu0", "cpu1"}
    assert lines["cpu0"] == [100, 10, 50, 1000, 5, 0, 0, 0, 0, 0]
    assert lines["cpu"] == [a + b for a, b in zip(lines["cpu0"], lines["cpu1"])]
    assert out.decode().endswith("intr 12345 0 0\nctxt 999\nbtime 1700000000\n")


def test_stat_per_cpu_usage_from_cpuacct() -> None:
    usage = CpuUsage(user_ns=3 * 10**9, system_ns=10**9, per_cpu={2: (2 * 10**9, 10**9), 3: (10**9, 0)})
    lines = _cpu_lines(render_stat(CpuSet((2, 3), (2, 3)), usage, HOST_STAT, 100))
    # cpu2: host busy 160 ticks, cgroup 300: idle = host idle + others' busy (none left)
    assert lines["cpu0"] == [200, 0, 100, 1000, 0, 0, 0, 0, 0, 0]
    # cpu3: cgroup used 100 of the host's 160 busy ticks: the other 60 become idle
    assert lines["cpu1"] == [100, 0, 0, 1060, 0, 0, 0, 0, 0, 0]
    assert lines["cpu"] == [300, 0, 100, 2060, 0, 0, 0, 0, 0, 0]


def test_stat_totals_only_split_evenly_and_add_up() -> None:
    usage = CpuUsage(user_ns=4 * 10**9, system_ns=2 * 10**9)  # cgroup v2 cpu.stat
    lines = _cpu_lines(render_stat(CpuSet((0, 1), (0, 1)), usage, HOST_STAT, 100))
    assert lines["cpu0"] == [200, 0, 100, 1165 - 300, 0, 0, 0, 0, 0, 0]
    assert sum(lines["cpu0"]) == 1165  # each line's wall time is the host CPU's
    assert lines["cpu"][0] == 400


def test_stat_quota_cut_uses_even_split() -> None:
    usage = CpuUsage(user_ns=2 * 10**9, system_ns=0, per_cpu={0: (10**9, 0), 1: (10**9, 0)})
    lines = _cpu_lines(render_stat(CpuSet((0,), (0, 1)), usage, HOST_STAT, 100))
    assert set(lines) == {"cpu", "cpu0"}
    assert lines["cpu0"][0] == 200


def test_stat_parse_tolerates_short_lines() -> None:
    cpus, rest = parse_stat(b"cpu  1 2\ncpu0 1 2 3\nbtime 5\n")
    assert cpus[0] == [1, 2, 3, 0, 0, 0, 0, 0, 0, 0]
    assert rest == b"btime 5\n"
    cpus, rest = parse_stat(b"cpu  1 2\ncpu0 1 x 3 4 5 6 7 8 9 10 11\nintr 1 2\n")
    assert cpus[0] == [1, 3, 4, 5, 6, 7, 8, 9, 10, 0] and rest == b"intr 1 2\n"
    cpus, rest = parse_stat(b"cpu  7 7\ncpu1 1 2 3 4 5 6 7 8 9 10\ncpu0 1\nintr 1 2\n")
    assert set(cpus) == {0, 1} and cpus[1] == list(range(1, 11))   # the total is no cpu


def test_uptime() -> None:
    assert render_uptime(12.345, 2, 4 * 10**9) == b"12.35 20.69\n"
    assert render_uptime(1.0, 1, 5 * 10**9) == b"1.00 0.00\n"  # never negative idle
    assert render_uptime(-3.0, 1, None) == b"0.00 0.00\n"


def test_loadavg() -> None:
    assert render_loadavg(None, b"0.1 0.2 0.3 1/2 3\n") == b"0.1 0.2 0.3 1/2 3\n"
    assert render_loadavg(Load(1.0, 0.5, 0.25, 2, 17, 4242), b"") == b"1.00 0.50 0.25 2/17 4242\n"


HOST_DISKSTATS = (
    b"   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    b"   8       0 sda 100 0 800 5 10 0 80 1 0 6 6 0 0 0 0 0 0\n"
    b"   8       1 sda1 50 0 400 5 10 0 80 1 0 6 6 0 0 0 0 0 0\n"
)


def test_diskstats_only_devices_the_cgroup_used() -> None:
    io = {(8, 0): DiskCounters(reads=3, read_sectors=24, writes=1, write_sectors=8), (7, 0): DiskCounters()}
    text = render_diskstats(io, HOST_DISKSTATS).decode()
    assert text == "   8       0 sda 3 0 24 0 1 0 8 0 0 0 0 0 0 0 0 0 0\n"
    assert render_diskstats(None, HOST_DISKSTATS) is HOST_DISKSTATS
    assert render_diskstats({}, HOST_DISKSTATS) == b""


def test_partitions_filtered_like_diskstats() -> None:
    host = b"major minor  #blocks  name\n\n   8        0  1000 sda\n   8        1   500 sda1\n"
    io = {(8, 1): DiskCounters(reads=1)}
    assert render_partitions(io, host) == b"major minor  #blocks  name\n\n   8        1   500 sda1\n"
    assert render_partitions(None, host) is host


def test_meminfo_other_lines_pass_through_verbatim_whatever_the_host_text() -> None:
    odd = b"MemTotal: 100 kB\nWeird%Line:   5 %s kB\nnocolon\nMemFree:  80 kB\nBuffers: 7 kB\n"
    m = mem(limit=40 * 1024, usage=10 * 1024, stat={})
    expected = (b"MemTotal:             40 kB\nWeird%Line:   5 %s kB\nnocolon\n"
                b"MemFree:              30 kB\nBuffers:               0 kB\n")
    for _ in range(2):   # alternating host texts: each is rendered from its own lines
        assert render_meminfo(m, odd) == expected
        assert render_meminfo(m, HOST_MEMINFO).startswith(b"MemTotal:             40 kB\n")
