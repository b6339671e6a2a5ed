"""Where the tests look for a container's cgroup v2 directory."""

from __future__ import annotations

from pathlib import Path

from syscontainer_tools import cgroup


def v2_dir(pid: int) -> Path:
    """Process ``pid``'s own v2 cgroup (its ``0::`` line in /proc/PID/cgroup)
    under the host's v2 mount: /sys/fs/cgroup on pure v2, the hybrid
    layout's /sys/fs/cgroup/unified."""
    mount = cgroup.host_mounts().v2
    assert mount, "the host has no cgroup v2 mount"
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return Path(mount) / line[3:].lstrip("/")
    raise AssertionError(f"process {pid} has no v2 cgroup")
