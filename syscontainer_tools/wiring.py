"""Will the engine run our hooks for this container?  Never promise otherwise.

Saved resources come back at the next start only if ``syscontainer-hooks``
runs at prestart, and physical NICs go back to the host only if it runs at
poststop.  What wires a container depends on its engine:

* runc, crun, iSulad, podman (and CRI-O): OCI hooks in the container's
  ``config.json`` -- put there by ``install-hooks --bundle``, isula's
  ``--hook-spec``, or podman's ``hooks.d`` -- so the spec the engine keeps
  for the container says it;
* docker and containerd take no hooks: the container's runtime must be the
  wrapper ``syscontainer-runc``, which adds them at every create.  A running
  container shows them in its bundle's ``config.json``; a stopped one is
  judged by the runtime it is registered with (docker's ``HostConfig.Runtime``
  as ``docker info`` resolves it, containerd's runc ``BinaryName``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .container import Container
from .errors import ToolError
from .log import get_logger

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

log = get_logger(__name__)

HOOK = "syscontainer-hooks"
WRAPPER = "syscontainer-runc"
HOOKS_DIRS = ("/usr/share/containers/oci/hooks.d", "/etc/containers/oci/hooks.d")


@dataclass(frozen=True)
class Wiring:
    prestart: bool          # saved resources are re-applied when it starts
    poststop: bool          # physical NICs go back to the host when it stops
    how: str                # what wires it, or what is missing
    fix: str | None = None  # the command that wires it, when it is not


def hooked_stages(spec: dict[str, Any]) -> set[str]:
    """The OCI hook stages of ``spec`` that run syscontainer-hooks."""
    hooks = spec.get("hooks")
    out = set()
    for stage, entries in (hooks.items() if isinstance(hooks, dict) else ()):
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and os.path.basename(str(entry.get("path", ""))) == HOOK:
                out.add(stage)
    return out


def runs_poststop(container: Container) -> bool:
    """Whether syscontainer-hooks' poststop will run when ``container`` stops."""
    return of(container).poststop


def of(container: Container) -> Wiring:
    if container.engine is None:  # built from the OCI state a hook was given
        return Wiring(True, True, "called from an OCI hook")
    stages = hooked_stages(container.spec)
    if {"prestart", "poststop"} <= stages:
        return Wiring(True, True, "OCI hooks in its config.json")
    if container.engine in ("docker", "containerd"):
        return _by_runtime(container)
    if container.engine == "podman" and _podman_hooks_d():
        return Wiring(True, True, "podman hooks.d")
    return Wiring("prestart" in stages, "poststop" in stages,
                  f"its OCI config has no {HOOK} prestart and poststop hooks",
                  _hook_fix(container))


def _by_runtime(container: Container) -> Wiring:
    runtime = container.runtime or ""
    if container.engine == "docker" and runtime:
        try:
            from .engines import docker

            runtime = docker.runtime_paths().get(runtime, runtime)
        except ToolError as err:
            log.debug("docker info: %s", err)
    if os.path.basename(runtime) == WRAPPER:
        return Wiring(True, True, f"its runtime is {WRAPPER}")
    if container.engine == "docker":
        fix = (f"syscontainer-tools install-hooks --engine docker, restart dockerd, and "
               f"create the container with docker run --runtime {WRAPPER}")
    else:
        fix = (f"syscontainer-tools install-hooks --engine containerd (runc BinaryName), or "
               f"ctr run --runc-binary {WRAPPER}; then create the container again")
    return Wiring(False, False, f"{container.engine} runs no OCI hooks and its runtime is "
                                f"{runtime or 'runc'}, not {WRAPPER}", fix)


def _hook_fix(container: Container) -> str:
    if container.engine in ("runc", "crun"):
        return (f"syscontainer-tools install-hooks --engine {container.engine} "
                f"--bundle {container.bundle or 'BUNDLE'}")
    if container.engine == "isula":
        return ("syscontainer-tools install-hooks --engine isula, then create the container "
                "with isula run --hook-spec /var/lib/isulad/hooks/hookspec.json")
    if container.engine == "podman":
        return "syscontainer-tools install-hooks --engine podman"
    return "syscontainer-tools install-hooks"


def _podman_hooks_d() -> bool:
    for directory in HOOKS_DIRS:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            try:
                with open(os.path.join(directory, name), encoding="utf-8") as f:
                    hook = json.load(f).get("hook") or {}
            except (OSError, ValueError, AttributeError):
                continue
            if os.path.basename(str(hook.get("path", ""))) == HOOK:
                return True
    return False
