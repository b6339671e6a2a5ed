"""/proc/swaps: one virtual swap device sized by the cgroup's swap limit."""

from __future__ import annotations

from lxcfs_toolkit.views.inputs import Memory
from lxcfs_toolkit.views.meminfo import parse_meminfo, swap_kb

HEADER = "Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n"


def render_swaps(mem: Memory | None, host_meminfo: bytes, host_swaps: bytes) -> bytes:
    if mem is None:
        return host_swaps
    total, used = swap_kb(mem, parse_meminfo(host_meminfo).get("SwapTotal", 0))
    text = HEADER
    if total > 0:
        text += f"none{' ' * 36}virtual\t\t{total}\t{used}\t0\n"
    return text.encode()
