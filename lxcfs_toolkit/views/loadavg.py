"""/proc/loadavg of a container's own tasks."""

from __future__ import annotations

from lxcfs_toolkit.views.inputs import Load


def render_loadavg(load: Load | None, host: bytes) -> bytes:
    if load is None:
        return host
    return (
        f"{load.avg1:.2f} {load.avg5:.2f} {load.avg15:.2f} "
        f"{load.running}/{load.total} {load.last_pid}\n"
    ).encode()
