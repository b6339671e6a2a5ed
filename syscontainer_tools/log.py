"""Logging set-up for the entry points (library modules only call getLogger)."""

from __future__ import annotations

import logging
import sys
import time


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        import json

        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup(*, debug: bool = False, logfile: str | None = None, fmt: str = "text",
          stderr: bool = True) -> None:
    """Configure the root logger once: stderr (warnings, or debug) and/or a file."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    formatter: logging.Formatter
    if fmt == "json":
        formatter = _JSONFormatter()
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
