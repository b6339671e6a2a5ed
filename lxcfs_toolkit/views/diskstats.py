"""/proc/diskstats and /proc/partitions limited to the devices a cgroup has used."""

from __future__ import annotations

from lxcfs_toolkit.views.inputs import DiskCounters, IoStats

_ORDER = (
    "reads", "read_merged", "read_sectors", "read_ms",
    "writes", "write_merged", "write_sectors", "write_ms",
    "in_flight", "io_ms", "weighted_ms",
    "discards", "discard_merged", "discard_sectors", "discard_ms",
)


def device_names(host_diskstats: bytes) -> list[tuple[int, int, str]]:
    out = []
    for line in host_diskstats.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit():
            out.append((int(parts[0]), int(parts[1]), parts[2]))
    return out


def _line(major: int, minor: int, name: str, c: DiskCounters) -> str:
    values = " ".join(str(getattr(c, f)) for f in _ORDER)
    return f"{major:4d} {minor:7d} {name} {values} 0 0\n"


def render_diskstats(io: IoStats | None, host: bytes) -> bytes:
    if io is None:
        return host
    out = []
    for major, minor, name in device_names(host):
        counters = io.get((major, minor))
        if counters is not None and counters.any():
            out.append(_line(major, minor, name, counters))
    return "".join(out).encode()


def render_partitions(io: IoStats | None, host: bytes) -> bytes:
    if io is None:
        return host
    used = {dev for dev, c in io.items() if c.any()}
    lines = host.decode("ascii", "replace").splitlines(keepends=True)
    out = lines[:2]  # "major minor  #blocks  name" and the blank line
    for line in lines[2:]:
        parts = line.split()
        if len(parts) == 4 and parts[0].isdigit() and parts[1].isdigit() and (int(parts[0]), int(parts[1])) in used:
            out.append(line)
    return "".join(out).encode()
