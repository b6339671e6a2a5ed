"""runc's and crun's own state files, read the way their ``list``/``state`` read them.

Spawning ``runc list`` and ``runc state`` costs two Go start-ups (tens of ms)
on every command; both only read a directory under the runtime's root:

* runc: ``<root>/<id>/state.json`` (``init_process_pid``,
  ``init_process_start``, ``cgroup_paths``, ``config.rootfs``, the bundle as
  the ``bundle=`` label in ``config.labels``) and ``<root>/<id>/exec.fifo``
  while the container is created but not started;
* crun: ``<root>/<id>/status`` (``pid``, ``process-start-time``,
  ``cgroup-path``, ``rootfs``, ``bundle``) and the same ``exec.fifo``.

The status is derived as each runtime derives it: stopped when the recorded
pid is gone, a zombie, or has another start time than the recorded one;
created while ``exec.fifo`` exists; paused when the container's freezer says
frozen; running otherwise.  The pid is 0 when stopped, as the CLIs print it.

Every reader returns None where the layout is not the one described here
(a file missing, a field of another type, a root we cannot read), and the
caller then asks the runtime's CLI instead.
"""

from __future__ import annotations

import os
import re
import time

from ..errors import NotFound
from ..quickjson import loads as json_loads  # json.loads without importing json

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

# runc's own rule for container ids (libcontainer validateID)
_RUNC_ID = re.compile(r"^[\w+\-.]+$")
CGROUP_ROOT = "/sys/fs/cgroup"


def default_root(runtime: str) -> str | None:
    """The root the CLI would use without ``--root``; None when not known here."""
    if runtime == "crun":
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        return os.path.join(xdg, "crun") if xdg else "/run/crun"
    # runc honours XDG_RUNTIME_DIR only for rootless callers: leave that to it
    return "/run/runc" if os.geteuid() == 0 else None


def list_ids(runtime: str, root: str) -> list[str] | None:
    """Container ids under ``root`` (sorted), as ``runc list``/``crun list`` find them."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []  # both CLIs list nothing (and create the root)
    except OSError:
        return None
    out = []
    for entry in entries:
        name = entry.name
        if runtime == "crun":
            if name.startswith(".") or not os.path.exists(os.path.join(root, name, "status")):
                continue
        else:
            try:
                if not entry.is_dir(follow_symlinks=False):
                    continue
            except OSError:
                continue
            if name in (".", "..") or not _RUNC_ID.match(name) \
                    or not os.path.isfile(os.path.join(root, name, "state.json")):
                continue  # runc list skips what it cannot load
        out.append(name)
    return sorted(out)


def read_state(runtime: str, root: str, cid: str) -> dict[str, Any] | None:
    """``{"id", "pid", "status", "bundle", "rootfs"}`` as ``<runtime> state`` prints them.

    NotFound when the runtime has no such container; None when the state
    directory does not look as described above (the CLI must decide)."""
    if cid in (".", "..") or "/" in cid or not cid:
        return None
    cdir = os.path.join(root, cid)
    if not os.path.isdir(cdir):
        raise NotFound(f"container {cid!r} not found in {runtime}")
    try:
        if runtime == "crun":
            return _crun(cdir, cid)
        return _runc(cdir, cid)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _load(path: str) -> dict[str, Any]:
    with open(path, "rb") as f:
        data = json_loads(f.read())
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    return int(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")
    return value


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of ``pid``; None when there is no such process."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def _alive(pid: int, start: int) -> bool:
    """The recorded init is still that process and not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[1] == start and st[0] not in ("Z", "X")


def _runc(cdir: str, cid: str) -> dict[str, Any]:
    st = _load(os.path.join(cdir, "state.json"))
    pid = _int(st["init_process_pid"])
    start = _int(st["init_process_start"])
    config = st["config"]
    paths = st.get("cgroup_paths") or {}
    if not isinstance(paths, dict):
        raise TypeError("cgroup_paths")
    # runc asks the freezer first (refreshState), then the process
    if _runc_frozen(paths):
        status = "paused"
    elif not _alive(pid, start):
        status = "stopped"
    elif os.path.exists(os.path.join(cdir, "exec.fifo")):
        status = "created"
    else:
        status = "running"
    bundle = ""
    for label in config.get("labels") or []:
        key, _, value = _str(label).partition("=")
        if key == "bundle":
            bundle = value
    return {"id": _str(st.get("id", cid)), "pid": 0 if status == "stopped" else pid,
            "status": status, "bundle": bundle, "rootfs": _str(config.get("rootfs", ""))}


def _runc_frozen(paths: dict[str, Any]) -> bool:
    """runc's GetFreezerState: v1 freezer when there is one, else v2 cgroup.freeze."""
    if "freezer" in paths:
        path = _str(paths["freezer"])
        for _ in range(1000):
            state = _read_text(os.path.join(path, "freezer.state"))
            if state is None:
                return False
            if state == "FREEZING":  # runc waits for a stable state
                time.sleep(0.001)
                continue
            if state != "FROZEN":
                return False
            # frozen through an ancestor only is not paused
            return _read_text(os.path.join(path, "freezer.self_freezing")) != "0"
        return False
    if "" in paths:
        return _read_text(os.path.join(_str(paths[""]), "cgroup.freeze")) == "1"
    return False


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except (FileNotFoundError, OSError):
        return None


def _crun(cdir: str, cid: str) -> dict[str, Any]:
    st = _load(os.path.join(cdir, "status"))
    pid = _int(st["pid"])
    start = st.get("process-start-time", 0)
    start = _int(start) if start is not None else 0
    cgroup_path = _str(st["cgroup-path"])
    running = _crun_running(pid, start)
    status = "stopped"
    if running:
        if os.path.exists(os.path.join(cdir, "exec.fifo")):
            status = "created"
        else:
            frozen = _crun_frozen(cgroup_path)
            status = "stopped" if frozen is None else "paused" if frozen else "running"
    return {"id": cid, "pid": pid if running else 0, "status": status,
            "bundle": _str(st["bundle"]), "rootfs": _str(st["rootfs"])}


def _crun_running(pid: int, start: int) -> bool:
    """libcrun_is_container_running: kill(pid, 0), then the start time if recorded."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not start:
        return True
    st = proc_stat(pid)
    if st is None:
        return False
    return st[1] == start and st[0] not in ("Z", "X")


def _crun_frozen(cgroup_path: str) -> bool | None:
    """libcrun_cgroup_is_container_paused; None when the cgroup is gone (crun
    then says stopped)."""
    if not cgroup_path:
        return False
    rel = cgroup_path.lstrip("/")
    unified = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))
    if unified:
        path = os.path.join(CGROUP_ROOT, rel, "cgroup.freeze")
        want = "1"
    else:
        path = os.path.join(CGROUP_ROOT, "freezer", rel, "freezer.state")
        want = "FROZEN"
    if not os.path.exists(os.path.dirname(path)):
        return None
    return _read_text(path) == want
