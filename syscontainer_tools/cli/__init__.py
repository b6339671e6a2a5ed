"""``syscontainer-tools``: a thin typer layer over the library API.

Each command parses its arguments, calls one library function, and prints
the result lines in the original tool's words.  Errors become one stderr line
``Failed to <action>: <reason>`` and exit status 1; usage errors (missing
argument, unknown option) are typer's and exit 2.  Command modules register
themselves on ``app``: devices.py, paths.py, network.py, selinux.py, install.py.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from .. import typerapp
from ..commands import LOG as _LOG  # the failure lines go to --log, not twice to stderr
from ..commands import Options
from ..commands import report as report  # what selinux.py prints with
from ..errors import ToolError
from ..typerapp import (
    DebugOption,
    EngineOption,
    LogOption,
    RuntimeRootOption,
    Typer,
    show_version,
)

F = TypeVar("F", bound=Callable[..., Any])

app = Typer(
    name="syscontainer-tools",
    help="Add, remove, list and update devices, NICs, routes and paths in running "
         "system containers; every change is saved and re-applied at the next start.",
    no_args_is_help=True,
    rich_markup_mode=None,  # click's plain help: rich's help panels cost ~130 ms of imports
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


_options = Options()


def options() -> Options:
    return _options


@app.callback()
def _global(
    engine: EngineOption = "auto",
    runtime_root: RuntimeRootOption = None,
    state_dir: Annotated[str, typer.Option(
        "--state-dir", envvar="SYSCONTAINER_STATE_DIR",
        help="where saved per-container resources live")] = "/var/lib/syscontainer-tools",
    debug: DebugOption = False,
    log: LogOption = None,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json")] = "text",
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=show_version("syscontainer-tools"),
        help="print the version and exit")] = False,
) -> None:
    from .. import log as logsetup

    if log_format not in ("text", "json"):
        fail("parse options", f"--log-format must be text or json, not {log_format!r}")
    _options.engine = engine
    _options.runtime_root = runtime_root or None
    _options.state_dir = state_dir
    _options.debug = debug
    logsetup.setup(debug=debug, logfile=log, fmt=log_format)


def fail(action: str, message: str, hint: str | None = None) -> NoReturn:
    typerapp.fail(ToolError(message, hint=hint), action, log_as=_LOG)


def fails_as(action: str) -> Callable[[F], F]:
    """Turn any error a command raises into the contract's stderr line
    (``Failed to <action>: <reason>``, exit 1); never a traceback, unless
    --debug."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with typerapp.failing_as(action, debug=_options.debug, log_as=_LOG):
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]

    return wrap


def command(name: str, action: str) -> Callable[[F], F]:
    """Register ``syscontainer-tools NAME``, failing as ``action``."""

    def register(fn: F) -> F:
        return app.command(name)(fails_as(action)(fn))

    return register


# Parameters every command shares
Container = Annotated[str, typer.Argument(help="container id, id prefix or name")]
Pretty = Annotated[bool, typer.Option("--pretty", "-p", help="indented JSON (the original's flag)")]
Format = Annotated[str, typer.Option("--format", help="table or json")]
UpdateConfigOnly = Annotated[bool, typer.Option(
    "--update-config-only", help="only save the change; it is applied at the next start")]


def show(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], *, fmt: str,
         pretty: bool, title: str) -> None:
    """The shape of every list command: the saved record's rows."""
    render(rows, columns, fmt=fmt, pretty=pretty, title=title)


def render(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], *,
           fmt: str, pretty: bool, title: str) -> None:
    """Print ``rows`` as a rich table (default), JSON, or indented JSON."""
    if pretty:
        fmt = "json-pretty"
    if fmt in ("json", "json-pretty"):
        typer.echo(json.dumps(list(rows), indent=4 if fmt == "json-pretty" else None))
        return
    if fmt != "table":
        raise ToolError(f"--format must be table or json, not {fmt!r}")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=None, header_style="bold")
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(key) is None else str(row.get(key)) for key, _ in columns))
    Console(width=200 if not sys.stdout.isatty() else None).print(table)


# which module registers which command (the order of --help's list)
COMMAND_MODULES = {
    "devices": ("add-device", "remove-device", "list-device", "update-device"),
    "paths": ("add-path", "remove-path", "list-path"),
    "network": ("add-nic", "remove-nic", "update-nic", "add-route", "remove-route",
                "list-nic", "list-route"),
    "selinux": ("relabel",),
    "install": ("install-hooks",),
}
# the global options that take a value (see _global)
_VALUED_GLOBALS = ("--engine", "--runtime-root", "--state-dir", "--log", "--log-format")


def _command_module(argv: Sequence[str]) -> str | None:
    """The module of the command ``argv`` names, or None (no command, an
    unknown one, shell completion): then every module is needed."""
    import os

    if any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        return None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUED_GLOBALS:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return next((module for module, names in COMMAND_MODULES.items() if arg in names), None)
    return None


def _register(argv: Sequence[str] | None = None) -> None:
    """Import the command modules: only the one the command line names, when
    it names one (each costs imports and typer's reading of its signatures),
    else all."""
    import importlib

    only = _command_module(argv) if argv is not None else None
    for name in COMMAND_MODULES if only is None else (only,):
        importlib.import_module(f"{__name__}.{name}")


def main() -> None:
    _register(sys.argv[1:])
    app()


