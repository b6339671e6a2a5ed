"""``lxcfs-toolkit``: serve the Python lxcfs, and keep containers' lxcfs mounts right.

    lxcfs-toolkit [--lxcfs-dir DIR] [--engine E] [--runtime-root R] COMMAND

* ``serve [MOUNTPOINT]``: the FUSE daemon, in the foreground;
* ``remount all|CONTAINER`` (or ``-a``/``-c ID``): after the daemon restarted,
  replace the container's stale lxcfs mounts with live ones; a named
  container without any gets the whole view; ``all`` means every running
  container with lxcfs mounts on the view's targets (stale ones count:
  they are found in /proc/PID/mountinfo, which lists them whatever the daemon's state);
* ``umount all|CONTAINER``: take the lxcfs mounts out again;
* ``check-lxcfs``: exit 0 only when a daemon answers at the lxcfs directory;
* ``prestart``: prepare the lxcfs directory before the daemon starts.

Errors: ``Failed to <action>: <reason>`` on stderr, exit 1.  ``remount all``
and ``umount all`` go through every container, print one ``Failed to`` line
per container that failed, and then exit 1 (the original always exited 0).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from syscontainer_tools.errors import ToolError, as_tool_error, render
from syscontainer_tools.typerapp import (
    DebugOption,
    EngineOption,
    LogOption,
    OptionalText,
    RuntimeRootOption,
    Typer,
    failing_as,
    show_version,
)

app = Typer(
    name="lxcfs-toolkit",
    help="Serve lxcfs and put its /proc view into running containers, or take it out.",
    no_args_is_help=True,
    rich_markup_mode=None,  # click's plain help, as syscontainer-tools: no rich import
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Options:
    lxcfs_dir: str | None = None
    engine: str = "auto"
    runtime_root: str | None = None
    debug: bool = False


_options = Options()
log = logging.getLogger("lxcfs_toolkit.cli")


@app.callback()
def _global(
    lxcfs_dir: Annotated[OptionalText, typer.Option(
        "--lxcfs-dir", envvar="LXCFS_DIR",
        help="lxcfs directory (default: $LXCFS_DIR, else /var/lib/lxc/lxcfs)")] = None,
    engine: EngineOption = "auto",
    runtime_root: RuntimeRootOption = None,
    debug: DebugOption = False,
    log: LogOption = None,
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=show_version("lxcfs-toolkit"),
        help="print the version and exit")] = False,
) -> None:
    from syscontainer_tools import log as logsetup

    _options.lxcfs_dir = lxcfs_dir or None
    _options.engine = engine
    _options.runtime_root = runtime_root or None
    _options.debug = debug
    logsetup.setup(debug=debug, logfile=log)


def _fail_line(action: str, message: str, hint: str | None = None) -> None:
    for line in render(ToolError(message, hint=hint), action=action):
        typer.echo(line, err=True)


def _failing_as(action: str) -> contextlib.AbstractContextManager[None]:
    """Library errors -> ``Failed to <action>: <reason>``, exit 1."""
    return failing_as(action, debug=_options.debug)


def _directory() -> str:
    from . import viewmounts

    return viewmounts.lxcfs_dir(_options.lxcfs_dir)


def _seconds(value: str, option: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if not seconds >= 0:
        raise ToolError(f"{option} must be a number of seconds >= 0, not {value!r}")
    return seconds


def _selection(target: str | None, all_: bool, container_id: str | None) -> str | None:
    """None for all, else the container reference; usage errors exit 2."""
    given = [x for x in (target is not None, all_, container_id is not None) if x]
    if not given:
        raise typer.BadParameter("give all, CONTAINER, -a/--all or -c/--container-id ID")
    if len(given) > 1:
        raise typer.BadParameter("give only one of all, CONTAINER, -a/--all, -c/--container-id")
    if all_ or target == "all":
        return None
    ref = container_id if container_id is not None else target
    if not ref:
        raise ToolError("container id or name is empty")
    return ref


# --- finding containers --------------------------------------------------------

def _inspect(candidate: Any) -> Any:
    from syscontainer_tools.engines import module_of
    from syscontainer_tools.errors import NotFound

    try:
        return module_of(candidate.engine).inspect(candidate, _options.runtime_root)
    except NotFound:
        return None      # gone between the listing and now


def containers_with_lxcfs(directory: str, *, wired: bool = False) -> list[Any]:
    """Every running container of the selected engine(s) that has lxcfs mounts
    on the view's targets, live or stale (read from /proc/PID/mountinfo);
    with ``wired`` also those wired for lxcfs without any mounts (see
    ``lxcfs_toolkit.wired``: a record the hook left, or the hook in its config)."""
    from concurrent.futures import ThreadPoolExecutor

    from syscontainer_tools.engines import Engine, list_all

    from . import viewmounts
    from . import wired as wiring

    records = wiring.recorded(directory) if wired else set()

    candidates = list_all(Engine.parse(_options.engine), _options.runtime_root)
    if not candidates:
        return []
    # the threads end with the pool, before anything forks into a container
    with ThreadPoolExecutor(max_workers=min(16, len(candidates))) as pool:
        found = list(pool.map(_inspect, candidates))
    out = []
    for container in found:
        if container is None or not container.running:
            continue
        if wired and (container.id in records or wiring.hooked(container.spec, directory)):
            out.append(container)
            continue
        try:
            if viewmounts.container_lxcfs_mounts(container.pid, directory):
                out.append(container)
        except OSError:
            continue     # the init exited meanwhile
    return out


def _find(ref: str) -> Any:
    from syscontainer_tools.engines import Engine, find

    container = find(ref, Engine.parse(_options.engine), _options.runtime_root)
    if not container.running:
        raise ToolError(f"container {ref} is not running (status {container.status})")
    return container


def _each(action: str, containers: list[Any], fn: Any) -> None:
    """Run ``fn(container, pidfd)`` for each; one failure does not stop the rest."""
    failed = []
    for container in containers:
        try:
            with container.init_process() as pidfd:
                line = fn(container, pidfd)
        except Exception as err:  # noqa: BLE001 - reported per container
            if _options.debug:
                traceback.print_exc()
            tool = as_tool_error(err)
            _fail_line(tool.action or action, f"container {container.id}: {tool.reason}",
                       tool.hint)
            failed.append(container.id)
            continue
        typer.echo(line)
    if failed:
        if len(containers) > 1:
            typer.echo(f"Failed to {action}: {len(failed)} of {len(containers)} containers "
                       f"failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)


# --- commands ----------------------------------------------------------------

@app.command("serve")
def serve(
    mountpoint: Annotated[OptionalText, typer.Argument(
        help="where to mount (default: the lxcfs directory)")] = None,
) -> None:
    """Mount the Python lxcfs and serve it in the foreground until SIGTERM/SIGINT."""
    with _failing_as("serve lxcfs"):
        target = mountpoint or _directory()
        from . import server

        server.serve(target)


# the selection remount and umount share (the original's -a/--all, -c/--container-id too)
Target = Annotated[OptionalText, typer.Argument(
    metavar="all|CONTAINER", help="every running container with lxcfs mounts, or one")]
All = Annotated[bool, typer.Option("-a", "--all",
                                   help="every running container with lxcfs mounts")]
ContainerId = Annotated[OptionalText, typer.Option("-c", "--container-id", help="one container")]


@app.command("remount")
def remount(
    target: Target = None,
    all_: All = False,
    container_id: ContainerId = None,
    wait: Annotated[str, typer.Option(
        "--wait", help="seconds to wait for the daemon to answer")] = "15",
) -> None:
    """Replace stale lxcfs mounts (the daemon restarted) with live ones, in place."""
    from . import viewmounts

    action = "remount lxcfs"
    with _failing_as(action):
        ref = _selection(target, all_, container_id)
        directory = _directory()
        dmn = viewmounts.wait_daemon(directory, _seconds(wait, "--wait"))
        containers = (containers_with_lxcfs(directory, wired=True) if ref is None
                      else [_find(ref)])

    def one(container: Any, pidfd: int) -> str:
        from . import wired

        report = viewmounts.mount_into(container, pidfd, dmn)
        try:
            wired.record(container, directory)
        except OSError as err:
            log.warning("container %s: cannot record it as wired for lxcfs: %s",
                        container.id, err)
        for warning in report.warnings:
            log.warning("container %s: %s", container.id, warning)
        log.info("container %s: mounted %s, replaced %s, live %s", container.id,
                 report.mounted, report.replaced, report.live)
        return f"Remount lxcfs to container({container.id}) done."

    _each(action, containers, one)


@app.command("umount")
def umount(
    target: Target = None,
    all_: All = False,
    container_id: ContainerId = None,
) -> None:
    """Take the lxcfs mounts out of containers: they see the host's values again."""
    from . import viewmounts

    action = "umount lxcfs"
    with _failing_as(action):
        ref = _selection(target, all_, container_id)
        directory = _directory()
        containers = containers_with_lxcfs(directory) if ref is None else [_find(ref)]

    def one(container: Any, pidfd: int) -> str:
        report = viewmounts.umount_from(container, pidfd, directory)
        log.info("container %s: unmounted %s", container.id, report.unmounted)
        return f"Umount lxcfs from container({container.id}) done."

    _each(action, containers, one)


@app.command("check-lxcfs")
def check_lxcfs(
    wait: Annotated[str, typer.Option(
        "--wait", help="seconds to wait for the daemon to answer")] = "0",
) -> None:
    """Exit 0 only when an lxcfs daemon answers at the lxcfs directory."""
    from . import viewmounts

    with _failing_as("check lxcfs"):
        directory = _directory()
        viewmounts.wait_daemon(directory, _seconds(wait, "--wait"))
        typer.echo(f"lxcfs is running at {directory}")


@app.command("prestart")
def prestart() -> None:
    """Prepare the lxcfs directory before the daemon starts (systemd ExecStartPre)."""
    from . import viewmounts

    with _failing_as("prestart lxcfs"):
        for line in viewmounts.prestart(_directory()):
            typer.echo(line)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
