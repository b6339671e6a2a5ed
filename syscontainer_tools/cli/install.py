"""install-hooks: put the hook specs where each engine looks (the hook program
itself is syscontainer_tools/hooks.py).

isula, podman (and CRI-O's hooks.d), runc and crun run OCI hooks; docker and
containerd do not, so for them the runtime wrapper syscontainer-runc is
registered (docker's daemon.json) or its configuration printed (containerd's
config.toml is TOML: it is merged by hand)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Annotated, Any

import typer

from ..typerapp import OptionalText
from . import command

ENGINES = ("isula", "podman", "runc", "crun")      # "all"
WRAPPED = ("docker", "containerd")                  # only when named


def _default_bindir() -> str:
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    if os.path.exists(os.path.join(here, "syscontainer-hooks")):
        return here
    found = shutil.which("syscontainer-hooks")
    return os.path.dirname(found) if found else "/usr/bin"


@command("install-hooks", "install hooks")
def install_hooks(
    engine: Annotated[str, typer.Option(
        "--engine", help="isula, podman, runc, crun, all (those four), docker or "
                         "containerd")] = "all",
    bindir: Annotated[OptionalText, typer.Option(
        "--bindir", help="where syscontainer-hooks and lxcfs-hook are installed (default: "
                         "next to this program)")] = None,
    dest: Annotated[OptionalText, typer.Option(
        "--dest", help="write the isula spec / podman hooks.d files / docker daemon.json / "
                       "the wrapper's runc.json here instead of the engine's default "
                       "location")] = None,
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
    lxcfs_dir: Annotated[OptionalText, typer.Option(
        "--lxcfs-dir", help="pass --lxcfs-dir to lxcfs-hook (default: the hook's own "
                            "default)")] = None,
    default_runtime: Annotated[bool, typer.Option(
        "--default-runtime", help="docker: also make syscontainer-runc the default "
                                  "runtime")] = False,
) -> None:
    """Install the OCI hook specs (isulad --hook-spec file, podman hooks.d, runc
    config.json) or register the runtime wrapper syscontainer-runc (docker, containerd).

    Needs root to write the engines' default locations.

    Example: syscontainer-tools install-hooks --engine podman
    """
    from .. import hookspec
    from ..errors import SpecError

    chosen = ENGINES if engine == "all" else (engine,)
    if any(e not in ENGINES + WRAPPED for e in chosen):
        raise SpecError(f"--engine must be one of {', '.join(ENGINES + WRAPPED)} or all, "
                        f"not {engine!r}")
    kw = {"lxcfs": lxcfs, "log_dir": log_dir or None, "state_dir": hook_state_dir or None,
          "lxcfs_dir": lxcfs_dir or None}
    bindir = os.path.abspath(bindir or _default_bindir())
    if engine in WRAPPED:
        _install_wrapper(engine, bindir, dest, default_runtime, kw)
        return
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


def _install_wrapper(engine: str, bindir: str, dest: str | None, default: bool,
                     kw: dict[str, Any]) -> None:
    from .. import hookspec
    from ..errors import ToolError

    if not os.path.exists(os.path.join(bindir, hookspec.WRAPPER)):
        raise ToolError(f"{hookspec.WRAPPER} is not in {bindir}", hint="give --bindir")
    if engine == "docker":
        target = os.path.join(dest, "daemon.json") if dest else hookspec.DOCKER_DAEMON_JSON
        current: dict[str, Any] = (hookspec.read_json_object(target)
                                   if os.path.exists(target) else {})
        hookspec.write_json(target, hookspec.merge_docker_daemon_json(current, bindir,
                                                                       default=default, **kw))
        typer.echo(f"Install docker runtime {hookspec.WRAPPER} ({target}) done. Restart "
                   f"dockerd, then: docker run --runtime {hookspec.WRAPPER} ...")
        return
    target = os.path.join(dest, "runc.json") if dest else hookspec.WRAPPER_CONFIG
    hookspec.write_json(target, hookspec.wrapper_settings(**kw))
    typer.echo(f"Install {hookspec.WRAPPER} settings ({target}) done. Add to containerd's "
               f"config.toml (or run ctr run --runc-binary {os.path.join(bindir, hookspec.WRAPPER)}):")
    typer.echo(hookspec.containerd_toml(bindir), nl=False)
