"""The one way this package runs another program.

Argument lists only (never a shell), stdin from /dev/null, a clean
environment, a time limit, ``+ cmd`` logged at debug, and a failure that
names the command and its exit status.
"""

from __future__ import annotations

import os

from .errors import ToolError
from .log import get_logger

TYPE_CHECKING = False  # subprocess is imported by run(): most commands never run one
if TYPE_CHECKING:  # pragma: no cover
    import subprocess

log = get_logger(__name__)

# What the engine CLIs read to find their daemon (CONTRACT: passed through)
KEEP_ENV = ("PATH", "HOME", "LANG", "XDG_RUNTIME_DIR", "OVS_RUNDIR",
            # docker CLI
            "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH", "DOCKER_API_VERSION",
            # podman (remote) and iSulad
            "CONTAINER_HOST", "CONTAINER_CONNECTION", "CONTAINERS_CONF", "ISULAD_HOST",
            # containerd's ctr
            "CONTAINERD_ADDRESS", "CONTAINERD_NAMESPACE")


def clean_env() -> dict[str, str]:
    """The caller's PATH and the few variables engines read; C locale."""
    env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["LC_ALL"] = "C"
    return env


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def run(argv: list[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; with ``check`` a non-zero exit is a ToolError naming it."""
    import shlex
    import subprocess

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
