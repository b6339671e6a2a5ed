"""The daemon stopping for good takes its view out of every mount namespace.

``systemctl stop`` must leave no dead lxcfs mount in any container: while the
daemon still answers, every mount of its superblock on one of the view's
targets in another mount namespace is unmounted (the container then sees its
own /proc values; ``remount all`` brings the view back).  The namespaces are
found by scanning /proc (one pid per mount namespace), not through an
engine: the daemon does not know which engines run the containers.
"""

from __future__ import annotations

import logging
import os

from syscontainer_tools import mountinfo, ns, syscalls
from syscontainer_tools.errors import ToolError

from .viewmounts import FILE_TARGETS, FSTYPE, Plan, _procfd, apply_plan, target_paths

log = logging.getLogger(__name__)



def namespaces_with(dev: int, directory: str, proc: str = "/proc") -> dict[int, int]:
    """{one pid per mount namespace: how many of its view targets are mounts of
    the lxcfs superblock ``dev``}, the caller's own namespace left out."""
    own = os.stat(f"{proc}/self/ns/mnt").st_ino
    seen: set[int] = {own}
    out: dict[int, int] = {}
    places = set(target_paths(directory))
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            mnt_ns = os.stat(f"{proc}/{name}/ns/mnt").st_ino
            if mnt_ns in seen:
                continue
            seen.add(mnt_ns)
            hits = [e for e in mountinfo.read(int(name))
                    if e.fstype == FSTYPE and e.dev == dev and e.point in places]
        except OSError:
            continue
        if hits:
            out[int(name)] = len(hits)
    return out


def umount_everywhere(dev: int, directory: str) -> list[tuple[int, str]]:
    """Unmount the lxcfs superblock ``dev`` from the view's targets in every
    other mount namespace (containers then see their own /proc again).
    Returns (pid, failure) for the namespaces that could not be cleaned."""
    failures: list[tuple[int, str]] = []
    for pid in namespaces_with(dev, directory):
        try:
            pidfd = syscalls.pidfd_open(pid)
        except OSError:
            continue   # gone meanwhile
        procfd = _procfd()
        try:
            items = [(path, False, -1) for _, path in FILE_TARGETS] + [(directory, True, -1)]
            plan = Plan(procfd=procfd, live_dev=0, lxcfs_devs=frozenset({dev}), items=items,
                        umount_only=True)
            report = ns.run_in(pidfd, pid, apply_plan, plan, flags=ns.MNT)
            log.info("pid %d: unmounted %s", pid, ", ".join(report.unmounted) or "nothing")
        except (OSError, ToolError) as err:
            failures.append((pid, str(err)))
        finally:
            os.close(procfd)
            os.close(pidfd)
    return failures
