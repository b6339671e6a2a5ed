"""The one user-facing error type.

Library code raises these; only the CLI and the hook entry points turn them
into a stderr line and an exit code.  ``action`` is the original tool's
wording of what failed ("add device", "parse device", ...): the CLI prints
``Failed to <action>: <message>``.
"""

from __future__ import annotations


class ToolError(Exception):
    """A failure the user can act on: printed without a traceback."""

    def __init__(self, message: str, *, hint: str | None = None, action: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.action = action

    def __str__(self) -> str:
        return self.message


class SpecError(ToolError):
    """A command-line value that is given but wrong (bad format, bad field)."""


class NotFound(ToolError):
    """A container, device, interface or path that does not exist."""


class Conflict(ToolError):
    """The resource is already there, or in use by someone else."""


def oserror_text(err: OSError) -> str:
    """``strerror: filename`` without Python's ``[Errno N]`` noise."""
    text = err.strerror or str(err)
    if err.filename is not None:
        text = f"{text}: {err.filename}"
    return text
