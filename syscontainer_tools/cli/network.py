"""add-nic, remove-nic, list-nic, update-nic, add-route, remove-route, list-route."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Tools

from .. import commands
from . import Container, Format, Pretty, UpdateConfigOnly, command, options, report, show

_Text = Optional[str]
Ip = Annotated[_Text, typer.Option("--ip", help="address with prefix length, IPv4 or IPv6")]
Mtu = Annotated[_Text, typer.Option("--mtu", help="68-65535")]
Qlen = Annotated[_Text, typer.Option("--qlen", help="transmit queue length")]
Filter = Annotated[_Text, typer.Option("--filter", "-f", help="JSON object of column: value")]
RoutesJson = Annotated[str, typer.Argument(help='[{"dest":…,"src":…,"gw":…,"dev":…}]')]


@command("add-nic", "add network interface")
def add_nic(
    container: Container,
    type: Annotated[str, typer.Option("--type", help="veth or eth")],
    name: Annotated[str, typer.Option(
        "--name", help="[HOST:]CTR interface names; an eth needs HOST")],
    ip: Ip = None,
    mac: Annotated[_Text, typer.Option(
        "--mac", help="MAC address (veth only: an eth keeps its own)")] = None,
    bridge: Annotated[_Text, typer.Option(
        "--bridge", help="Linux or Open vSwitch bridge for the veth's host end")] = None,
    mtu: Mtu = "1500",
    qlen: Qlen = "1000",
    update_config_only: UpdateConfigOnly = False,
    force: Annotated[bool, typer.Option(
        "--force", help="take an eth that is in use on the host or saved for another "
                        "container")] = False,
) -> None:
    """Add a veth pair or a host NIC to a container.

    Needs root.

    Example: syscontainer-tools add-nic web1 --type veth --name eth1 --ip 10.0.0.2/24
    --bridge br0
    """
    commands.add_nic(options(), container, type=type, name=name, ip=ip, mac=mac, bridge=bridge,
                     mtu=mtu, qlen=qlen, update_config_only=update_config_only, force=force)


@command("remove-nic", "remove network interface")
def remove_nic(
    container: Container,
    name: Annotated[str, typer.Option("--name", help="[HOST:]CTR")],
    type: Annotated[_Text, typer.Option("--type", help="veth or eth")] = None,
) -> None:
    """Remove a NIC: a veth is deleted, a host NIC goes back to the host.

    Needs root.

    Example: syscontainer-tools remove-nic web1 --type veth --name eth1
    """
    commands.remove_nic(options(), container, name=name, type=type)


@command("update-nic", "update network interface")
def update_nic(
    container: Container,
    name: Annotated[str, typer.Option("--name", help="the container-side interface name")],
    ip: Ip = None,
    mac: Annotated[_Text, typer.Option("--mac", help="new MAC address (veth only)")] = None,
    bridge: Annotated[_Text, typer.Option(
        "--bridge", help="move the veth's host end to this bridge")] = None,
    mtu: Mtu = None,
    qlen: Qlen = None,
    update_config_only: UpdateConfigOnly = False,
) -> None:
    """Change ip, mac, bridge, mtu or qlen of a NIC added before.

    Needs root.

    Example: syscontainer-tools update-nic web1 --name eth1 --mtu 1400
    """
    from ..resources.nicspec import NicUpdate

    upd = NicUpdate.parse(name=name, ip=ip, mac=mac, bridge=bridge, mtu=mtu, qlen=qlen)
    report(options().tools.update_nic(container, upd, update_config_only=update_config_only),
           container)


@command("add-route", "add route")
def add_route(
    container: Container,
    routes: RoutesJson,
    update_config_only: UpdateConfigOnly = False,
) -> None:
    """Add routes to a container; an empty dest is the default route.

    Needs root.

    Example: syscontainer-tools add-route web1 '[{"dest":"10.1.0.0/16","gw":"10.0.0.1"}]'
    """
    commands.add_route(options(), container, routes, update_config_only=update_config_only)


@command("remove-route", "remove route")
def remove_route(
    container: Container,
    routes: Annotated[str, typer.Argument(
        help="routes as for add-route; empty fields match any")],
    update_config_only: UpdateConfigOnly = False,
) -> None:
    """Remove routes added before.

    Needs root.

    Example: syscontainer-tools remove-route web1 '[{"dest":"10.1.0.0/16"}]'
    """
    commands.remove_route(options(), container, routes, update_config_only=update_config_only)


def _filtered_list(name: str, action: str, what: str, example: str, model: str,
                   lister: Callable[[Tools, str, str | None], list[dict[str, Any]]]) -> None:
    """Register list-nic or list-route: the saved rows matching ``--filter``.
    ``model`` names the resources module with FILTER_KEYS and COLUMNS
    (imported when the command runs, so --help stays fast)."""

    def list_saved(container: Container, pretty: Pretty = False, filter: Filter = None,
                   format: Format = "table") -> None:
        import importlib

        from ..resources.filters import parse_filter

        spec = importlib.import_module(f"..resources.{model}", __package__)
        parse_filter(filter, spec.FILTER_KEYS)  # a bad filter fails before the lookup
        show(lister(options().tools, container, filter), spec.COLUMNS, fmt=format,
             pretty=pretty, title=f"{what} of {container}")

    list_saved.__doc__ = (f"List the {what} added to a container.\n\n"
                          f"Needs root (the saved state is root's).\n\nExample: {example}\n")
    command(name, action)(list_saved)


_filtered_list("list-nic", "list network interfaces", "NICs",
               """syscontainer-tools list-nic -f '{"Ip":"10.0.0.2/24","Mtu":1500}' web1""",
               "nicspec", lambda tools, ref, f: tools.list_nics(ref, f))
_filtered_list("list-route", "list routes", "routes",
               """syscontainer-tools list-route -f '{"dest":"10.1.0.0/16"}' web1""",
               "routespec", lambda tools, ref, f: tools.list_routes(ref, f))
