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


# the lines lxcfs computes from the cgroup, in render_meminfo's order
COMPUTED = (
    "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached", "Active",
    "Inactive", "Active(anon)", "Inactive(anon)", "Active(file)", "Inactive(file)",
    "Unevictable", "SwapTotal", "SwapFree", "Dirty", "Writeback", "AnonPages", "Mapped",
    "Shmem", "Slab", "SReclaimable", "SUnreclaim", "AnonHugePages", "ShmemHugePages",
    "ShmemPmdMapped",
)


class _HostLayout:
    """One host meminfo text, parsed once: its values, and a %-template of the
    output in which the computed lines are placeholders (``_line``'s format)."""

    __slots__ = ("host", "values", "template", "order")

    def __init__(self, host: bytes) -> None:
        self.host = host
        self.values = parse_meminfo(host)
        slot = {key: i for i, key in enumerate(COMPUTED)}
        parts: list[str] = []
        order: list[int] = []
        for line in host.decode("ascii", "replace").splitlines(keepends=True):
            key = line.partition(":")[0]
            i = slot.get(key)
            if i is None:
                parts.append(line.replace("%", "%%"))
            else:
                parts.append(f"{key + ':':<15} %8d kB\n")   # _line's format
                order.append(i)
        self.template = "".join(parts)
        self.order = tuple(order)


_last_layout = _HostLayout(b"")


def _layout(host: bytes) -> _HostLayout:
    """The parsed host text; the last one is kept (the daemon shares one host
    text between renderings for a while)."""
    global _last_layout
    layout = _last_layout
    if layout.host is not host and layout.host != host:
        layout = _last_layout = _HostLayout(host)
    return layout


def render_meminfo(mem: Memory | None, host: bytes) -> bytes:
    if mem is None:
        return host
    layout = _layout(host)
    hv = layout.values
    host_total = hv.get("MemTotal", 0)
    total = host_total if mem.limit is None else min(mem.limit // 1024, host_total)
    used = min(mem.usage // 1024, total)
    free = min(total - used, hv.get("MemFree", total))
    st = {name: value // 1024 if value > 0 else 0 for name, value in mem.stat.items()}
    kb = st.get

    cached = kb("file", 0)
    anon = kb("anon", 0) if "anon" in st else max(
        0, kb("active_anon", 0) + kb("inactive_anon", 0) - kb("shmem", 0))
    # MemAvailable >= MemFree, as in the kernel; capped by the host's
    available = max(free, min(total, free + cached, hv.get("MemAvailable", total)))
    swap_total, swap_used = swap_kb(mem, hv.get("SwapTotal", 0))
    active_anon, inactive_anon = kb("active_anon", 0), kb("inactive_anon", 0)
    active_file, inactive_file = kb("active_file", 0), kb("inactive_file", 0)
    values = (  # COMPUTED's order
        total, free, available, 0, cached, kb("swapcached", 0),
        active_anon + active_file, inactive_anon + inactive_file,
        active_anon, inactive_anon, active_file, inactive_file,
        kb("unevictable", 0), swap_total, swap_total - swap_used,
        kb("file_dirty", 0), kb("file_writeback", 0), anon, kb("file_mapped", 0),
        kb("shmem", 0), kb("slab", 0), kb("slab_reclaimable", 0), kb("slab_unreclaimable", 0),
        kb("anon_thp", 0), kb("shmem_thp", 0), 0,
    )
    return (layout.template % tuple([values[i] for i in layout.order])).encode()
