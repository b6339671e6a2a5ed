"""runc and crun: found through their own state files, else their CLI.

Both keep no names, so a container's name is its id.  The listing and the
state are read from the runtime's root directory (``runstate``), as the CLI
itself reads them; where that layout is not the known one, ``runc list`` /
``runc state`` (or crun's) answer instead.  The OCI spec is read from the
bundle's config.json.  runc records its init's start time in its state.json,
which is compared with the live process before anything enters it.
"""

from __future__ import annotations

import os

from .. import command
from ..container import Container, load_spec, start_time_or_none
from ..errors import NotFound, ToolError
from ..quickjson import loads as json_loads  # json.loads without importing json
from . import Candidate, Engine, runstate

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

DEFAULT_ROOTS = {Engine.RUNC: "/run/runc", Engine.CRUN: "/run/crun"}


def _base(engine: Engine, runtime_root: str | None) -> list[str]:
    return [engine.binary] + (["--root", runtime_root] if runtime_root else [])


def list_argv(engine: Engine, runtime_root: str | None) -> list[str]:
    return _base(engine, runtime_root) + ["list", "--format", "json"]


def parse_list(engine: Engine, stdout: str) -> list[Candidate]:
    rows = json_loads(stdout or "null") or []
    return [Candidate(str(r["id"]), str(r["id"]), engine) for r in rows]


def _root(engine: Engine, runtime_root: str | None) -> str | None:
    return runtime_root or runstate.default_root(engine.value)


def list_local(engine: Engine, runtime_root: str | None) -> list[Candidate] | None:
    """The listing without spawning the CLI; None: ask the CLI (``list_argv``)."""
    root = _root(engine, runtime_root)
    ids = runstate.list_ids(engine.value, root) if root else None
    if ids is None:
        return None
    return [Candidate(cid, cid, engine) for cid in ids]


def state(engine: Engine, cid: str, runtime_root: str | None) -> dict[str, Any]:
    """What ``<runtime> state CID`` prints (the fields used here), read from
    the runtime's state directory when its layout is the known one."""
    root = _root(engine, runtime_root)
    if root:
        local = runstate.read_state(engine.value, root, cid)
        if local is not None:
            return local
    return cli_state(engine, cid, runtime_root)


def cli_state(engine: Engine, cid: str, runtime_root: str | None) -> dict[str, Any]:
    argv = _base(engine, runtime_root) + ["state", cid]
    proc = command.run(argv, check=False)
    if proc.returncode != 0:
        msg = command.last_line(proc.stderr)
        if "does not exist" in msg or "not found" in msg.lower():
            raise NotFound(f"container {cid!r} not found in {engine.value}")
        raise ToolError(f"{' '.join(argv)} failed: {msg}")
    data: dict[str, Any] = json_loads(proc.stdout)
    return data


def _recorded_start(engine: Engine, cid: str, runtime_root: str | None) -> int | None:
    """runc's own record of its init's start time (state.json), if readable."""
    if engine is not Engine.RUNC:
        return None
    root = runtime_root or DEFAULT_ROOTS[engine]
    try:
        with open(os.path.join(root, cid, "state.json"), encoding="utf-8") as f:
            return int(json_loads(f.read())["init_process_start"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def inspect(candidate: Candidate, runtime_root: str | None) -> Container:
    engine = candidate.engine
    st = state(engine, candidate.id, runtime_root)
    pid = int(st.get("pid") or 0)
    status = str(st.get("status", "unknown"))
    if status == "stopped":
        pid = 0
    start = start_time_or_none(pid)
    recorded = _recorded_start(engine, candidate.id, runtime_root)
    if pid and recorded is not None and start != recorded:
        # the init died and its pid was reused: the container is not running
        pid, status, start = 0, "stopped", None
    bundle = str(st.get("bundle") or "") or None
    spec = load_spec(bundle) if bundle else {}
    rootfs = st.get("rootfs") or (os.path.join(bundle, spec.get("root", {}).get("path", "rootfs"))
                                  if bundle else None)
    return Container(id=candidate.id, name=candidate.id, engine=engine, status=status,
                     pid=pid, bundle=bundle, rootfs=rootfs, spec=spec, pid_start=start,
                     runtime_root=runtime_root)
