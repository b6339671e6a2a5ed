"""Where a containerd-managed container's OCI bundle is, asked of the system.

containerd's runc shim (v2) runs in the task's bundle directory and is the
parent (subreaper) of the container's init.  So for a running container of
docker, containerd, nerdctl or Kubernetes the bundle -- and its config.json --
is the shim's working directory, wherever the engine keeps its state
(``--exec-root``, ``state =``), with no path assumed.
"""

from __future__ import annotations

import os


def parent_pid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("PPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def task_bundle(pid: int, cid: str) -> str | None:
    """The bundle directory of container ``cid`` whose init is ``pid``, or None.

    Accepted only when it is named after the container and holds a
    config.json, as containerd's task directories are."""
    if pid <= 0:
        return None
    ppid = parent_pid(pid)
    if ppid <= 1:
        return None
    try:
        cwd = os.readlink(f"/proc/{ppid}/cwd")
    except OSError:
        return None
    if os.path.basename(cwd) == cid and os.path.isfile(os.path.join(cwd, "config.json")):
        return cwd
    return None
