"""What the two argparse hook programs (syscontainer-hooks, lxcfs-hook)
share; apart from hooks.py so that a hook's fast path, which reads its plain
arguments itself, never imports argparse."""

from __future__ import annotations

import argparse
from typing import Any


class VersionAction(argparse.Action):
    """``--version`` for the argparse programs (syscontainer-hooks, lxcfs-hook):
    ``<prog> <version>``, exit 0.  The version is read from the package
    metadata only when asked for: that read costs more than a hook's start."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("nargs", 0)
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from . import __version__

        print(f"{parser.prog} {__version__}")
        parser.exit(0)
