"""``Typer``: ``typer.Typer`` whose commands keep their ``Annotated`` options
on Python 3.9.

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

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


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
