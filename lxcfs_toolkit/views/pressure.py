"""/proc/pressure/{cpu,io,memory}: the pressure stall information of the reader's cgroup.

cgroup v2 keeps ``cpu.pressure``, ``io.pressure`` and ``memory.pressure`` in
every non-root cgroup, in the same format as the host's /proc/pressure/*
(``some avg10=... avg60=... avg300=... total=...`` and a ``full`` line), as
lxcfs 7.0 serves them.  A reader in the root cgroup, or one with no v2
cgroup (a cgroup v1 host), gets the host's file.
"""

from __future__ import annotations

RESOURCES = ("cpu", "io", "memory")


def render_pressure(cgroup_pressure: str | None, host: bytes) -> bytes:
    if not cgroup_pressure or not cgroup_pressure.startswith("some "):
        return host
    text = cgroup_pressure if cgroup_pressure.endswith("\n") else cgroup_pressure + "\n"
    return text.encode()
