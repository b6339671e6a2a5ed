"""Read kernel pseudo files (procfs, cgroupfs) cheaply and without surprises.

``os.open``/``os.read`` rather than ``open()``: no buffered-reader object,
no encoding layer, and one code path for every errno the kernel can return
from a pseudo file (ENOENT for a vanished cgroup, ENODEV/EOPNOTSUPP for a
controller file that is present but disabled, ESRCH for a dead process).
"""

from __future__ import annotations

import os

_FLAGS = os.O_RDONLY | os.O_CLOEXEC
_CHUNK = 65536


def read_bytes(path: str) -> bytes | None:
    """The whole file, or None when it cannot be opened or read."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError:
        return None
    try:
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:
            return data
        parts = [data]
        while True:
            more = os.read(fd, _CHUNK)
            if not more:
                return b"".join(parts)
            parts.append(more)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_text(path: str) -> str | None:
    data = read_bytes(path)
    return None if data is None else data.decode("utf-8", "replace")
