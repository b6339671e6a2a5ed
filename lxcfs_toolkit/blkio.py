"""Block I/O counters of a cgroup: v2 io.stat and the v1 blkio tables, parsed."""

from __future__ import annotations

from collections.abc import Mapping

from lxcfs_toolkit.views.inputs import DiskCounters


def parse_io_stat(text: str) -> dict[tuple[int, int], DiskCounters]:
    """v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N"."""
    out: dict[tuple[int, int], DiskCounters] = {}
    for line in text.splitlines():
        parts = line.split()
        dev = _devno(parts[0]) if parts else None
        if dev is None:
            continue
        kv: dict[str, int] = {}
        for item in parts[1:]:
            key, _, value = item.partition("=")
            if value.isdigit():
                kv[key] = int(value)
        out[dev] = DiskCounters(
            reads=kv.get("rios", 0),
            read_sectors=kv.get("rbytes", 0) // 512,
            writes=kv.get("wios", 0),
            write_sectors=kv.get("wbytes", 0) // 512,
            discards=kv.get("dios", 0),
            discard_sectors=kv.get("dbytes", 0) // 512,
        )
    return out


def _devno(text: str) -> tuple[int, int] | None:
    major, sep, minor = text.partition(":")
    if not sep or not major.isdigit() or not minor.isdigit():
        return None
    return int(major), int(minor)


def parse_blkio(text: str) -> dict[tuple[int, int], dict[str, int]]:
    """v1 blkio files: "MAJ:MIN Op value" lines (Op: Read, Write, Discard, Total...)."""
    out: dict[tuple[int, int], dict[str, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].isdigit():
            continue
        dev = _devno(parts[0])
        if dev is not None:
            out.setdefault(dev, {})[parts[1]] = int(parts[2])
    return out


def blkio_counters(
    serviced: Mapping[tuple[int, int], Mapping[str, int]],
    service_bytes: Mapping[tuple[int, int], Mapping[str, int]],
    io_merged: Mapping[tuple[int, int], Mapping[str, int]] | None = None,
    io_wait_time: Mapping[tuple[int, int], Mapping[str, int]] | None = None,
    io_service_time: Mapping[tuple[int, int], Mapping[str, int]] | None = None,
) -> dict[tuple[int, int], DiskCounters]:
    """Combine v1 blkio tables into per-device counters (times in ns -> ms)."""
    empty: dict[str, int] = {}
    merged, wait, svc = io_merged or {}, io_wait_time or {}, io_service_time or {}
    out: dict[tuple[int, int], DiskCounters] = {}
    for dev in set(serviced) | set(service_bytes):
        n, b = serviced.get(dev, empty), service_bytes.get(dev, empty)
        mg, w, s = merged.get(dev, empty), wait.get(dev, empty), svc.get(dev, empty)

        def ms(op: str, w: Mapping[str, int] = w, s: Mapping[str, int] = s) -> int:
            return (s.get(op, 0) + w.get(op, 0)) // 1_000_000

        out[dev] = DiskCounters(
            reads=n.get("Read", 0),
            read_merged=mg.get("Read", 0),
            read_sectors=b.get("Read", 0) // 512,
            read_ms=ms("Read"),
            writes=n.get("Write", 0),
            write_merged=mg.get("Write", 0),
            write_sectors=b.get("Write", 0) // 512,
            write_ms=ms("Write"),
            io_ms=s.get("Total", 0) // 1_000_000,
            discards=n.get("Discard", 0),
            discard_merged=mg.get("Discard", 0),
            discard_sectors=b.get("Discard", 0) // 512,
            discard_ms=ms("Discard"),
        )
    return out
