"""Veth pairs and bridges: the host end of a container's veth.

A veth pair is created with its peer directly inside the container's
network namespace under the container-side name (one netlink request: no
temporary name, nothing half-made on the host if the name is taken there),
then addressed and brought up; the host end is enslaved to a Linux bridge,
or added as a port of an Open vSwitch bridge, and brought up.  Every step
pushes its undo on the caller's ``ExitStack``.
"""

from __future__ import annotations

import contextlib

from .. import netlink, undo
from ..errors import Conflict, NotFound
from .nicspec import Nic

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from ..rtnl import Handle as IPRoute


def bridge_kind(host: IPRoute, name: str) -> tuple[str, int | None]:
    """("linux", ifindex) or ("ovs", None) for the bridge called ``name``."""
    msg = netlink.link(host, name)
    if msg is not None and netlink.link_kind(msg) == "bridge":
        return "linux", int(msg["index"])
    if netlink.is_ovs_bridge(name):
        return "ovs", None
    if msg is not None:
        raise NotFound(f"bridge {name}: the host interface {name} is neither a Linux bridge "
                       "nor an Open vSwitch bridge")
    raise NotFound(f"bridge {name} not found (neither a Linux bridge nor an Open vSwitch "
                   "bridge)")


def attach(host: IPRoute, stack: contextlib.ExitStack, port: str, bridge: str) -> None:
    """Put ``port`` on ``bridge`` (either kind), its undo on ``stack``."""
    kind, index = bridge_kind(host, bridge)
    if kind == "linux":
        netlink.set_link(host, port, f"attach to bridge {bridge}", master=index)
        undo.push(stack, f"detach {port} from {bridge}", netlink.set_link_if_there, host, port,
                  master=0)
    else:
        netlink.ovs("--may-exist", "add-port", bridge, port)
        undo.push(stack, f"delete OVS port {port}", netlink.ovs, "--if-exists", "del-port",
                  bridge, port)


def detach(host: IPRoute, port: str, bridge: str) -> None:
    """Take ``port`` off ``bridge`` (either kind); not attached is fine."""
    ovs_bridge = netlink.ovs_port_bridge(port)
    if ovs_bridge:
        netlink.ovs("--if-exists", "del-port", ovs_bridge, port)
        return
    if netlink.link_index(host, port) is not None:
        netlink.set_link(host, port, f"detach from bridge {bridge}", master=0)


def reattach(host: IPRoute, port: str, bridge: str) -> None:
    """``attach`` for an undo step (no undo of its own)."""
    with contextlib.ExitStack() as inner:
        attach(host, inner, port, bridge)
        inner.pop_all()


def plug(host: IPRoute, ctr_net: IPRoute, nsfd: int, nic: Nic, stack: contextlib.ExitStack) -> Nic:
    """Create the pair, the container end configured; returns ``nic`` with
    the MAC the kernel chose where none was asked for (so it comes back
    with the same MAC after a restart)."""
    hname, cname = nic.host_name, nic.ctr_name
    if netlink.link_index(host, hname) is not None:
        raise Conflict(f"the host already has an interface named {hname}")
    if netlink.link_index(ctr_net, cname) is not None:
        raise Conflict(f"the container already has an interface named {cname}")
    bridge_kind(host, nic.bridge)  # fail before anything is made
    peer: dict[str, Any] = {"ifname": cname, "net_ns_fd": nsfd, "mtu": nic.mtu,
                            "txqlen": nic.qlen}
    if nic.mac:
        peer["address"] = nic.mac
    with netlink.failing(f"create veth pair {hname} (host) / {cname} (container)"):
        host.link("add", ifname=hname, kind="veth", mtu=nic.mtu, txqlen=nic.qlen, peer=peer)
    undo.push(stack, f"delete {hname}", netlink.delete_link_if_there, host, hname)
    if not nic.mac:
        link = ctr_net.get_links(ifname=cname)
        nic = nic.replace(mac=str(link[0].get("IFLA_ADDRESS") or "") if link else "")
    if nic.ip:
        netlink.address(ctr_net, "add", cname, nic.ip)
    netlink.set_link(ctr_net, cname, "set link up", state="up")
    attach(host, stack, hname, nic.bridge)
    netlink.set_link(host, hname, "set link up", state="up")
    return nic


def unplug(host: IPRoute, ctr_net: IPRoute | None, nic: Nic) -> None:
    """Delete a veth pair (from the host end, else from the container end)."""
    hname, cname = nic.host_name, nic.ctr_name
    if netlink.link_index(host, hname) is not None:
        detach(host, hname, nic.bridge)
        index = netlink.link_index(host, hname)
        if index is not None:
            with netlink.failing(f"delete {hname}"):
                host.link("del", index=index)
        return
    if netlink.ovs_port_bridge(hname):
        detach(host, hname, nic.bridge)
    if ctr_net is not None:
        inside = netlink.link(ctr_net, cname)
        if inside is not None and netlink.link_kind(inside) == "veth":
            with netlink.failing(f"delete {cname}"):
                ctr_net.link("del", index=int(inside["index"]))


def drop_stale(host: IPRoute, nic: Nic) -> None:
    """Prestart: a veth host end left from an earlier run goes."""
    stale = netlink.link(host, nic.host_name)
    if stale is not None and netlink.link_kind(stale) == "veth":
        unplug(host, None, nic)
