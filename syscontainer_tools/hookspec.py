"""Hook specs for each engine, generated from one description.

The files under hooks/ and hookspec.json in the source tree are these specs
for an install under /usr/bin (a unit test keeps them in step);
``syscontainer-tools install-hooks`` writes them for the actual install
location, where each engine looks.
"""

from __future__ import annotations

import json
import os
from typing import Any

from . import jsonobject
from .errors import ToolError

ISULAD_SPEC = "/var/lib/isulad/hooks/hookspec.json"
PODMAN_HOOKS_DIR = "/etc/containers/oci/hooks.d"
TIMEOUTS = {"prestart": 120, "poststop": 60}


def _hook(bindir: str, program: str, args: list[str]) -> dict[str, Any]:
    return {"path": os.path.join(bindir, program), "args": [program, *args]}


def stages(bindir: str = "/usr/bin", *, lxcfs: bool = True, log_dir: str | None = None,
           state_dir: str | None = None,
           lxcfs_dir: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """{stage: [hook, ...]} wiring syscontainer-hooks (and lxcfs-hook)."""

    def sc(stage: str) -> dict[str, Any]:
        args = ["--state", stage]
        if log_dir:
            args += ["--log", os.path.join(log_dir, "syscontainer-hooks.log")]
        if state_dir:
            args += ["--state-dir", state_dir]
        return {**_hook(bindir, "syscontainer-hooks", args), "timeout": TIMEOUTS[stage]}

    prestart = [sc("prestart")]
    if lxcfs:
        args = ["--log", os.path.join(log_dir, "lxcfs-hook.log")] if log_dir else []
        if lxcfs_dir:
            args += ["--lxcfs-dir", lxcfs_dir]
        prestart.append({**_hook(bindir, "lxcfs-hook", args), "timeout": TIMEOUTS["prestart"]})
    return {"prestart": prestart, "poststop": [sc("poststop")]}


def isulad_spec(bindir: str = "/usr/bin", **kw: Any) -> dict[str, Any]:
    spec = stages(bindir, **kw)
    return {stage: [{**h, "env": []} for h in hooks] for stage, hooks in spec.items()}


def podman_specs(bindir: str = "/usr/bin", **kw: Any) -> dict[str, dict[str, Any]]:
    """hooks.d files (version 1.0.0): one per program and stage."""
    out = {}
    for stage, hooks in stages(bindir, **kw).items():
        for hook in hooks:
            program = hook["args"][0]
            name = (f"50-{program}-{stage}.json" if program == "syscontainer-hooks"
                    else f"60-{program}.json")
            body = {k: v for k, v in hook.items()}
            out[name] = {"version": "1.0.0", "hook": body, "when": {"always": True},
                         "stages": [stage]}
    return out


def runc_hooks(bindir: str = "/usr/bin", **kw: Any) -> dict[str, Any]:
    return {"hooks": stages(bindir, **kw)}


def write_json(path: str, data: Any) -> None:
    """Atomically write a JSON file (temp + fsync + rename), mode 0644."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    import tempfile  # not at load: syscontainer-runc reads its settings through here

    fd, tmp = tempfile.mkstemp(prefix=".hook.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=4)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def merge_hooks(spec: dict[str, Any], wanted: dict[str, list[dict[str, Any]]]) -> None:
    """Add ``wanted`` ({stage: [hook]}) to an OCI spec's hooks, replacing
    earlier entries of the same programs (idempotent)."""
    hooks = spec.get("hooks")
    if not isinstance(hooks, dict):
        hooks = spec["hooks"] = {}
    for stage, entries in wanted.items():
        ours = {e["path"] for e in entries}
        kept = [h for h in hooks.get(stage) or [] if h.get("path") not in ours]
        hooks[stage] = kept + entries


def read_json_object(path: str) -> dict[str, Any]:
    """The JSON object in ``path``; ToolError when it cannot be read or is no object."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, ValueError) as err:  # ValueError: not UTF-8
        raise ToolError(f"cannot read {path}: {err}") from None
    return jsonobject.parse(text, not_json=f"cannot read {path}",
                            not_object=f"{path} is not a JSON object")


def read_config(bundle: str) -> tuple[str, dict[str, Any]]:
    config = os.path.join(bundle, "config.json")
    return config, read_json_object(config)


def patch_bundle(bundle: str, bindir: str, **kw: Any) -> str:
    """Merge the hooks into a runc/crun bundle's config.json (idempotent)."""
    config, spec = read_config(bundle)
    merge_hooks(spec, stages(bindir, **kw))
    write_json(config, spec)
    return config


# Engines that take no OCI hooks run the wrapper syscontainer-runc instead of
# runc; it adds the hooks above at every create (see wrapper.py).
WRAPPER = "syscontainer-runc"
DOCKER_DAEMON_JSON = "/etc/docker/daemon.json"
WRAPPER_CONFIG = "/etc/syscontainer-tools/runc.json"


def wrapper_settings(*, lxcfs: bool = True, log_dir: str | None = None,
                     state_dir: str | None = None, lxcfs_dir: str | None = None,
                     runtime: str = "runc") -> dict[str, Any]:
    """The wrapper's runc.json (for containerd and CRI-O, which pass it no arguments)."""
    out: dict[str, Any] = {"runtime": runtime, "lxcfs": lxcfs, "log_dir": log_dir or ""}
    if state_dir:
        out["state_dir"] = state_dir
    if lxcfs_dir:
        out["lxcfs_dir"] = lxcfs_dir
    return out


def wrapper_args(**kw: Any) -> list[str]:
    """The same settings as the wrapper's leading options (Docker's runtimeArgs)."""
    return [f"--sc-{k.replace('_', '-')}={int(v) if isinstance(v, bool) else v}"
            for k, v in wrapper_settings(**kw).items()]


def docker_runtime(bindir: str = "/usr/bin", **kw: Any) -> dict[str, Any]:
    """The ``runtimes`` entry of Docker's daemon.json."""
    return {WRAPPER: {"path": os.path.join(bindir, WRAPPER), "runtimeArgs": wrapper_args(**kw)}}


def merge_docker_daemon_json(current: dict[str, Any], bindir: str, *, default: bool = False,
                             **kw: Any) -> dict[str, Any]:
    out = dict(current)
    out["runtimes"] = {**(current.get("runtimes") or {}), **docker_runtime(bindir, **kw)}
    if default:
        out["default-runtime"] = WRAPPER
    return out


def containerd_toml(bindir: str = "/usr/bin", handler: str = "syscontainer") -> str:
    """containerd (config version 2): a CRI runtime handler that runs the
    wrapper as the runc shim's binary.  Pods opt in through a RuntimeClass
    with this handler; ``handler="runc"`` wires every pod instead."""
    table = f'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{handler}'
    return (f"# merge into /etc/containerd/config.toml, then restart containerd;\n"
            f"# the wrapper reads its settings from {WRAPPER_CONFIG}\n"
            f"version = 2\n\n[{table}]\n  runtime_type = \"io.containerd.runc.v2\"\n\n"
            f"[{table}.options]\n  BinaryName = \"{os.path.join(bindir, WRAPPER)}\"\n")


def crio_conf(bindir: str = "/usr/bin", handler: str = "syscontainer") -> str:
    """CRI-O drop-in: a runtime handler that is the wrapper (CRI-O also reads
    OCI hooks from hooks.d, as podman does: install-hooks --engine podman)."""
    return (f"# /etc/crio/crio.conf.d/50-syscontainer-runc.conf; the wrapper reads its\n"
            f"# settings from {WRAPPER_CONFIG}\n"
            f"[crio.runtime.runtimes.{handler}]\n"
            f"runtime_path = \"{os.path.join(bindir, WRAPPER)}\"\n"
            f"runtime_type = \"oci\"\nruntime_root = \"/run/{handler}\"\n")
