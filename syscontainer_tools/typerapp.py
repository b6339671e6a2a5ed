"""What syscontainer-tools and lxcfs-toolkit share as typer programs:
``Typer``, whose commands keep their ``Annotated`` options on Python 3.9;
the global options both take (``--engine``, ``--runtime-root``, ``--debug``,
``--log``, ``--version``); and ``failing_as``, the one place a command's
error becomes its stderr lines.

With ``from __future__ import annotations`` every annotation is a string.
typer >= 3.10 evaluates them (``inspect.signature(eval_str=True)``); on 3.9
it reads the strings as they are, so ``fmt: Format`` (an
``Annotated[str, typer.Option("--format")]`` alias) loses its option names
and help and becomes ``--fmt``.  Registering through this class gives each
command and callback a ``__signature__`` with the annotations already
evaluated, which typer uses on every Python.  The annotations of a command
are therefore evaluated at import: ``Optional[str]``, not ``str | None``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Annotated, Any, NoReturn, Optional, TypeVar

import typer

from .errors import render

F = TypeVar("F", bound=Callable[..., Any])

# typer reads command annotations at run time (also on 3.9): aliases, not X | None
OptionalText = Optional[str]


def _evaluated(annotation: Any, names: dict[str, Any]) -> Any:
    # what inspect.signature(eval_str=True) does from 3.10 on; not
    # typing.get_type_hints, which before 3.11 wraps the annotation of a
    # parameter defaulting to None in Optional[...], hiding the Annotated
    if isinstance(annotation, str):
        return eval(annotation, names)  # noqa: S307 -- the module's own source
    return annotation


def resolved(func: F) -> F:
    """``func`` with a ``__signature__`` carrying evaluated annotations."""
    sig = inspect.signature(func)  # of the innermost function, under decorators
    names = inspect.unwrap(func).__globals__  # whose module the annotations name
    params = [p.replace(annotation=_evaluated(p.annotation, names))
              for p in sig.parameters.values()]
    func.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=params, return_annotation=_evaluated(sig.return_annotation, names))
    return func


class Typer(typer.Typer):
    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        register = super().command(*args, **kwargs)
        return lambda func: register(resolved(func))

    def callback(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        register = super().callback(*args, **kwargs)
        return lambda func: register(resolved(func))


def show_version(prog: str) -> Callable[[bool], None]:
    """A ``--version`` callback: ``<prog> <version>``, exit 0 (the typer programs;
    the hooks have their own)."""

    def callback(value: bool) -> None:
        if value:
            from . import __version__

            typer.echo(f"{prog} {__version__}")
            raise typer.Exit(0)

    return callback


# the global options syscontainer-tools and lxcfs-toolkit share
EngineOption = Annotated[str, typer.Option(
    "--engine", envvar="SYSCONTAINER_ENGINE",
    help="auto, isula, docker, podman, containerd, runc or crun")]
RuntimeRootOption = Annotated[OptionalText, typer.Option(
    "--runtime-root", envvar="SYSCONTAINER_RUNTIME_ROOT",
    help="state root of runc/crun (runc --root)")]
DebugOption = Annotated[bool, typer.Option(
    "--debug", help="debug logging, tracebacks on errors")]
LogOption = Annotated[OptionalText, typer.Option("--log", help="also log to this file")]


# what a command lets through untouched: its own exits, Ctrl-C, and click's
# ClickException (usage errors, exit 2; typer vendors click in recent versions)
_PASS: tuple[type[BaseException], ...] = (typer.Exit, typer.Abort, KeyboardInterrupt) + tuple(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def fail(err: BaseException, action: str, *, log_as: str | None = None) -> NoReturn:
    """``Failed to <action>: <reason>`` (``errors.render``) on stderr, exit 1;
    the first line also logged to ``log_as`` (for --log) when given."""
    lines = render(err, action=action)
    if log_as:
        logging.getLogger(log_as).error("%s", lines[0])
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(1)


@contextlib.contextmanager
def failing_as(action: str, *, debug: bool, log_as: str | None = None) -> Iterator[None]:
    """Any error of the block but a usage error -> ``fail()``: never a
    traceback for the user, unless ``debug``."""
    try:
        yield
    except _PASS:
        raise
    except Exception as err:  # noqa: BLE001 - never a traceback for the user
        if debug:
            traceback.print_exc()
        fail(err, action, log_as=log_as)
