"""Hook specs for each engine, generated from one description.

The files under hooks/ and hookspec.json in the source tree are these specs
for an install under /usr/bin (a unit test keeps them in step);
``syscontainer-tools install-hooks`` writes them for the actual install
location, where each engine looks.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from .errors import ToolError

ISULAD_SPEC = "/var/lib/isulad/hooks/hookspec.json"
PODMAN_HOOKS_DIR = "/etc/containers/oci/hooks.d"
TIMEOUTS = {"prestart": 120, "poststop": 60}


def _hook(bindir: str, program: str, args: list[str]) -> dict[str, Any]:
    return {"path": os.path.join(bindir, program), "args": [program, *args]}


def stages(bindir: str = "/usr/bin", *, lxcfs: bool = True, log_dir: str | None = None,
           state_dir: str | None = None) -> dict[str, list[dict[str, Any]]]:
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


def patch_bundle(bundle: str, bindir: str, **kw: Any) -> str:
    """Merge the hooks into a runc/crun bundle's config.json (idempotent)."""
    config = os.path.join(bundle, "config.json")
    try:
        with open(config, encoding="utf-8") as f:
            spec = json.load(f)
    except (OSError, ValueError) as err:
        raise ToolError(f"cannot read {config}: {err}") from None
    hooks = spec.setdefault("hooks", {})
    for stage, entries in stages(bindir, **kw).items():
        ours = {e["path"] for e in entries}
        kept = [h for h in hooks.get(stage, []) if h.get("path") not in ours]
        hooks[stage] = kept + entries
    write_json(config, spec)
    return config
