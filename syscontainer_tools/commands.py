"""What the changing commands of ``syscontainer-tools`` do, given their
parsed values: parse the specs, call the library, print the result lines.

Both front ends call these: the typer program (``cli/``, for everything)
and ``quickcli`` (well-formed invocations of the changing commands, without
importing typer).  So a command's output, and the failure line it ends with,
is the same whichever front end read its arguments.  Imports nothing heavy:
the resource modules are imported by the command that needs them.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: importing typing costs the fast path
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterable
    from typing import Any, TypeVar

    from .api import Outcome, Tools
    from .resources.devspec import DeviceSpec
    from .resources.qos import QosSpec

    T = TypeVar("T")

LOG = "syscontainer_tools.cli"  # result and failure lines go to --log, not twice to stderr
DEFAULT_STATE_DIR = "/var/lib/syscontainer-tools"


class Options:
    """The global options: where containers are found and state is saved."""

    def __init__(self, engine: str = "auto", runtime_root: str | None = None,
                 state_dir: str = DEFAULT_STATE_DIR, debug: bool = False) -> None:
        self.engine = engine
        self.runtime_root = runtime_root
        self.state_dir = state_dir
        self.debug = debug

    @property
    def tools(self) -> Tools:
        """The library API, pointed where the global options say."""
        from .api import Tools
        from .engines import Engine

        engine = Engine.parse(self.engine)
        return Tools(None if engine is Engine.AUTO else engine, self.runtime_root,
                     self.state_dir)


def echo(line: str, *, err: bool = False) -> None:
    """One line to stdout (or stderr), flushed: what ``typer.echo`` writes
    for text without ANSI escapes."""
    stream = sys.stderr if err else sys.stdout
    stream.write(line + "\n")
    stream.flush()


def failure_lines(err: BaseException, action: str) -> list[str]:
    """``Failed to <action>: <reason>`` (and a hint line), also logged for --log."""
    from .errors import render
    from .log import get_logger

    lines = render(err, action=action)
    get_logger(LOG).error("%s", lines[0])
    return lines


def echo_lines(lines: Iterable[str]) -> None:
    """Print result lines; they also go to the --log file, if any."""
    from .log import get_logger

    log = get_logger(LOG)
    for line in lines:
        echo(line)
        log.info("%s", line)


def not_running_note(container: Any, ref: str) -> None:
    if container.running:
        return
    from . import wiring

    wired = wiring.of(container)
    if wired.prestart:
        echo(f"Container {ref} is not running: the change is saved and applied "
             "when it starts.", err=True)
    else:
        echo(f"Container {ref} is not running: the change is saved, but it is NOT "
             f"applied when it starts: {wired.how}.", err=True)
        if wired.fix:
            echo(f"Hint: to wire it: {wired.fix}", err=True)


def report(outcome: Outcome, ref: str) -> None:
    """Print a changing command's result lines, and say when the container
    was not running (the change is saved; whether it is applied when the
    container starts depends on the hooks being wired)."""
    echo_lines(outcome.lines)
    not_running_note(outcome.container, ref)


# --- devices ------------------------------------------------------------------------

QOS_KEYS = ("weight", "read_bps", "write_bps", "read_iops", "write_iops")


def qos_specs(values: dict[str, list[str] | None], action: str) -> list[QosSpec]:
    from .errors import SpecError
    from .resources.qos import QosKind, QosSpec

    out = []
    for key, texts in values.items():
        for text in texts or []:
            try:
                out.append(QosSpec.parse(QosKind.from_key(key), text))
            except SpecError as err:
                raise err.with_action(action) from None
    return out


def parsed(texts: list[str], parse: Callable[[str], T]) -> list[T]:
    """Each device argument parsed; a bad one fails as ``parse device``."""
    from .errors import SpecError

    try:
        return [parse(text) for text in texts]
    except SpecError as err:
        raise err.with_action("parse device") from None


def device_spec(text: str) -> DeviceSpec:
    """``HOST[:CTR][:PERM]``, its host path checked to be a device."""
    from .resources.blockdev import HostDevice
    from .resources.devspec import DeviceSpec

    spec = DeviceSpec.parse(text)
    HostDevice.probe(spec.host, text)
    return spec


def add_device(opts: Options, container: str, devices: list[str],
               qos: dict[str, list[str] | None], *, follow_partition: bool, force: bool,
               update_config_only: bool) -> None:
    specs = parsed(devices, device_spec)
    limits = qos_specs(qos, "add device")
    report(opts.tools.add_devices(container, specs, qos=limits,
                                  follow_partition=follow_partition, force=force,
                                  update_config_only=update_config_only), container)


def remove_device(opts: Options, container: str, devices: list[str], *,
                  follow_partition: bool) -> None:
    from .resources.devspec import DeviceRef

    refs = parsed(devices, DeviceRef.parse)
    report(opts.tools.remove_devices(container, refs, follow_partition=follow_partition),
           container)


def update_device(opts: Options, container: str, qos: dict[str, list[str] | None]) -> None:
    report(opts.tools.update_devices(container, qos_specs(qos, "update device")), container)


# --- paths ------------------------------------------------------------------------------

def add_path(opts: Options, container: str, paths: list[str], *,
             update_config_only: bool) -> None:
    from .resources.pathspec import parse_all

    report(opts.tools.add_paths(container, parse_all(paths),
                                update_config_only=update_config_only), container)


def remove_path(opts: Options, container: str, paths: list[str]) -> None:
    from .resources.pathspec import parse_all

    report(opts.tools.remove_paths(container, parse_all(paths)), container)


# --- NICs and routes ----------------------------------------------------------------------

def add_nic(opts: Options, container: str, *, type: str, name: str, ip: str | None,
            mac: str | None, bridge: str | None, mtu: str | None, qlen: str | None,
            update_config_only: bool, force: bool) -> None:
    from .resources.nicspec import Nic

    nic = Nic.parse(type=type, name=name, ip=ip, mac=mac, bridge=bridge, mtu=mtu, qlen=qlen)
    report(opts.tools.add_nic(container, nic, update_config_only=update_config_only,
                              force=force), container)


def remove_nic(opts: Options, container: str, *, name: str, type: str | None) -> None:
    from .resources.nicspec import NicName, NicType

    kind = NicType.parse(type) if type else None
    report(opts.tools.remove_nic(container, NicName.parse(name), kind), container)


def add_route(opts: Options, container: str, routes: str, *, update_config_only: bool) -> None:
    from .resources.routespec import parse_routes

    report(opts.tools.add_routes(container, parse_routes(routes),
                                 update_config_only=update_config_only), container)


def remove_route(opts: Options, container: str, routes: str, *,
                 update_config_only: bool) -> None:
    from .resources.routespec import parse_routes

    report(opts.tools.remove_routes(container, parse_routes(routes, pattern=True),
                                    update_config_only=update_config_only), container)


class Failing:
    """``with Failing(action, debug)``: any error of the block (an
    ``Exception``, not SystemExit or Ctrl-C) becomes ``Failed to <action>:
    <reason>`` on stderr and exit status 1; with ``debug`` the traceback
    comes first.  What ``typerapp.failing_as`` does for the typer program."""

    def __init__(self, action: str, *, debug: bool) -> None:
        self.action = action
        self.debug = debug

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, err: Any, tb: Any) -> None:
        if err is None or not isinstance(err, Exception):
            return
        if self.debug:
            import traceback

            traceback.print_exception(kind, err, tb)
        for line in failure_lines(err, self.action):
            echo(line, err=True)
        raise SystemExit(1)
