"""/proc/uptime since the container's init started.

The second field, like the kernel's, is idle time summed over the CPUs the
container can use: cpus * age - the CPU time its cgroup has consumed.
"""

from __future__ import annotations


def render_uptime(age_s: float, ncpus: int, busy_ns: int | None) -> bytes:
    age = max(0.0, age_s)
    idle = age * max(1, ncpus) - (busy_ns or 0) / 1e9
    return f"{age:.2f} {max(0.0, idle):.2f}\n".encode()
