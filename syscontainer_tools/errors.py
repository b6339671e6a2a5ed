"""The one user-facing error type, and the one place it is rendered.

Library code raises ``ToolError`` (or a subclass); only the programs'
entry points turn it into a stderr line and an exit code, through
``render()``.  An error carries

* ``action``: the original tool's wording of what failed ("add device",
  "parse device", ...), set where the failure is known to belong to one
  action (parsing), else supplied by the program when it renders;
* ``reason`` (also ``message``): why, in words;
* ``errno``: the errno of the failed system call or netlink request where
  there is one, so a caller can tell EBUSY from ENOENT without parsing text;
* ``hint``: what the user can do about it.
"""

from __future__ import annotations

import errno as _errno
import os


class ToolError(Exception):
    """A failure the user can act on: printed without a traceback."""

    def __init__(self, message: str, *, hint: str | None = None,
                 action: str | None = None, errno: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.action = action
        self.errno = errno

    @property
    def reason(self) -> str:
        return self.message

    def __str__(self) -> str:
        return self.message

    def with_action(self, action: str) -> ToolError:
        """This error as a new one that belongs to ``action`` (unless it
        already names its own)."""
        if self.action:
            return self
        err = type(self)(self.message, hint=self.hint, action=action, errno=self.errno)
        err.__cause__ = self.__cause__
        return err

    @classmethod
    def from_os(cls, err: OSError, what: str | None = None, *,
                action: str | None = None) -> ToolError:
        """``what: strerror[: filename]``, keeping the errno."""
        text = oserror_text(err)
        return cls(f"{what}: {text}" if what else text, action=action, errno=err.errno)

    @classmethod
    def from_errno(cls, code: int, what: str, *, action: str | None = None) -> ToolError:
        """``what: strerror(code)`` (a netlink error's code is an errno)."""
        reason = os.strerror(code) if code else "unknown error"
        return cls(f"{what}: {reason}", action=action, errno=code or None)


class SpecError(ToolError):
    """A command-line value that is given but wrong (bad format, bad field)."""


class NotFound(ToolError):
    """A container, device, interface or path that does not exist."""

    def __init__(self, message: str, *, hint: str | None = None,
                 action: str | None = None, errno: int | None = _errno.ENOENT):
        super().__init__(message, hint=hint, action=action, errno=errno)


class Conflict(ToolError):
    """The resource is already there, or in use by someone else."""


def oserror_text(err: OSError) -> str:
    """``strerror: filename`` without Python's ``[Errno N]`` noise."""
    text = err.strerror or str(err)
    if err.filename is not None:
        text = f"{text}: {err.filename}"
    return text


def as_tool_error(err: BaseException) -> ToolError:
    """Any exception as a ToolError: an OSError keeps its errno; anything
    else unexpected is an internal error (a bug), said so."""
    if isinstance(err, ToolError):
        return err
    if isinstance(err, OSError):
        return ToolError.from_os(err)
    return ToolError(f"internal error: {type(err).__name__}: {err}",
                     hint="run with --debug for details")


def render(err: BaseException, *, action: str | None = None,
           prefix: str | None = None, hint_inline: bool = False) -> list[str]:
    """The stderr lines for a failure, the same for every program (the
    two typer programs, the two hooks, the daemon, syscontainer-runc).

    ``Failed to <action>: <reason>`` (the error's own action wins over the
    program's), or ``<prefix>: <reason>`` for the OCI hook, whose runtime
    shows the line next to the hook's name.  A hint follows on its own
    ``Hint:`` line, or in parentheses with ``hint_inline``."""
    tool = as_tool_error(err)
    head = prefix if prefix is not None else f"Failed to {tool.action or action or 'run'}"
    line = f"{head}: {tool.reason}"
    if tool.hint and hint_inline:
        return [f"{line} ({tool.hint})"]
    return [line] + ([f"Hint: {tool.hint}"] if tool.hint else [])
