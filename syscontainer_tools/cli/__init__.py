"""``syscontainer-tools``: a thin typer layer over the library API.

Each command parses its arguments, calls one library function, and prints
the result lines in the original tool's words.  Errors become one stderr line
``Failed to <action>: <reason>`` and exit status 1; usage errors (missing
argument, unknown option) are typer's and exit 2.  Command modules register
themselves on ``app``: devices.py, paths.py, network.py, hooks.py.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

from ..errors import ToolError, oserror_text
from ..typerapp import Typer

F = TypeVar("F", bound=Callable[..., Any])

app = Typer(
    name="syscontainer-tools",
    help="Add, remove, list and update devices, NICs, routes and paths in running "
         "system containers; every change is saved and re-applied at the next start.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Options:
    engine: str = "auto"
    runtime_root: str | None = None
    state_dir: str = "/var/lib/syscontainer-tools"
    debug: bool = False

    def find(self, ref: str):  # type: ignore[no-untyped-def]
        from ..engines import Engine, find

        return find(ref, Engine.parse(self.engine), self.runtime_root)

    @property
    def store(self):  # type: ignore[no-untyped-def]
        from ..state import StateStore

        return StateStore(self.state_dir)


_options = Options()


def options() -> Options:
    return _options


@app.callback()
def _global(
    engine: str = typer.Option("auto", "--engine", envvar="SYSCONTAINER_ENGINE",
                               help="auto, isula, docker, podman, runc or crun"),
    runtime_root: str = typer.Option(None, "--runtime-root", envvar="SYSCONTAINER_RUNTIME_ROOT",
                                     help="state root of runc/crun (runc --root)"),
    state_dir: str = typer.Option("/var/lib/syscontainer-tools", "--state-dir",
                                  envvar="SYSCONTAINER_STATE_DIR",
                                  help="where saved per-container resources live"),
    debug: bool = typer.Option(False, "--debug", help="debug logging, tracebacks on errors"),
    log: str = typer.Option(None, "--log", help="also log to this file"),
    log_format: str = typer.Option("text", "--log-format", help="text or json"),
) -> None:
    from .. import log as logsetup

    if log_format not in ("text", "json"):
        fail("parse options", f"--log-format must be text or json, not {log_format!r}")
    _options.engine = engine
    _options.runtime_root = runtime_root or None
    _options.state_dir = state_dir
    _options.debug = debug
    logsetup.setup(debug=debug, logfile=log, fmt=log_format)


def fail(action: str, message: str, hint: str | None = None) -> None:
    typer.echo(f"Failed to {action}: {message}", err=True)
    if hint:
        typer.echo(f"Hint: {hint}", err=True)
    raise typer.Exit(1)


def _log_failure(action: str, message: str) -> None:
    import logging

    logging.getLogger("syscontainer_tools.cli").error("Failed to %s: %s", action, message)


def handles(action: str) -> Callable[[F], F]:
    """Turn library errors raised by a command into the contract's stderr line."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except typer.Exit:
                raise
            except ToolError as err:
                if _options.debug:
                    traceback.print_exc()
                _log_failure(err.action or action, err.message)
                fail(err.action or action, err.message, err.hint)
            except OSError as err:
                if _options.debug:
                    traceback.print_exc()
                _log_failure(action, oserror_text(err))
                fail(action, oserror_text(err))
            except Exception as err:  # noqa: BLE001 - never a traceback for the user
                if _options.debug:
                    traceback.print_exc()
                fail(action, f"internal error: {type(err).__name__}: {err}",
                     "run with --debug for details")

        return run  # type: ignore[return-value]

    return wrap


# Parameters every command shares
Container = Annotated[str, typer.Argument(help="container id, id prefix or name")]
Pretty = Annotated[bool, typer.Option("--pretty", "-p", help="indented JSON (the original's flag)")]
Format = Annotated[str, typer.Option("--format", help="table or json")]
UpdateConfigOnly = Annotated[bool, typer.Option(
    "--update-config-only", help="only save the change; it is applied at the next start")]


def change(ref: str, apply: Callable[[Any, Any], list[str]]) -> None:
    """The shape of every changing command: find the container, hold its
    saved record's lock while ``apply(container, record)`` changes it (the
    record is written only if that succeeds), print the result lines."""
    opts = options()
    container = opts.find(ref)
    with opts.store.transaction(container.id) as record:
        lines = apply(container, record)
    echo_lines(lines)
    not_running_note(container, ref)


def show(ref: str, rows_of: Callable[[Any], Sequence[dict[str, Any]]],
         columns: Sequence[tuple[str, str]], *, fmt: str, pretty: bool, what: str) -> None:
    """The shape of every list command: the container's saved record, as rows."""
    opts = options()
    container = opts.find(ref)
    render(rows_of(opts.store.load(container.id)), columns, fmt=fmt, pretty=pretty,
           title=f"{what} of {ref}")


def echo_lines(lines: Iterable[str]) -> None:
    """Print result lines; they also go to the --log file, if any."""
    import logging

    log = logging.getLogger("syscontainer_tools.cli")
    for line in lines:
        typer.echo(line)
        log.info("%s", line)


def not_running_note(container: Any, ref: str) -> None:
    if not container.running:
        typer.echo(f"Container {ref} is not running: the change is saved and applied "
                   "when it starts.", err=True)


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


def _register() -> None:
    import importlib

    for name in ("devices", "paths", "network", "selinux", "hooks"):
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise


def main() -> None:
    _register()
    app()


