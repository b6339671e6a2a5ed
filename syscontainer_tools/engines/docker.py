"""docker, through its CLI (run for real against a private dockerd 20.10).

The docker CLI finds its daemon as it always does (``DOCKER_HOST``,
``DOCKER_CONTEXT``, ``DOCKER_CONFIG`` ... are passed through).  The OCI
bundle of a running container is containerd's task directory, found through
the container's shim (``shim.task_bundle``) wherever dockerd's
``--exec-root`` puts it; the default locations are only a fallback.  The
runtime the container runs with is ``HostConfig.Runtime``, a name that
``docker info`` maps to a program (``runtime_paths``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from .. import command
from ..container import Container
from . import Candidate, Engine, dockerlike, shim

TASK_DIRS = ("/run/containerd/io.containerd.runtime.v2.task/moby",
             "/var/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby")


# the listing is the same for every docker-like CLI
list_argv = dockerlike.list_argv
parse_list = dockerlike.parse_list


def _bundles(data: dict[str, Any]) -> list[str]:
    cid = str(data.get("Id"))
    running = bool((data.get("State") or {}).get("Running"))
    found = shim.task_bundle(int((data.get("State") or {}).get("Pid") or 0), cid) if running else None
    return ([found] if found else []) + [f"{d}/{cid}" for d in TASK_DIRS]


def inspect(candidate: Candidate, runtime_root: str | None) -> Container:
    data = dockerlike.run_inspect(["docker", "inspect", "--type", "container", candidate.id],
                                  candidate.id)
    container = dockerlike.container_from_inspect(Engine.DOCKER, data, _bundles)
    runtime = str((data.get("HostConfig") or {}).get("Runtime") or "") or None
    return dataclasses.replace(container, runtime=runtime)


def runtime_paths() -> dict[str, str]:
    """{runtime name: program} as the daemon has them registered."""
    proc = command.run(["docker", "info", "--format", "{{json .Runtimes}}"])
    try:
        data = json.loads(proc.stdout or "{}")
    except ValueError:
        return {}
    return {str(k): str((v or {}).get("path") or k) for k, v in (data or {}).items()}
