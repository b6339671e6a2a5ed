"""/proc/meminfo as a memory cgroup sees it.

Lines lxcfs knows how to compute from the cgroup are rewritten; every other
line of the host's file is passed through unchanged, as C lxcfs does. No
value is ever above the host's own, and no subtraction can go below zero.
"""

from __future__ import annotations

from lxcfs_toolkit.views.inputs import Memory


def parse_meminfo(host: bytes) -> dict[str, int]:
    """"Key:   value kB" lines -> {Key: value in kB}."""
    out: dict[str, int] = {}
    for line in host.decode("ascii", "replace").splitlines():
        key, sep, rest = line.partition(":")
        if sep:
            value = rest.split()
            if value and value[0].isdigit():
                out[key] = int(value[0])
    return out


def swap_kb(mem: Memory, host_swap_total: int) -> tuple[int, int]:
    """(SwapTotal, SwapUsed) in kB for the cgroup: capped by the host, never negative."""
    if mem.swap_usage is None:
        return 0, 0  # no swap accounting: the cgroup's swap is unknowable
    total = host_swap_total
    if mem.swap_limit is not None:
        total = min(total, mem.swap_limit // 1024)
    used = mem.swap_usage // 1024
    if mem.swappiness == 0:
        total = min(total, used)  # a cgroup that may not swap has no more swap to offer
    return total, min(used, total)


def _line(key: str, kb: int) -> str:
    return f"{key + ':':<15} {kb:>8} kB\n"


def render_meminfo(mem: Memory | None, host: bytes) -> bytes:
    if mem is None:
        return host
    hv = parse_meminfo(host)
    host_total = hv.get("MemTotal", 0)
    total = host_total if mem.limit is None else min(mem.limit // 1024, host_total)
    used = min(mem.usage // 1024, total)
    free = min(total - used, hv.get("MemFree", total))

    def kb(name: str) -> int:
        return max(0, mem.stat.get(name, 0)) // 1024

    cached = kb("file")
    anon = kb("anon") if "anon" in mem.stat else max(0, kb("active_anon") + kb("inactive_anon") - kb("shmem"))
    # MemAvailable >= MemFree, as in the kernel; capped by the host's
    available = max(free, min(total, free + cached, hv.get("MemAvailable", total)))
    swap_total, swap_used = swap_kb(mem, hv.get("SwapTotal", 0))

    values = {
        "MemTotal": total,
        "MemFree": free,
        "MemAvailable": available,
        "Buffers": 0,
        "Cached": cached,
        "SwapCached": kb("swapcached"),
        "Active": kb("active_anon") + kb("active_file"),
        "Inactive": kb("inactive_anon") + kb("inactive_file"),
        "Active(anon)": kb("active_anon"),
        "Inactive(anon)": kb("inactive_anon"),
        "Active(file)": kb("active_file"),
        "Inactive(file)": kb("inactive_file"),
        "Unevictable": kb("unevictable"),
        "SwapTotal": swap_total,
        "SwapFree": swap_total - swap_used,
        "Dirty": kb("file_dirty"),
        "Writeback": kb("file_writeback"),
        "AnonPages": anon,
        "Mapped": kb("file_mapped"),
        "Shmem": kb("shmem"),
        "Slab": kb("slab"),
        "SReclaimable": kb("slab_reclaimable"),
        "SUnreclaim": kb("slab_unreclaimable"),
        "AnonHugePages": kb("anon_thp"),
        "ShmemHugePages": kb("shmem_thp"),
        "ShmemPmdMapped": 0,
    }
    out = []
    for line in host.decode("ascii", "replace").splitlines(keepends=True):
        key = line.partition(":")[0]
        value = values.get(key)
        out.append(line if value is None else _line(key, value))
    return "".join(out).encode()
