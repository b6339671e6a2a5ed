"""iSulad's ``isula`` (not run for real here: no iSulad on the test machines).

Follows the documented CLI: ``isula ps -a --no-trunc --format`` (iSulad pads
each field to its column's width, so fields are stripped) and ``isula
inspect``, whose JSON has docker's shape; the parsers are tested against
output recorded from iSulad's documentation (tests/data/isula).  The OCI
config lives in the engine's per-container directory, which depends on the
runtime (lcr or runc): the directory the record's own files (ResolvConfPath,
HostsPath, LogPath) are in, else the default engine directories.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from ..container import Container
from . import Candidate, Engine, dockerlike

ENGINE_DIRS = ("/var/lib/isulad/engines/lcr", "/var/lib/isulad/engines/runc",
               "/var/run/isulad/runc")


# the listing is the same for every docker-like CLI
list_argv = dockerlike.list_argv
parse_list = dockerlike.parse_list


def _bundles(data: dict[str, Any]) -> list[str]:
    cid = str(data.get("Id"))
    own = []
    for key in ("ResolvConfPath", "HostsPath", "LogPath"):
        path = str(data.get(key) or "")
        directory = os.path.dirname(path)
        if path.startswith("/") and os.path.basename(directory) == cid and directory not in own:
            own.append(directory)
    return own + [f"{d}/{cid}" for d in ENGINE_DIRS if f"{d}/{cid}" not in own]


def inspect(candidate: Candidate, runtime_root: str | None) -> Container:
    data = dockerlike.run_inspect(["isula", "inspect", candidate.id], candidate.id)
    container = dockerlike.container_from_inspect(Engine.ISULA, data, _bundles)
    runtime = str((data.get("HostConfig") or {}).get("Runtime") or "") or None
    return dataclasses.replace(container, runtime=runtime)
