"""``syscontainer-runc``: runc (or crun) with syscontainer-tools' hooks wired in.

    syscontainer-runc [--sc-OPTION=VALUE ...] RUNTIME-ARGS...

For engines that take a runtime program but no OCI hooks -- Docker
(``daemon.json`` ``"runtimes"``), containerd (the runc shim's
``BinaryName``), CRI-O (``runtime_path``).  On ``create`` (and ``run``) it
adds ``syscontainer-hooks`` (prestart, poststop) and, when asked,
``lxcfs-hook`` (prestart) to the bundle's ``config.json``, then executes the
real runtime with the same arguments.  Every other subcommand (``start``,
``state``, ``kill``, ``delete``, ``exec`` ...) is executed at once, with no
other work.

Settings, first found wins: leading ``--sc-*`` options (Docker's
``runtimeArgs``), then the JSON file ``/etc/syscontainer-tools/runc.json``
(``$SYSCONTAINER_RUNC_CONFIG``), then the defaults:

=================  ===================  =========================================
option             runc.json key        default
=================  ===================  =========================================
``--sc-runtime``   ``runtime``          ``runc`` on PATH
``--sc-lxcfs``     ``lxcfs``            off (``1``: lxcfs-hook for every container)
``--sc-lxcfs-dir`` ``lxcfs_dir``        lxcfs-hook's own default
``--sc-state-dir`` ``state_dir``        syscontainer-hooks' own default
``--sc-log-dir``   ``log_dir``          ``/var/log``
``--sc-bindir``    ``bindir``           the directory this program is in
=================  ===================  =========================================

A container opts in or out of lxcfs itself with ``SYSCONTAINER_LXCFS=1|0`` in
its environment or the annotation ``syscontainer.lxcfs=true|false``.

Kept import-light (os, sys, the error type; the hook spec only when a
settings file exists or on ``create``): it runs on every runtime call the
engine makes.  Errors are ``ToolError``, rendered as ``syscontainer-runc:
<reason>``.
"""

from __future__ import annotations

import os
import sys

from .errors import ToolError, render

CONFIG = "/etc/syscontainer-tools/runc.json"
PREFIX = "--sc-"
KEYS = ("runtime", "lxcfs", "lxcfs_dir", "state_dir", "log_dir", "bindir")
# runc's and crun's global options that take a separate value
VALUED = {"--root", "--log", "--log-format", "--criu", "--rootless", "--cgroup-manager",
          "--log-level"}
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
LXCFS_ENV = "SYSCONTAINER_LXCFS"
LXCFS_ANNOTATION = "syscontainer.lxcfs"


def split_own(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading ``--sc-KEY=VALUE`` / ``--sc-KEY VALUE`` / ``--sc-lxcfs``
    options, and the runtime's own arguments after them."""
    own: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i].startswith(PREFIX):
        name, eq, value = argv[i][len(PREFIX):].partition("=")
        key = name.replace("-", "_")
        if key not in KEYS:
            raise ToolError(f"unknown option {argv[i]!r}")
        if not eq:
            if key == "lxcfs":
                value = "1"
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
            else:
                raise ToolError(f"{argv[i]} needs a value")
        own[key] = value
        i += 1
    return own, argv[i:]


def settings(own: dict[str, str]) -> dict[str, str]:
    path = os.environ.get("SYSCONTAINER_RUNC_CONFIG", CONFIG)
    merged: dict[str, str] = {}
    if os.path.exists(path):
        from .hookspec import read_json_object

        data = read_json_object(path)
        merged = {k: str(v).lower() if isinstance(v, bool) else str(v)
                  for k, v in data.items() if k in KEYS and v is not None}
    merged.update(own)
    return merged


def subcommand(args: list[str]) -> tuple[int, str]:
    """Index and name of the runtime subcommand (after its global options)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            return i, arg
        if arg in VALUED:
            i += 1
        i += 1
    return -1, ""


def bundle_of(args: list[str]) -> str:
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--bundle", "-b") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(("--bundle=", "-b=")):
            return arg.partition("=")[2]
        i += 1
    return "."


def real_runtime(name: str) -> str:
    """The runtime program to execute: never this wrapper itself."""
    me = os.path.realpath(sys.argv[0])
    candidates = ([name] if "/" in name else
                  [os.path.join(d, name) for d in os.environ.get(
                      "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                  ).split(os.pathsep) if d])
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK) and os.path.realpath(path) != me:
            return path
    raise ToolError(f"the runtime {name!r} is not installed (or not on PATH)")


def wants_lxcfs(spec: dict[str, object], default: str) -> bool:
    annotations = spec.get("annotations")
    value = annotations.get(LXCFS_ANNOTATION) if isinstance(annotations, dict) else None
    process = spec.get("process")
    env = process.get("env") if isinstance(process, dict) else None
    for item in env if isinstance(env, list) else []:
        key, _, val = str(item).partition("=")
        if key == LXCFS_ENV:
            value = val
    choice = str(value if value is not None else default).lower()
    if choice not in TRUE + FALSE:
        raise ToolError(f"{LXCFS_ENV} / {LXCFS_ANNOTATION} must be 1 or 0, not {choice!r}")
    return choice in TRUE


def wire(bundle: str, conf: dict[str, str]) -> None:
    """Add the hooks to the bundle's config.json."""
    from . import hookspec

    bindir = conf.get("bindir") or os.path.dirname(os.path.abspath(sys.argv[0]))
    config, spec = hookspec.read_config(bundle)
    hookspec.merge_hooks(spec, hookspec.stages(
        bindir, lxcfs=wants_lxcfs(spec, conf.get("lxcfs", "0")),
        log_dir=conf.get("log_dir", "/var/log") or None,
        state_dir=conf.get("state_dir") or None, lxcfs_dir=conf.get("lxcfs_dir") or None))
    hookspec.write_json(config, spec)


def report(args: list[str], line: str) -> None:
    """The error line where the engine looks: stderr, and runc's ``--log``
    file in the format asked for (containerd's shim reads it back)."""
    sys.stderr.write(f"{line}\n")
    log = fmt = None
    for i, arg in enumerate(args):
        if arg == "--log" and i + 1 < len(args):
            log = args[i + 1]
        elif arg.startswith("--log="):
            log = arg.partition("=")[2]
        elif arg == "--log-format" and i + 1 < len(args):
            fmt = args[i + 1]
        elif arg.startswith("--log-format="):
            fmt = arg.partition("=")[2]
    if not log:
        return
    import json
    import time

    entry = (json.dumps({"level": "error", "msg": line,
                         "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
             if fmt == "json" else line)
    try:
        with open(log, "a", encoding="utf-8") as f:
            f.write(entry + "\n")
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        own, rest = split_own(args)
        conf = settings(own)
        runtime = real_runtime(conf.get("runtime") or "runc")
        at, cmd = subcommand(rest)
        if cmd in ("create", "run"):
            wire(bundle_of(rest[at + 1:]), conf)
    except ToolError as err:
        report(args, render(err, prefix="syscontainer-runc", hint_inline=True)[0])
        return 1
    try:
        os.execv(runtime, [runtime, *rest])
    except OSError as err:
        failed = ToolError(f"cannot execute {runtime}: {err.strerror}", errno=err.errno)
        report(args, render(failed, prefix="syscontainer-runc")[0])
    return 1


if __name__ == "__main__":
    sys.exit(main())
