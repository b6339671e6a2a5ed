"""Which containers are wired for lxcfs: what ``remount all`` puts the view back into.

A running container counts as wired for the lxcfs directory D when any of:

* lxcfs-hook ran for it (its prestart) or ``remount CONTAINER`` mounted the
  view: both leave a record ``<RUN_DIR>/wired/<id>.json`` with the
  container's init pid and that process's start time -- a record whose
  process is gone (the container stopped, or restarted under a new pid) is
  pruned, it does not wire anything;
* its OCI config names lxcfs-hook among its prestart/createRuntime hooks
  (and, if the hook has ``--lxcfs-dir``, names D): containers started before
  records existed, or while /run was wiped;
* it has lxcfs mounts on the view's targets, live or stale.

``umount`` does not unwire: ``umount all`` then ``remount all`` puts every
view back.  A container started without the hook and never remounted by
name is left alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any

from syscontainer_tools import syscalls

log = logging.getLogger(__name__)

HOOK_NAMES = ("lxcfs-hook", "lxcfs_toolkit.hook")
DEFAULT_DIR = "/var/lib/lxc/lxcfs"


def record_dir() -> str:
    base = os.environ.get("LXCFS_TOOLKIT_RUN_DIR", "/run/lxcfs-toolkit")
    return os.path.join(base, "wired")


def _safe_id(cid: str) -> bool:
    return bool(cid) and "/" not in cid and cid not in (".", "..") and "\0" not in cid


def record(container: Any, directory: str) -> None:
    """Leave the record that ``container`` is wired for ``directory``."""
    if not _safe_id(container.id):
        return
    path = os.path.join(record_dir(), f"{container.id}.json")
    data = {"version": 1, "id": container.id, "pid": container.pid,
            "start_time": syscalls.proc_start_time(container.pid), "directory": directory}
    os.makedirs(record_dir(), mode=0o755, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def recorded(directory: str) -> set[str]:
    """Ids of the containers recorded as wired for ``directory`` whose init still runs."""
    out: set[str] = set()
    try:
        names = os.listdir(record_dir())
    except FileNotFoundError:
        return out
    for name in names:
        if not name.endswith(".json"):
            continue
        path = os.path.join(record_dir(), name)
        try:
            with open(path) as f:
                data = json.load(f)
            alive = syscalls.proc_start_time(int(data["pid"])) == int(data["start_time"])
        except (OSError, ValueError, KeyError, TypeError):
            alive = False
            data = {}
        if not alive:
            with contextlib.suppress(OSError):
                os.unlink(path)
            continue
        if data.get("directory") == directory:
            out.add(str(data["id"]))
    return out


def hooked(spec: dict[str, Any], directory: str) -> bool:
    """Whether an OCI config runs lxcfs-hook for ``directory`` before the container starts."""
    hooks = spec.get("hooks") or {}
    for stage in ("prestart", "createRuntime"):
        for hook in hooks.get(stage) or []:
            if not isinstance(hook, dict):
                continue
            args = [str(a) for a in hook.get("args") or []]
            words = [str(hook.get("path", "")), *args]
            if not any(os.path.basename(w) in HOOK_NAMES or w in HOOK_NAMES for w in words):
                continue
            for i, arg in enumerate(args):
                if arg == "--lxcfs-dir" and i + 1 < len(args):
                    return os.path.normpath(args[i + 1]) == directory
                if arg.startswith("--lxcfs-dir="):
                    return os.path.normpath(arg.split("=", 1)[1]) == directory
            env = dict(str(e).split("=", 1) for e in hook.get("env") or [] if "=" in str(e))
            return os.path.normpath(env.get("LXCFS_DIR") or DEFAULT_DIR) == directory
    return False
