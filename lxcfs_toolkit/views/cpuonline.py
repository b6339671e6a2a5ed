"""/sys/devices/system/cpu/online: the shown CPUs, numbered as in cpuinfo and stat."""

from __future__ import annotations

from lxcfs_toolkit.views.inputs import CpuSet


def render_cpu_online(cpus: CpuSet | None, host: bytes) -> bytes:
    if cpus is None:
        return host
    n = len(cpus.cpus)
    return b"0\n" if n <= 1 else f"0-{n - 1}\n".encode()
