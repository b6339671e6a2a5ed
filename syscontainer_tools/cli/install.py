"""install-hooks: put the hook specs where each engine looks.

(The hook program itself is syscontainer_tools/hooks.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Annotated

import typer

from . import OptionalText, app, handles

ENGINES = ("isula", "podman", "runc", "crun")


def _default_bindir() -> str:
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    if os.path.exists(os.path.join(here, "syscontainer-hooks")):
        return here
    found = shutil.which("syscontainer-hooks")
    return os.path.dirname(found) if found else "/usr/bin"


@app.command("install-hooks")
@handles("install hooks")
def install_hooks(
    engine: Annotated[str, typer.Option(
        "--engine", help="isula, podman, runc, crun or all")] = "all",
    bindir: Annotated[OptionalText, typer.Option(
        "--bindir", help="where syscontainer-hooks and lxcfs-hook are installed (default: "
                         "next to this program)")] = None,
    dest: Annotated[OptionalText, typer.Option(
        "--dest", help="write the isula spec / podman hooks.d files here instead of the "
                       "engine's default location")] = None,
    bundle: Annotated[OptionalText, typer.Option(
        "--bundle", help="runc/crun: merge the hooks into this bundle's config.json (else "
                         "print the snippet)")] = None,
    lxcfs: Annotated[bool, typer.Option("--lxcfs/--no-lxcfs",
                                        help="also wire lxcfs-hook")] = True,
    log_dir: Annotated[str, typer.Option(
        "--log-dir", help="hooks log here ('' = no log)")] = "/var/log",
    hook_state_dir: Annotated[OptionalText, typer.Option(
        "--hook-state-dir", help="pass --state-dir to syscontainer-hooks (default: the hooks' "
                                 "own default)")] = None,
) -> None:
    """Install the OCI hook specs: isulad --hook-spec file, podman hooks.d, runc config.json.

    Needs root to write the engines' default locations.

    Example: syscontainer-tools install-hooks --engine podman
    """
    from .. import hookspec
    from ..errors import SpecError

    chosen = ENGINES if engine == "all" else (engine,)
    if any(e not in ENGINES for e in chosen):
        raise SpecError(f"--engine must be one of {', '.join(ENGINES)} or all, not {engine!r}")
    kw = {"lxcfs": lxcfs, "log_dir": log_dir or None, "state_dir": hook_state_dir or None}
    bindir = os.path.abspath(bindir or _default_bindir())
    for name in chosen:
        if name == "isula":
            target = os.path.join(dest, "hookspec.json") if dest else hookspec.ISULAD_SPEC
            hookspec.write_json(target, hookspec.isulad_spec(bindir, **kw))
            typer.echo(f"Install isula hook spec ({target}) done. "
                       f"Use: isula run --hook-spec {target} ...")
        elif name == "podman":
            directory = dest or hookspec.PODMAN_HOOKS_DIR
            for fname, body in hookspec.podman_specs(bindir, **kw).items():
                hookspec.write_json(os.path.join(directory, fname), body)
            typer.echo(f"Install podman hooks ({directory}) done.")
        elif bundle:
            config = hookspec.patch_bundle(bundle, bindir, **kw)
            typer.echo(f"Install {name} hooks ({config}) done.")
        elif engine != "all":
            typer.echo(json.dumps(hookspec.runc_hooks(bindir, **kw), indent=4))
