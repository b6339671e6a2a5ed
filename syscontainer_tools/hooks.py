"""``syscontainer-hooks``: the OCI hook that makes saved resources survive restarts.

    syscontainer-hooks --state prestart|poststart|poststop [--log FILE] [--state-dir DIR]

The runtime passes the OCI state (id, pid, bundle, status) on stdin.

* prestart re-applies everything saved for the container, in the original's
  order: devices (nodes, device cgroup, QoS), bind-mounted paths, NICs, then
  routes; then loads the kernel modules named in ``KERNEL_MODULES`` of the
  container's ``process.env``.  A saved resource that can no longer be
  applied (its host device is gone, say) fails the start with a message
  naming it: a system container silently missing its disk is worse than one
  that does not start.
* poststop returns physical NICs to the host under their saved names, deletes
  leftover veth host ends and removes udev rules the tools added.  Every step
  is tried; failures are reported (exit 1) but never stop the others.  The
  saved state stays for the next start.
* poststart has nothing to do.

Start-up is kept light.  With nothing saved a prestart imports none of json,
re, typing and argparse: the arguments are read by ``quick_args`` when plain,
JSON by ``quickjson``, then one stat of the state file and one read of the
OCI spec.  The resource modules (and pyroute2/pyudev behind them) are
imported only when the record has something of their kind.
"""

from __future__ import annotations

import os
import sys

from . import jsonobject
from .errors import ToolError
from .quickjson import loads as json_loads

TYPE_CHECKING = False  # not typing's: typing, like json and re, costs a hook's fast path
if TYPE_CHECKING:  # pragma: no cover
    import argparse
    from typing import Any

MODULE_RE = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"
MODULE_ALLOWLIST = "/etc/syscontainer-tools/kernel-modules.allow"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    import argparse

    from .hookargs import VersionAction

    p = argparse.ArgumentParser(
        prog="syscontainer-hooks",
        description="OCI hook of syscontainer-tools: reads the OCI state (id, pid, bundle) on "
                    "stdin; prestart re-applies the container's saved devices, paths, NICs and "
                    "routes, poststop returns its physical NICs to the host.")
    p.add_argument("--state", required=True, choices=["prestart", "poststart", "poststop"],
                   help="the OCI hook stage this call is for")
    p.add_argument("--log", help="append diagnostics to this file")
    p.add_argument("--state-dir", default=os.environ.get("SYSCONTAINER_STATE_DIR",
                                                         "/var/lib/syscontainer-tools"),
                   help="saved resources (default: $SYSCONTAINER_STATE_DIR, else "
                        "/var/lib/syscontainer-tools)")
    p.add_argument("--debug", action="store_true", help="debug logging, tracebacks on errors")
    p.add_argument("--version", action=VersionAction, help="print the version and exit")
    return p.parse_args(argv)


class _Args:
    """What ``parse_args`` returns, for the arguments ``quick_args`` reads."""

    def __init__(self) -> None:
        self.state: str | None = None
        self.log: str | None = None
        self.state_dir = os.environ.get("SYSCONTAINER_STATE_DIR", "/var/lib/syscontainer-tools")
        self.debug = False


_VALUED = {"--state": "state", "--log": "log", "--state-dir": "state_dir"}


def quick_args(argv: list[str]) -> _Args | None:
    """The arguments as ``parse_args`` reads them, without importing argparse
    (which, with the shutil it imports for the help's width, costs as much
    as the rest of a hook's start-up), when they are plain: each option
    spelt out in full, a value that does not start with "-".  None for
    anything else (--help, --version, abbreviations, errors): ``parse_args``
    then has the last word."""
    args = _Args()
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if arg == "--debug":
            args.debug = True
        elif name in _VALUED and eq:
            setattr(args, _VALUED[name], value)
        elif arg in _VALUED and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            i += 1
            setattr(args, _VALUED[arg], argv[i])
        else:
            return None
        i += 1
    return args if args.state in ("prestart", "poststart", "poststop") else None


def read_oci_state(stream: Any) -> dict[str, Any]:
    """The OCI state a runtime hands a hook on stdin (both hooks read it here)."""
    raw = stream.read()
    if not raw.strip():
        raise ToolError("no OCI state on stdin")
    state = jsonobject.parse(raw, not_json="the OCI state on stdin is not JSON",
                             not_object="the OCI state on stdin is not a JSON object")
    if not state.get("id") or not state.get("bundle"):
        raise ToolError("the OCI state on stdin lacks a valid field: id or bundle")
    return state


