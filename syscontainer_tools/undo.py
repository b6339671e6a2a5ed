"""Undo steps: every multi-step change pushes the undo of each step it
completed on a ``contextlib.ExitStack`` and ``pop_all()``s when all
succeeded.  An undo step must not raise (the other undo steps still have to
run, and the original failure is what the user needs to see), so each runs
through ``quietly``, which logs what it could not do."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from .log import get_logger

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

log = get_logger(__name__)


def quietly(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run one undo step; a failure is logged as a warning, never raised."""
    try:
        fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - undo goes on; the log says what failed
        log.warning("rollback: %s failed: %s", what, err)


def push(stack: contextlib.ExitStack, what: str, fn: Callable[..., Any], *args: Any,
         **kwargs: Any) -> None:
    """Push ``fn(*args, **kwargs)`` as a quiet undo step on ``stack``."""
    stack.callback(quietly, what, fn, *args, **kwargs)
