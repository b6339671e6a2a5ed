"""add-nic, remove-nic, list-nic, update-nic, add-route, remove-route, list-route."""

from __future__ import annotations

import typer

from . import Container, Format, Pretty, UpdateConfigOnly, app, change, handles, options, show


@app.command("add-nic")
@handles("add network interface")
def add_nic(
    container: Container,
    type: str = typer.Option(..., "--type", help="veth or eth"),
    name: str = typer.Option(..., "--name", help="[HOST:]CTR interface names; an eth needs HOST"),
    ip: str = typer.Option(None, "--ip", help="address with prefix length, IPv4 or IPv6"),
    mac: str = typer.Option(None, "--mac", help="MAC address (veth only: an eth keeps its own)"),
    bridge: str = typer.Option(None, "--bridge",
                               help="Linux or Open vSwitch bridge for the veth's host end"),
    mtu: str = typer.Option("1500", "--mtu", help="68-65535"),
    qlen: str = typer.Option("1000", "--qlen", help="transmit queue length"),
    update_config_only: UpdateConfigOnly = False,
    force: bool = typer.Option(False, "--force",
                               help="take an eth that is in use on the host or saved for "
                                    "another container"),
) -> None:
    """Add a veth pair or a host NIC to a container."""
    from ..resources import nic

    spec = nic.NicSpec.parse(type=type, name=name, ip=ip, mac=mac, bridge=bridge, mtu=mtu,
                             qlen=qlen)
    change(container, lambda c, record: nic.add_nic(
        c, record, spec, label=container, update_config_only=update_config_only, force=force,
        store=options().store))


@app.command("remove-nic")
@handles("remove network interface")
def remove_nic(
    container: Container,
    type: str = typer.Option(None, "--type", help="veth or eth"),
    name: str = typer.Option(..., "--name", help="[HOST:]CTR"),
) -> None:
    """Remove a NIC: a veth is deleted, a host NIC goes back to the host."""
    from ..resources import nic

    kind = nic.NicType.parse(type) if type else None
    names = nic.NicName.parse(name)
    change(container, lambda c, record: nic.remove_nic(
        c, record, names, kind, label=container))


@app.command("update-nic")
@handles("update network interface")
def update_nic(
    container: Container,
    name: str = typer.Option(..., "--name", help="the container-side interface name"),
    ip: str = typer.Option(None, "--ip", help="new address with prefix length, IPv4 or IPv6"),
    mac: str = typer.Option(None, "--mac", help="new MAC address (veth only)"),
    bridge: str = typer.Option(None, "--bridge", help="move the veth's host end to this bridge"),
    mtu: str = typer.Option(None, "--mtu", help="68-65535"),
    qlen: str = typer.Option(None, "--qlen", help="transmit queue length"),
    update_config_only: UpdateConfigOnly = False,
) -> None:
    """Change ip, mac, bridge, mtu or qlen of a NIC added before."""
    from ..resources import nic

    upd = nic.NicUpdate.parse(name=name, ip=ip, mac=mac, bridge=bridge, mtu=mtu, qlen=qlen)
    change(container, lambda c, record: nic.update_nic(
        c, record, upd, label=container, update_config_only=update_config_only))


@app.command("list-nic")
@handles("list network interfaces")
def list_nic(
    container: Container,
    pretty: Pretty = False,
    filter: str = typer.Option(None, "--filter", "-f",
                               help='e.g. \'{"Ip":"10.0.0.2/24","Mtu":1500}\''),
    format: Format = "table",
) -> None:
    """List the NICs added to a container."""
    from ..resources import nic

    nic.parse_filter(filter, nic.FIELDS)
    show(container, lambda record: nic.list_nics(record, filter), nic.COLUMNS, fmt=format,
         pretty=pretty, what="NICs")


@app.command("add-route")
@handles("add route")
def add_route(
    container: Container,
    routes: str = typer.Argument(..., help='[{"dest":…,"src":…,"gw":…,"dev":…}]'),
    update_config_only: UpdateConfigOnly = False,
) -> None:
    """Add routes to a container; an empty dest is the default route."""
    from ..resources import route

    specs = route.parse_routes(routes)
    change(container, lambda c, record: route.add_routes(
        c, record, specs, label=container, update_config_only=update_config_only))


@app.command("remove-route")
@handles("remove route")
def remove_route(
    container: Container,
    routes: str = typer.Argument(..., help="routes as for add-route; empty fields match any"),
    update_config_only: UpdateConfigOnly = False,
) -> None:
    """Remove routes added before."""
    from ..resources import route

    patterns = route.parse_routes(routes, pattern=True)
    change(container, lambda c, record: route.remove_routes(
        c, record, patterns, label=container, update_config_only=update_config_only))


@app.command("list-route")
@handles("list routes")
def list_route(
    container: Container,
    pretty: Pretty = False,
    filter: str = typer.Option(None, "--filter", "-f",
                               help='e.g. \'{"dest":"10.1.0.0/16","gw":"10.0.0.1"}\''),
    format: Format = "table",
) -> None:
    """List the routes added to a container."""
    from ..resources import route

    route.parse_filter(filter, route.KEYS)
    show(container, lambda record: route.list_routes(record, filter), route.COLUMNS,
         fmt=format, pretty=pretty, what="Routes")
