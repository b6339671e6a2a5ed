"""podman: ``podman container inspect`` names the OCI config (OCIConfigPath)."""

from __future__ import annotations

import os
from typing import Any

from ..container import Container
from . import Candidate, Engine, dockerlike


def list_argv(engine: Engine, runtime_root: str | None) -> list[str]:
    return dockerlike.list_argv(engine)


def parse_list(engine: Engine, stdout: str) -> list[Candidate]:
    return dockerlike.parse_list(engine, stdout)


def _bundles(data: dict[str, Any]) -> list[str]:
    config = data.get("OCIConfigPath")
    return [os.path.dirname(config)] if config else []


def inspect(candidate: Candidate, runtime_root: str | None) -> Container:
    data = dockerlike.run_inspect(["podman", "container", "inspect", candidate.id], candidate.id)
    return dockerlike.container_from_inspect(Engine.PODMAN, data, _bundles)