def kernel_modules(env: dict[str, str]) -> list[str]:
    """Names from KERNEL_MODULES=a,b, validated; refused names are an error."""
    import re

    names = [n.strip() for n in env.get("KERNEL_MODULES", "").split(",") if n.strip()]
    bad = [n for n in names if not re.match(MODULE_RE, n)]
    if bad:
        raise ToolError(f"KERNEL_MODULES: invalid module name(s) {', '.join(map(repr, bad))}")
    if names and os.path.exists(MODULE_ALLOWLIST):
        with open(MODULE_ALLOWLIST, encoding="utf-8") as f:
            allowed = {line.split("#")[0].strip() for line in f} - {""}
        refused = [n for n in names if n not in allowed]
        if refused:
            raise ToolError(f"KERNEL_MODULES: {', '.join(refused)} not in {MODULE_ALLOWLIST}")
    return names


def _log() -> Any:
    from .log import get_logger

    return get_logger("syscontainer_tools.hooks")


def load_modules(names: list[str]) -> None:
    if not names:
        return
    from .command import last_line, run

    proc = run(["modprobe", "-a", "--", *names], check=False)
    if proc.returncode != 0:
        reason = last_line(proc.stderr) or f"exit status {proc.returncode}"
        raise ToolError(f"KERNEL_MODULES: modprobe {' '.join(names)} failed: {reason}")


def prestart(state: dict[str, Any], state_dir: str) -> list[str]:
    from .container import Container
    from .resources.state import StateStore

    container = Container.from_oci_state(state)
    modules = kernel_modules(container.env)
    store = StateStore(state_dir)
    done: list[str] = []
    # cheap check first: nothing saved -> only the modules
    if not store.load(container.id).empty():
        from . import api

        done = api.reapply(container, store)
    load_modules(modules)
    return done


def poststop(state: dict[str, Any], state_dir: str) -> tuple[list[str], list[str]]:
    from .netlink import pin_path  # pyroute2 itself is imported only where used
    from .resources.state import StateStore

    cid = str(state["id"])
    store = StateStore(state_dir)
    if store.load(cid).empty() and not os.path.lexists(pin_path(cid)):
        return [], []
    from . import api
    from .container import Container

    try:
        container = Container.from_oci_state(state)
    except ToolError:  # the bundle may be gone after a stop: the id is enough
        container = Container(id=cid, name=cid, engine=None, status="stopped", pid=0,
                              bundle=state.get("bundle"))
    return api.restore(container, store)


def _plain_id(cid: str) -> bool:
    """``state._ID_RE`` ([A-Za-z0-9][A-Za-z0-9_.+-]{0,254}) without importing state."""
    return (0 < len(cid) <= 255 and cid.isascii() and cid[0].isalnum()
            and all(c.isalnum() or c in "_.+-" for c in cid))


def nothing_saved(state: dict[str, Any], state_dir: str) -> bool:
    """Fast path: no record and no KERNEL_MODULES in the spec's env.

    Reads only the OCI spec; not even the state module is imported (an id
    the store would refuse is left to the slow path, which says so)."""
    cid = str(state["id"])
    if not _plain_id(cid) or os.path.exists(os.path.join(state_dir, cid, "state.json")):
        return False
    config = os.path.join(str(state["bundle"]), "config.json")
    try:
        with open(config, "rb") as f:
            spec = json_loads(f.read())
        env = spec["process"].get("env", []) or []
    except FileNotFoundError:
        raise ToolError(f"bundle {state['bundle']} has no config.json") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ToolError(f"cannot read {config}: {err}") from None
    return not any(str(e).startswith("KERNEL_MODULES=") for e in env)


def main(argv: list[str] | None = None) -> None:
    if argv is None:
        argv = sys.argv[1:]
    args = quick_args(argv) or parse_args(argv)
    try:
        state = read_oci_state(sys.stdin)
        if args.state == "poststart" or (args.state == "prestart"
                                         and nothing_saved(state, args.state_dir)):
            sys.exit(0)
        from . import log as logsetup

        logsetup.setup(debug=args.debug, logfile=args.log, stderr=True, defer=True)
        log = _log()
        if args.state == "prestart":
            for line in prestart(state, args.state_dir):
                log.info("%s: %s", state["id"], line)
        elif args.state == "poststop":
            done, errors = poststop(state, args.state_dir)
            for line in done:
                log.info("%s: %s", state["id"], line)
            if errors:
                raise ToolError("; ".join(errors))
    except Exception as err:  # noqa: BLE001 - one line, no traceback (unless --debug)
        if args.debug:
            _log().exception("hook failed")
        from .errors import render

        for line in render(err, prefix=f"syscontainer-hooks {args.state}", hint_inline=True):
            print(line, file=sys.stderr)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
