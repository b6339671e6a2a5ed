"""/proc/cpuinfo showing only the container's CPUs, renumbered from 0.

Each shown CPU is presented as its own single-core package (physical id =
its new number, siblings 1, core id 0, cpu cores 1), as openEuler's lxcfs
does, so that tools deriving sockets/cores from these fields agree with the
processor count and with /proc/stat and cpu/online.
"""

from __future__ import annotations

import functools

from lxcfs_toolkit.views.inputs import CpuSet

_REWRITE = {"physical id": None, "siblings": "1", "core id": "0", "cpu cores": "1"}


@functools.lru_cache(maxsize=4)
def split_cpuinfo(host: bytes) -> tuple[str, dict[int, list[str]]]:
    """Host cpuinfo -> (text before the first processor, {cpu: its lines after "processor"})."""
    header: list[str] = []
    blocks: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in host.decode("utf-8", "replace").splitlines(keepends=True):
        key, sep, value = line.partition(":")
        if sep and key.strip() == "processor" and value.strip().isdigit():
            current = blocks.setdefault(int(value), [])
            continue
        if current is None:
            header.append(line)
        else:
            current.append(line)
    return "".join(header), blocks


def _block(lines: list[str], number: int) -> str:
    out = [f"processor\t: {number}\n"]
    for line in lines:
        key, sep, _ = line.partition(":")
        name = key.strip()
        if sep and name in _REWRITE:
            value = _REWRITE[name] or str(number)
            out.append(f"{key}: {value}\n")
        else:
            out.append(line)
    return "".join(out)


def render_cpuinfo(cpus: CpuSet | None, host: bytes) -> bytes:
    if cpus is None:
        return host
    header, blocks = split_cpuinfo(host)
    shown = [c for c in cpus.cpus if c in blocks]
    return (header + "".join(_block(blocks[c], i) for i, c in enumerate(shown))).encode()
