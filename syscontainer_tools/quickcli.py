"""The ``syscontainer-tools`` entry point: the changing commands without typer.

Importing typer (and click under it) and building the command tree costs a
command as much CPU as everything else it does.  A well-formed invocation of
add-device, remove-device, add-path, remove-path, add-nic, remove-nic,
add-route or remove-route is therefore read here and run through the same
functions the typer commands call (``commands``), so its output lines and
its failure line are the same.  Anything else -- ``--help``, ``--version``,
a list command, a short or abbreviated option, an option given twice, a
missing or extra argument, ``--log``, shell completion -- goes to the typer
program (``cli``), which has the last word on usage errors and help.

Well-formed means: global options (``--engine``, ``--runtime-root``,
``--state-dir`` with a value, ``--debug``) before the command name; after
it, the command's own long options spelt out in full (``--name eth1`` or
``--name=eth1``, a value not starting with "-"), each at most once unless it
may repeat, and its arguments, none starting with "-".
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs the fast path
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from typing import Any

    from .commands import Options

    Run = Callable[[Options, "Parsed"], None]

# the global options: name -> (attribute, environment variable)
_GLOBALS = {"--engine": ("engine", "SYSCONTAINER_ENGINE"),
            "--runtime-root": ("runtime_root", "SYSCONTAINER_RUNTIME_ROOT"),
            "--state-dir": ("state_dir", "SYSCONTAINER_STATE_DIR")}
_QOS = {"--blkio-weight-device": "weight", "--device-read-bps": "read_bps",
        "--device-write-bps": "write_bps", "--device-read-iops": "read_iops",
        "--device-write-iops": "write_iops"}


class Parsed:
    """One command line, read: its arguments, option values and flags."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.values: dict[str, str] = {}
        self.multi: dict[str, list[str]] = {}
        self.flags: set[str] = set()


class Command:
    """What a command takes: ``nargs`` arguments (-1: the container, then
    one or more), options with a value, options that may repeat, flags, and
    which options must be given."""

    def __init__(self, action: str, run: Run, nargs: int, *, values: tuple[str, ...] = (),
                 multi: tuple[str, ...] = (), flags: tuple[str, ...] = (),
                 required: tuple[str, ...] = ()) -> None:
        self.action = action
        self.run = run
        self.nargs = nargs
        self.values = values
        self.multi = multi
        self.flags = flags
        self.required = required

    def parse(self, argv: list[str]) -> Parsed | None:
        """``argv`` (what follows the command name) read, or None when it is
        not plainly well-formed."""
        out = Parsed()
        i = 0
        while i < len(argv):
            arg = argv[i]
            if not arg.startswith("-"):
                out.args.append(arg)
                i += 1
                continue
            name, eq, value = arg.partition("=")
            if name in self.flags and not eq:
                if name in out.flags:
                    return None
                out.flags.add(name)
                i += 1
                continue
            if name not in self.values and name not in self.multi:
                return None
            if not eq:
                if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                    return None
                i += 1
                value = argv[i]
            if name in self.multi:
                out.multi.setdefault(name, []).append(value)
            elif name in out.values:
                return None
            else:
                out.values[name] = value
            i += 1
        if self.nargs == -1:
            if len(out.args) < 2:
                return None
        elif len(out.args) != self.nargs:
            return None
        if any(name not in out.values for name in self.required):
            return None
        return out


# --- what each command runs (the typer commands call the same ``commands``) ------------

def _qos(p: Parsed) -> dict[str, list[str] | None]:
    return {key: p.multi.get(name) for name, key in _QOS.items()}


def _add_device(opts: Options, p: Parsed) -> None:
    from . import commands

    commands.add_device(opts, p.args[0], p.args[1:], _qos(p),
                        follow_partition="--follow-partition" in p.flags,
                        force="--force" in p.flags,
                        update_config_only="--update-config-only" in p.flags)


def _remove_device(opts: Options, p: Parsed) -> None:
    from . import commands

    commands.remove_device(opts, p.args[0], p.args[1:],
                           follow_partition="--follow-partition" in p.flags)


def _add_path(opts: Options, p: Parsed) -> None:
    from . import commands

    commands.add_path(opts, p.args[0], p.args[1:],
                      update_config_only="--update-config-only" in p.flags)


def _remove_path(opts: Options, p: Parsed) -> None:
    from . import commands

    commands.remove_path(opts, p.args[0], p.args[1:])


