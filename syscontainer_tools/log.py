"""Logging: the loggers library modules use, and the set-up the entry points do.

Library modules say ``log = get_logger(__name__)`` and call ``log.debug()``,
``log.info()``, ``log.warning()`` ... as on a ``logging.Logger``.  The
logging package (with traceback, string, threading and weakref behind it)
costs a command as much CPU as the interpreter's own start-up, yet a plain
command or hook wants nothing from it unless something goes wrong: its
stderr shows warnings only, and there is no --log file.  So an entry point
may ``setup(..., defer=True)``: then messages below WARNING are dropped
without importing logging, and the first message that is kept imports it and
does the set-up asked for.  Without ``defer`` (the typer programs, the
daemon, tests) every message goes to ``logging`` as usual.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    import logging
    from typing import Any

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40

_dropped_below = 0                       # levels below this are dropped unseen
_deferred: dict[str, Any] | None = None  # setup() to do when logging is first needed


class Logger:
    """A named logger whose ``logging.Logger`` is fetched (and logging
    imported) at its first message that is not dropped."""

    __slots__ = ("name", "_logger")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: logging.Logger | None = None

    def real(self) -> logging.Logger:
        """The ``logging.Logger`` behind this one, the set-up done first."""
        if self._logger is None:
            _configure()
            import logging

            self._logger = logging.getLogger(self.name)
        return self._logger

    def _log(self, level: int, msg: object, args: tuple[object, ...], kw: dict[str, Any]) -> None:
        if level >= _dropped_below:
            kw.setdefault("stacklevel", 3)  # the caller's line, not this module's
            self.real().log(level, msg, *args, **kw)

    def debug(self, msg: object, *args: object, **kw: Any) -> None:
        self._log(DEBUG, msg, args, kw)

    def info(self, msg: object, *args: object, **kw: Any) -> None:
        self._log(INFO, msg, args, kw)

    def warning(self, msg: object, *args: object, **kw: Any) -> None:
        self._log(WARNING, msg, args, kw)

    def error(self, msg: object, *args: object, **kw: Any) -> None:
        self._log(ERROR, msg, args, kw)

    def exception(self, msg: object, *args: object, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        self._log(ERROR, msg, args, kw)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return level >= _dropped_below and self.real().isEnabledFor(level)


def get_logger(name: str) -> Logger:
    return Logger(name)


def _configure() -> None:
    global _deferred
    if _deferred is not None:
        args, _deferred = _deferred, None
        _setup_now(**args)


def setup(*, debug: bool = False, logfile: str | None = None, fmt: str = "text",
          stderr: bool = True, defer: bool = False) -> None:
    """Configure the root logger once: stderr (warnings, or debug) and/or a
    file.  With ``defer`` and neither ``debug`` nor ``logfile`` nothing
    below WARNING can show, so the set-up waits for the first message at
    WARNING or above (see the module's doc)."""
    global _dropped_below, _deferred
    if defer and not debug and not logfile:
        _dropped_below = WARNING
        _deferred = {"debug": debug, "logfile": logfile, "fmt": fmt, "stderr": stderr}
        return
    _dropped_below, _deferred = 0, None
    _setup_now(debug=debug, logfile=logfile, fmt=fmt, stderr=stderr)


def _setup_now(*, debug: bool, logfile: str | None, fmt: str, stderr: bool) -> None:
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    formatter: logging.Formatter
    if fmt == "json":
        formatter = _json_formatter()
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if logfile:
        fh = logging.FileHandler(logfile)
        fh.setFormatter(formatter)
        root.addHandler(fh)
    if stderr:
        sh = logging.StreamHandler(sys.stderr)
        sh.setLevel(logging.DEBUG if debug else logging.WARNING)
        # the CLI prints its own result and failure lines; they are logged for --log only
        sh.addFilter(lambda record: record.name != "syscontainer_tools.cli")
        sh.setFormatter(formatter if debug else logging.Formatter("%(levelname)s: %(message)s"))
        root.addHandler(sh)


def _json_formatter() -> logging.Formatter:
    import json
    import logging
    import time

    class JSONFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            entry = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created)),
                "level": record.levelname.lower(),
                "logger": record.name,
                "msg": record.getMessage(),
            }
            if record.exc_info:
                entry["exc"] = self.formatException(record.exc_info)
            return json.dumps(entry)

    return JSONFormatter()
