"""/proc/stat with one line per shown CPU, renumbered from 0.

Three cases, by what the cgroup can tell:

* per-CPU usage (v1 cpuacct.usage_all) and no CFS cut: each line carries the
  cgroup's own user/system time on that CPU; idle is the host's idle plus
  the time other cgroups kept the CPU busy (what C lxcfs does);
* totals only (cgroup v2 cpu.stat, or a CFS quota that hides some of the
  cpuset's CPUs): the cgroup's user/system time is split evenly over the
  shown CPUs and idle is the rest of each CPU's wall time, so every line
  still adds up and grows monotonically;
* no usage (the reader is in the root cpuacct cgroup): the host's lines of
  the shown CPUs.

The aggregate "cpu" line is always the sum of the per-CPU lines below it.
Lines that are not about CPUs (intr, ctxt, btime, processes...) are the
host's.
"""

from __future__ import annotations

from lxcfs_toolkit.views.inputs import CpuSet, CpuUsage

NFIELDS = 10  # user nice system idle iowait irq softirq steal guest guest_nice
IDLE = 3


def split_stat(host: bytes) -> tuple[dict[int, bytes], bytes]:
    """Host /proc/stat -> ({cpu: its line, unparsed}, the rest of the file as it is).

    The kernel writes the cpu lines first; the rest (the intr line alone can
    hold thousands of numbers) is passed through untouched."""
    lines: dict[int, bytes] = {}
    pos, size = 0, len(host)
    while host.startswith(b"cpu", pos):
        end = host.find(b"\n", pos)
        end = size if end < 0 else end + 1
        name = host[pos + 3:end].split(None, 1)[0] if end > pos + 3 else b""
        if name.isdigit() and host[pos + 3:pos + 4].isdigit():   # "cpu  ..." is the total
            lines[int(name)] = host[pos:end]
        pos = end
    return lines, host[pos:]


def counters(line: bytes) -> list[int]:
    """One "cpuN ..." line's 10 counters (missing or malformed ones: 0 or skipped)."""
    values = line.split()[1:NFIELDS + 1]
    try:
        nums = list(map(int, values))
    except ValueError:
        nums = [int(v) for v in values if v.isdigit()]
    return nums + [0] * (NFIELDS - len(nums)) if len(nums) < NFIELDS else nums


def parse_stat(host: bytes) -> tuple[dict[int, list[int]], bytes]:
    """Host /proc/stat -> ({cpu: 10 counters}, the rest of the file as it is)."""
    lines, rest = split_stat(host)
    return {cpu: counters(line) for cpu, line in lines.items()}, rest


def _wall(fields: list[int]) -> int:
    # guest and guest_nice are already counted in user and nice
    return sum(fields[:8])


def render_stat(cpus: CpuSet | None, usage: CpuUsage | None, host: bytes, clk_tck: int) -> bytes:
    if cpus is None and usage is None:
        return host
    host_lines, rest = split_stat(host)
    shown = [c for c in (cpus.cpus if cpus else sorted(host_lines)) if c in host_lines]
    host_cpus = {c: counters(host_lines[c]) for c in shown}   # only the lines shown
    lines: list[list[int]] = []
    if usage is None:
        lines = [host_cpus[c] for c in shown]
    elif usage.per_cpu is not None and not (cpus and cpus.limited_by_quota):
        for c in shown:
            h = host_cpus[c]
            user_ns, sys_ns = usage.per_cpu.get(c, (0, 0))
            user, system = user_ns * clk_tck // 1_000_000_000, sys_ns * clk_tck // 1_000_000_000
            others = _wall(h) - h[IDLE] - user - system
            lines.append([user, 0, system, h[IDLE] + max(0, others), 0, 0, 0, 0, 0, 0])
    else:
        n = max(1, len(shown))
        user = usage.user_ns * clk_tck // 1_000_000_000 // n
        system = usage.system_ns * clk_tck // 1_000_000_000 // n
        for c in shown:
            idle = max(0, _wall(host_cpus[c]) - user - system)
            lines.append([user, 0, system, idle, 0, 0, 0, 0, 0, 0])
    total = [sum(col) for col in zip(*lines)] if lines else [0] * NFIELDS
    out = ["cpu  " + " ".join(map(str, total))]
    out.extend(f"cpu{i} " + " ".join(map(str, f)) for i, f in enumerate(lines))
    out.append("")
    return "\n".join(out).encode() + rest
