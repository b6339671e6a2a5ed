"""The one way this package runs another program.

Argument lists only (never a shell), stdin from /dev/null, a clean
environment, a time limit, ``+ cmd`` logged at debug, and a failure that
names the command and its exit status.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess

from .errors import ToolError

log = logging.getLogger(__name__)

KEEP_ENV = ("PATH", "HOME", "LANG", "XDG_RUNTIME_DIR", "CONTAINER_HOST", "DOCKER_HOST",
            "ISULAD_HOST", "OVS_RUNDIR")


def clean_env() -> dict[str, str]:
    """The caller's PATH and the few variables engines read; C locale."""
    env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return env | {"LC_ALL": "C"}


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def run(argv: list[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; with ``check`` a non-zero exit is a ToolError naming it."""
    cmd = shlex.join(argv)
    log.debug("+ %s", cmd)
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=clean_env(), timeout=timeout, check=False)
    except FileNotFoundError:
        raise ToolError(f"{argv[0]} is not installed (or not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"{cmd} did not finish in {timeout:g} s") from None
    if check and proc.returncode != 0:
        raise ToolError(f"{cmd} failed (exit status {proc.returncode}): "
                        f"{last_line(proc.stderr) or last_line(proc.stdout)}")
    return proc
