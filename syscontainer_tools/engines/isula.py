"""iSulad's ``isula`` (not run for real here: no iSulad on the test machines).

Follows the documented CLI: ``isula ps -a --no-trunc --format`` and
``isula inspect``, whose JSON has docker's shape.  The OCI config lives in the
engine's per-container directory, which depends on the runtime (lcr or runc).
"""

from __future__ import annotations

from typing import Any

from ..container import Container
from . import Candidate, Engine, dockerlike

ENGINE_DIRS = ("/var/lib/isulad/engines/lcr", "/var/lib/isulad/engines/runc",
               "/var/run/isulad/runc")


def list_argv(engine: Engine, runtime_root: str | None) -> list[str]:
    return dockerlike.list_argv(engine)


def parse_list(engine: Engine, stdout: str) -> list[Candidate]:
    return dockerlike.parse_list(engine, stdout)


def _bundles(data: dict[str, Any]) -> list[str]:
    return [f"{d}/{data.get('Id')}" for d in ENGINE_DIRS]


def inspect(candidate: Candidate, runtime_root: str | None) -> Container:
    data = dockerlike.run_inspect(["isula", "inspect", candidate.id], candidate.id)
    return dockerlike.container_from_inspect(Engine.ISULA, data, _bundles)
