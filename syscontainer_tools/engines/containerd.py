"""containerd, through its own CLI ``ctr``.

Containers live in namespaces: ``k8s.io`` (Kubernetes' CRI) and ``default``
(``ctr``, nerdctl) are searched unless ``CONTAINERD_NAMESPACE`` names one;
``CONTAINERD_ADDRESS`` picks the daemon as it does for ``ctr``.  containerd
keeps no names, so a container's name is its id.  The record is
``ctr containers info`` (the stored OCI spec and the runtime with its
options) and the task's pid and status from ``ctr tasks ls``; for a running
task the spec is the bundle's config.json as the runtime got it (see
``shim.task_bundle``).
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from .. import command
from ..container import Container, load_spec, start_time_or_none
from ..errors import NotFound, ToolError
from . import Candidate, Engine, shim

DEFAULT_ADDRESS = "/run/containerd/containerd.sock"
DEFAULT_NAMESPACES = ("k8s.io", "default")
TASK_STATUS = {"RUNNING": "running", "CREATED": "created", "PAUSED": "paused",
               "PAUSING": "paused", "STOPPED": "stopped"}


def address() -> str:
    return os.environ.get("CONTAINERD_ADDRESS") or DEFAULT_ADDRESS


def namespaces() -> tuple[str, ...]:
    namespace = os.environ.get("CONTAINERD_NAMESPACE")
    return (namespace,) if namespace else DEFAULT_NAMESPACES


def ctr(namespace: str, *args: str) -> list[str]:
    # without a connect timeout ctr waits 10 s for a socket that never answers
    return ["ctr", "--connect-timeout", "5s", "-n", namespace, *args]


def list_argvs(engine: Engine, runtime_root: str | None, auto: bool) -> list[list[str]]:
    if not os.path.exists(address()):
        if auto:
            return []
        raise ToolError(f"containerd is not listening at {address()}",
                        hint="start containerd or set CONTAINERD_ADDRESS")
    return [ctr(namespace, "containers", "ls", "-q") for namespace in namespaces()]


def parse_list(engine: Engine, stdout: str, argv: list[str]) -> list[Candidate]:
    namespace = argv[argv.index("-n") + 1]
    return [Candidate(line.strip(), line.strip(), engine, namespace)
            for line in stdout.splitlines() if line.strip()]


def parse_tasks(stdout: str) -> dict[str, tuple[int, str]]:
    """``ctr tasks ls``: {id: (pid, status)} (header TASK PID STATUS)."""
    out = {}
    for line in stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[1].isdigit():
            out[parts[0]] = (int(parts[1]), TASK_STATUS.get(parts[2].upper(), parts[2].lower()))
    return out


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def binary_name(runtime: dict[str, Any]) -> str | None:
    """BinaryName (field 6) of the runc shim's options, which ``ctr`` prints
    as base64 protobuf (``containerd.runc.v1.Options``); None if unset."""
    options = runtime.get("Options") or {}
    if not str(options.get("type_url", "")).endswith("runc.v1.Options") or not options.get("value"):
        return None
    try:
        data = base64.b64decode(options["value"])
        i = 0
        while i < len(data):
            key, i = _varint(data, i)
            field, wire = key >> 3, key & 7
            if wire == 0:
                _, i = _varint(data, i)
            elif wire == 2:
                size, i = _varint(data, i)
                if field == 6:
                    return data[i:i + size].decode()
                i += size
            else:
                return None
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    return None


def _json(argv: list[str], ref: str) -> dict[str, Any]:
    proc = command.run(argv, check=False)
    if proc.returncode != 0:
        msg = command.last_line(proc.stderr)
        if "not found" in msg.lower():
            raise NotFound(f"container {ref!r} not found in containerd")
        raise ToolError(f"{' '.join(argv)} failed: {msg}")
    try:
        data = json.loads(proc.stdout)
    except ValueError as err:
        raise ToolError(f"{' '.join(argv)} printed no JSON: {err}") from None
    if not isinstance(data, dict):
        raise ToolError(f"{' '.join(argv)} printed an unexpected record")
    return data


def inspect(candidate: Candidate, runtime_root: str | None) -> Container:
    namespace = candidate.namespace or namespaces()[0]
    info = _json(ctr(namespace, "containers", "info", candidate.id), candidate.id)
    tasks = parse_tasks(command.run(ctr(namespace, "tasks", "ls")).stdout)
    pid, status = tasks.get(candidate.id, (0, "stopped"))
    if status == "stopped":
        pid = 0
    bundle = shim.task_bundle(pid, candidate.id)
    spec = load_spec(bundle) if bundle else (info.get("Spec") or {})
    rootfs = (os.path.join(bundle, spec.get("root", {}).get("path", "rootfs"))
              if bundle else None)
    runtime = info.get("Runtime") or {}
    return Container(id=candidate.id, name=candidate.id, engine=Engine.CONTAINERD,
                     status=status, pid=pid, bundle=bundle, rootfs=rootfs, spec=spec,
                     pid_start=start_time_or_none(pid),
                     runtime=binary_name(runtime) or str(runtime.get("Name") or "") or None)
