"""``lxcfs-hook``: OCI prestart hook putting the lxcfs view into a starting container.

Reads the OCI state (``id``, ``pid``, ``bundle``) on stdin and mounts the
lxcfs files over the container's /proc files (see ``lxcfs_toolkit.viewmounts``).

Exit status:

* 0 when the view is mounted;
* 0 when no lxcfs daemon answers (none mounted, or a stale mount of a dead
  one): nothing is changed, the container starts on the host's values --
  the graceful degradation the system-container guide asks for -- and the
  reason is logged;
* 1 when a daemon answers but mounting fails: whatever was mounted is
  unmounted again, ``Failed to mount lxcfs: <reason>`` goes to stderr, and
  the runtime fails the start.  A container that silently shows the host's
  memory while lxcfs is up would let its programs size themselves wrong.

argparse, not typer, and only light imports: a hook runs on every start.
"""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("lxcfs_toolkit.hook")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lxcfs-hook",
        description="OCI prestart hook: bind-mount the lxcfs files over the starting "
                    "container's /proc files. Reads the OCI state JSON on stdin.")
    parser.add_argument("--log", metavar="FILE", help="also log to FILE")
    parser.add_argument("--lxcfs-dir", metavar="DIR",
                        help="lxcfs directory (default $LXCFS_DIR or /var/lib/lxc/lxcfs)")
    parser.add_argument("--debug", action="store_true", help="debug logging")
    from syscontainer_tools.hookargs import VersionAction

    parser.add_argument("--version", action=VersionAction, help="print the version and exit")
    return parser


def run(state: dict, directory: str | None) -> list[str]:  # type: ignore[type-arg]
    """Mount the view into the container ``state`` describes; return log lines.

    Raises ``ToolError``/``OSError`` on failure (after rolling back)."""
    from syscontainer_tools.container import Container

    from . import viewmounts

    directory = viewmounts.lxcfs_dir(directory)
    container = Container.from_oci_state(state)  # "creating" (runc's prestart) counts as running
    _record(container, directory)   # wired, view or not: remount all gives it the view later
    try:
        dmn = viewmounts.daemon(directory)
    except viewmounts.NotAnswering as err:
        return [f"container {container.id}: lxcfs not mounted, it sees the host's /proc "
                f"values: {err.message}"]
    with container.init_process() as pidfd:
        try:
            report = viewmounts.mount_into(container, pidfd, dmn)
        except viewmounts.NotAnswering as err:
            return [f"container {container.id}: lxcfs not mounted, it sees the host's /proc "
                    f"values: {err.message}"]
    lines = [f"container {container.id}: mounted {path}" for path in report.mounted]
    lines += [f"container {container.id}: replaced {path}" for path in report.replaced]
    lines += [f"container {container.id}: {path} already live" for path in report.live]
    lines += [f"container {container.id}: {w}" for w in report.warnings]
    return lines


def _record(container: object, directory: str) -> None:
    from . import wired

    try:
        wired.record(container, directory)
    except OSError as err:
        log.warning("cannot record container %s as wired for lxcfs: %s",
                    getattr(container, "id", "?"), err)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from syscontainer_tools import log as logsetup
    from syscontainer_tools.errors import ToolError, render

    logsetup.setup(debug=args.debug, logfile=args.log)
    for handler in logging.getLogger().handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.addFilter(lambda record: not getattr(record, "file_only", False))
    try:
        from syscontainer_tools.hooks import read_oci_state

        for line in run(read_oci_state(sys.stdin), args.lxcfs_dir):
            (log.warning if "not mounted" in line or "cannot" in line else log.info)(line)
    except (ToolError, OSError) as err:
        log.debug("lxcfs-hook failed", exc_info=True)
        # stderr gets the contract's line (the runtime shows it); the log file the same
        for line in render(err, action="mount lxcfs"):
            log.error("%s", line, extra={"file_only": True})
            print(line, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
