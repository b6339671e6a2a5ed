"""docker (not run for real here: no Docker daemon on the test machines).

Bundle: containerd's shim v2 task directory, which holds the OCI config.json.
"""

from __future__ import annotations

from typing import Any

from ..container import Container
from . import Candidate, Engine, dockerlike

TASK_DIRS = ("/run/containerd/io.containerd.runtime.v2.task/moby",
             "/var/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby")


def list_argv(engine: Engine, runtime_root: str | None) -> list[str]:
    return dockerlike.list_argv(engine)


def parse_list(engine: Engine, stdout: str) -> list[Candidate]:
    return dockerlike.parse_list(engine, stdout)


def _bundles(data: dict[str, Any]) -> list[str]:
    return [f"{d}/{data.get('Id')}" for d in TASK_DIRS]


def inspect(candidate: Candidate, runtime_root: str | None) -> Container:
    data = dockerlike.run_inspect(["docker", "inspect", "--type", "container", candidate.id],
                                  candidate.id)
    return dockerlike.container_from_inspect(Engine.DOCKER, data, _bundles)