def _add_nic(opts: Options, p: Parsed) -> None:
    from . import commands

    v = p.values
    commands.add_nic(opts, p.args[0], type=v["--type"], name=v["--name"], ip=v.get("--ip"),
                     mac=v.get("--mac"), bridge=v.get("--bridge"), mtu=v.get("--mtu", "1500"),
                     qlen=v.get("--qlen", "1000"),
                     update_config_only="--update-config-only" in p.flags,
                     force="--force" in p.flags)


def _remove_nic(opts: Options, p: Parsed) -> None:
    from . import commands

    commands.remove_nic(opts, p.args[0], name=p.values["--name"], type=p.values.get("--type"))


def _add_route(opts: Options, p: Parsed) -> None:
    from . import commands

    commands.add_route(opts, p.args[0], p.args[1],
                       update_config_only="--update-config-only" in p.flags)


def _remove_route(opts: Options, p: Parsed) -> None:
    from . import commands

    commands.remove_route(opts, p.args[0], p.args[1],
                          update_config_only="--update-config-only" in p.flags)


COMMANDS = {
    "add-device": Command("add device", _add_device, -1, multi=tuple(_QOS),
                          flags=("--follow-partition", "--force", "--update-config-only")),
    "remove-device": Command("remove device", _remove_device, -1,
                             flags=("--follow-partition",)),
    "add-path": Command("add path", _add_path, -1, flags=("--update-config-only",)),
    "remove-path": Command("remove path", _remove_path, -1),
    "add-nic": Command("add network interface", _add_nic, 1,
                       values=("--type", "--name", "--ip", "--mac", "--bridge", "--mtu",
                               "--qlen"),
                       flags=("--update-config-only", "--force"), required=("--type", "--name")),
    "remove-nic": Command("remove network interface", _remove_nic, 1,
                          values=("--name", "--type"), required=("--name",)),
    "add-route": Command("add route", _add_route, 2, flags=("--update-config-only",)),
    "remove-route": Command("remove route", _remove_route, 2, flags=("--update-config-only",)),
}


def plan(argv: list[str], environ: Any = os.environ) -> tuple[Options, Command, Parsed] | None:
    """The global options, the command and its parsed arguments, when
    ``argv`` is well-formed as this module reads it; else None."""
    from .commands import DEFAULT_STATE_DIR, Options

    if any(k.startswith("_") and k.endswith("_COMPLETE") for k in environ):
        return None  # shell completion: typer's
    if any("\x1b" in arg for arg in argv):
        return None  # typer.echo strips ANSI escapes when not on a terminal
    given: dict[str, str] = {}
    debug = False
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, value = argv[i].partition("=")
        if argv[i] == "--debug" and not debug:
            debug = True
        elif name in _GLOBALS and name not in given:
            if not eq:
                if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                    return None
                i += 1
                value = argv[i]
            given[name] = value
        else:
            return None
        i += 1
    if i >= len(argv) or argv[i] not in COMMANDS:
        return None
    command = COMMANDS[argv[i]]
    parsed = command.parse(argv[i + 1:])
    if parsed is None:
        return None
    # an option given wins, then its environment variable when not empty, then the default
    found = {attr: given[name] if name in given else environ.get(var) or None
             for name, (attr, var) in _GLOBALS.items()}
    engine, state_dir = found["engine"], found["state_dir"]
    opts = Options(engine="auto" if engine is None else engine,
                   runtime_root=found["runtime_root"] or None,
                   state_dir=DEFAULT_STATE_DIR if state_dir is None else state_dir, debug=debug)
    return opts, command, parsed


def run(opts: Options, command: Command, parsed: Parsed) -> None:
    """Run it as the typer program would: logging as its global options set
    it up, the failure line and exit status 1 on any error, 0 after."""
    from . import log as logsetup
    from .commands import Failing

    logsetup.setup(debug=opts.debug, defer=True)
    try:
        with Failing(command.action, debug=opts.debug):
            command.run(opts, parsed)
    except KeyboardInterrupt:
        sys.stderr.write("\nAborted!\n")  # click's words for Ctrl-C
        sys.exit(1)
    sys.exit(0)


def main() -> None:
    planned = plan(sys.argv[1:])
    if planned is None:
        from .cli import main as typer_main

        typer_main()
        return
    run(*planned)
