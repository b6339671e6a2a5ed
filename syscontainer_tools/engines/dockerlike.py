"""Shared parsing for engines with a docker-style CLI (isula, docker, podman).

Listing: ``ps -a --no-trunc --format '{{.ID}}\\t{{.Names}}'``.  Record: the
documented ``inspect`` JSON (an array of one object with ``Id``, ``Name``,
``State.{Status,Running,Pid}``, ``GraphDriver.Data.MergedDir``); the OCI spec
from the first of the engine's bundle locations that has a config.json.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from .. import command
from ..container import Container, load_spec, start_time_or_none
from ..errors import NotFound, ToolError
from . import Candidate, Engine

LIST_FORMAT = "{{.ID}}\t{{.Names}}"


def list_argv(engine: Engine, runtime_root: str | None = None) -> list[str]:
    """The listing command of docker, podman and isula (no runtime root)."""
    return [engine.binary, "ps", "-a", "--no-trunc", "--format", LIST_FORMAT]


def parse_list(engine: Engine, stdout: str) -> list[Candidate]:
    out = []
    for line in stdout.splitlines():
        cid, _, names = line.strip().partition("\t")
        cid = cid.strip()          # isula pads every field to its column's width
        if cid.split()[:1] in (["ID"], ["CONTAINER"]):
            continue               # a table header (a "table ..." format prints one)
        if cid:
            # docker lists several names comma-separated; a leading "/" is legacy
            name = names.split(",")[0].strip().lstrip("/") or cid
            out.append(Candidate(cid, name, engine))
    return out


def run_inspect(argv: list[str], ref: str) -> dict[str, Any]:
    proc = command.run(argv, check=False)
    if proc.returncode != 0:
        msg = command.last_line(proc.stderr)
        if "no such" in msg.lower() or "not found" in msg.lower():
            raise NotFound(f"container {ref!r} not found in {argv[0]}")
        raise ToolError(f"{' '.join(argv)} failed: {msg}")
    return parse_inspect(argv, proc.stdout)


def parse_inspect(argv: list[str], stdout: str) -> dict[str, Any]:
    """The one record of an ``inspect`` (a JSON array of one object)."""
    try:
        data = json.loads(stdout)
    except ValueError as err:
        raise ToolError(f"{' '.join(argv)} printed no JSON: {err}") from None
    if isinstance(data, list):
        if len(data) != 1:
            raise ToolError(f"{' '.join(argv)} returned {len(data)} records")
        data = data[0]
    if not isinstance(data, dict):
        raise ToolError(f"{' '.join(argv)} printed an unexpected record")
    return data


def container_from_inspect(engine: Engine, data: dict[str, Any],
                           bundles: Callable[[dict[str, Any]], list[str]]) -> Container:
    state = data.get("State") or {}
    cid = str(data.get("Id") or data.get("ID") or "")
    if not cid:
        raise ToolError(f"{engine.value} inspect record has no Id")
    running = bool(state.get("Running")) or state.get("Status") == "running"
    pid = int(state.get("Pid") or 0) if running else 0
    status = str(state.get("Status") or ("running" if running else "stopped"))
    bundle = next((b for b in bundles(data) if os.path.isfile(os.path.join(b, "config.json"))),
                  None)
    spec = load_spec(bundle) if bundle else {}
    rootfs = (data.get("Rootfs") or (data.get("GraphDriver") or {}).get("Data", {}).get("MergedDir")
              or (os.path.join(bundle, spec.get("root", {}).get("path", "rootfs"))
                  if bundle else None))
    return Container(id=cid, name=str(data.get("Name") or cid).lstrip("/"), engine=engine,
                     status=status, pid=pid, bundle=bundle, rootfs=rootfs, spec=spec,
                     pid_start=start_time_or_none(pid))
