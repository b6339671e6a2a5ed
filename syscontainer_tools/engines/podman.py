"""podman: ``podman container inspect`` names the OCI config (OCIConfigPath)."""

from __future__ import annotations

import os
from typing import Any

from ..container import Container
from . import Candidate, Engine, dockerlike

# the listing is the same for every docker-like CLI
list_argv = dockerlike.list_argv
parse_list = dockerlike.parse_list


def _bundles(data: dict[str, Any]) -> list[str]:
    config = data.get("OCIConfigPath")
    return [os.path.dirname(config)] if config else []


def inspect(candidate: Candidate, runtime_root: str | None) -> Container:
    data = dockerlike.run_inspect(["podman", "container", "inspect", candidate.id], candidate.id)
    return dockerlike.container_from_inspect(Engine.PODMAN, data, _bundles)
