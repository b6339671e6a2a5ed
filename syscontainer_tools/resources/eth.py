"""Physical NICs ("eth"): a host interface moved into a container and back.

Into the container: brought down, renamed to a temporary name (the
container may already use its host name), moved, renamed to the
container-side name, configured.  Its host state (MTU, queue length, up or
down, addresses) is saved, so that remove-nic and poststop give it back as
it was: same name, same MTU, same state, no container address left on it.

Renames always happen while the link is down, in a request of their own:
kernels before live renaming (6.1, say) refuse to rename a link that is up.

A NIC belongs to one container at a time: ``holders()`` reads every other
container's record; one that cannot be read is an error (``--force`` takes
the interface anyway, with a warning), never silently passed over.
"""

from __future__ import annotations

import _socket  # socket's C half: socket.py's enum conversions cost start-up
import contextlib

from .. import netlink, undo
from ..errors import Conflict, NotFound, SpecError, ToolError
from ..log import get_logger
from .nicspec import HostState, Nic, NicType

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from ..rtnl import Handle as IPRoute
    from .state import StateStore

log = get_logger(__name__)

IFF_LOOPBACK = 0x8


def holders(store: StateStore, exclude: str, *, force: bool = False) -> dict[str, str]:
    """{host interface: container id} of every eth saved for another container."""
    found: dict[str, str] = {}
    for cid in store.ids():
        if cid == exclude:
            continue
        try:
            other = store.peek(cid)
        except ToolError as err:
            if not force:
                raise Conflict(f"cannot tell which physical NICs container {cid} holds: {err}",
                               hint="repair or move away that record, or add --force") from None
            log.warning("ignoring the unreadable record of container %s (--force): %s", cid,
                        err)
            continue
        for nic in other.nics:
            if nic.type is NicType.ETH and nic.host_name:
                found[nic.host_name] = cid
    return found


def _uses_default_route(host: IPRoute, index: int) -> bool:
    for family in (_socket.AF_INET, _socket.AF_INET6):
        for route in host.get_routes(family=family, table=254):
            if route["dst_len"] != 0 or route.get("RTA_DST") not in (None, "0.0.0.0", "::"):
                continue
            oifs = {route.get("RTA_OIF")}
            for hop in route.get("RTA_MULTIPATH") or []:
                oifs.add(hop["oif"])
            if index in oifs:
                return True
    return False


def _check(host: IPRoute, nic: Nic, msg: Any, force: bool, holder: str | None) -> None:
    name = nic.host_name
    if msg.get("IFLA_ADDRESS") and nic.mac and nic.mac != msg.get("IFLA_ADDRESS"):
        raise SpecError(f"an eth keeps its own MAC address: {name} has "
                        f"{msg.get('IFLA_ADDRESS')}, not {nic.mac} (leave out --mac)")
    if msg["flags"] & IFF_LOOPBACK:
        raise SpecError(f"{name} is the loopback interface")
    if force:
        return
    hint = "add --force to take it anyway"
    if holder:
        raise Conflict(f"host interface {name} is saved for container {holder}", hint=hint)
    if msg.get("IFLA_MASTER"):
        raise Conflict(f"host interface {name} is a port of another interface "
                       f"(index {msg.get('IFLA_MASTER')})", hint=hint)
    if _uses_default_route(host, int(msg["index"])):
        raise Conflict(f"host interface {name} carries the host's default route", hint=hint)
    addrs = netlink.global_addrs(host, int(msg["index"]))
    if addrs:
        raise Conflict(f"host interface {name} is in use: it has address "
                       f"{', '.join(addrs)}", hint=hint)


def plug(host: IPRoute, ctr_net: IPRoute, nsfd: int, hostfd: int, nic: Nic,
         stack: contextlib.ExitStack, *, force: bool, holder: str | None = None) -> Nic:
    """Move the host interface into the container; returns ``nic`` with its
    MAC and host state, as saved."""
    hname, cname = nic.host_name, nic.ctr_name
    msg = netlink.link(host, hname)
    if msg is None:
        where = f" (it is saved for container {holder})" if holder else ""
        raise NotFound(f"host interface {hname} not found on the host{where}")
    _check(host, nic, msg, force, holder)
    if netlink.link_index(ctr_net, cname) is not None:
        raise Conflict(f"the container already has an interface named {cname}")
    index = int(msg["index"])
    saved = HostState(msg.get("IFLA_MTU"), msg.get("IFLA_TXQLEN"),
                      bool(msg["flags"] & netlink.IFF_UP),
                      tuple(netlink.global_addrs(host, index)))
    tmp = netlink.free_name(host, ctr_net, prefix="sct")
    # last undo: the host state as it was
    undo.push(stack, f"restore {hname} on the host", restore_host, host, hname, saved)
    netlink.down_and_rename(host, index, tmp, f"prepare {hname}")
    undo.push(stack, f"rename {tmp} back to {hname}", netlink.rename_if_there, host, tmp, hname)
    with netlink.failing(f"move {hname} into the container"):
        host.link("set", index=index, net_ns_fd=nsfd)
    undo.push(stack, f"move {hname} back to the host", netlink.set_link_if_there, ctr_net, tmp,
              net_ns_fd=hostfd)
    netlink.set_link(ctr_net, tmp, f"rename to {cname}", ifname=cname)
    undo.push(stack, f"rename {cname} back to {tmp}", netlink.rename_if_there, ctr_net, cname, tmp)
    netlink.set_link(ctr_net, cname, "set mtu and qlen", mtu=nic.mtu, txqlen=nic.qlen)
    if nic.ip:
        netlink.address(ctr_net, "add", cname, nic.ip)
    netlink.set_link(ctr_net, cname, "set link up", state="up")
    # the MAC as it is now, inside: udevd may have replaced a new virtual
    # link's random MAC (MACAddressPolicy=persistent) after ``msg`` was read
    now = netlink.link(ctr_net, cname)
    mac = (now if now is not None else msg).get("IFLA_ADDRESS")
    return nic.replace(mac=str(mac or ""), host_state=saved)


def restore_host(host: IPRoute, name: str, saved: HostState | None) -> None:
    """Give a returned eth its host MTU, queue length, addresses and state
    (each step tried; failures logged)."""
    if saved is None:
        return
    attrs = {k: v for k, v in (("mtu", saved.mtu), ("txqlen", saved.qlen)) if v is not None}
    if attrs:
        undo.quietly(f"restore {attrs} of {name}", netlink.set_link_if_there, host, name,
                     **attrs)
    for cidr in saved.addrs:
        undo.quietly(f"restore address {cidr} of {name}", netlink.address, host, "add", name,
                     cidr)
    if saved.up:
        undo.quietly(f"set {name} up", netlink.set_link_if_there, host, name, state="up")


def unplug(host: IPRoute, ctr_net: IPRoute | None, hostfd: int, nsfd: int | None,
           nic: Nic) -> None:
    """Give an eth back to the host under its own name and as it was."""
    hname, cname = nic.host_name, nic.ctr_name
    inside = netlink.link(ctr_net, cname) if ctr_net is not None else None
    if inside is None or ctr_net is None or nsfd is None:
        recover(host, nic)
        return
    if netlink.link_index(host, hname) is not None:
        raise Conflict(f"cannot give {cname} back as {hname}: the host has another "
                       f"interface named {hname} now")
    tmp = netlink.free_name(host, ctr_net, prefix="sct")
    index = int(inside["index"])
    with contextlib.ExitStack() as stack:
        was_up = bool(inside["flags"] & netlink.IFF_UP)
        netlink.down_and_rename(ctr_net, index, tmp, f"prepare {cname}")
        undo.push(stack, f"rename {tmp} back to {cname}", netlink.rename_if_there, ctr_net, tmp,
                  cname, up=was_up)
        with netlink.failing(f"move {cname} back to the host"):
            ctr_net.link("set", index=index, net_ns_fd=hostfd)
        undo.push(stack, f"move {tmp} back into the container", netlink.set_link_if_there,
                  host, tmp, net_ns_fd=nsfd)
        netlink.set_link(host, tmp, f"rename back to {hname}", ifname=hname)
        stack.pop_all()
    restore_host(host, hname, nic.host_state)


def recover(host: IPRoute, nic: Nic) -> None:
    """The eth is not in the container: find it on the host (a namespace that
    died hands its physical NICs back to the host, maybe under another name)
    by its MAC, and restore its name and state."""
    hname, mac = nic.host_name, nic.mac
    if netlink.link_index(host, hname) is not None or not mac:
        return
    # bridges, bonds and VLANs copy their port's MAC: only plain links count
    found = [m for m in host.get_links()
             if m.get("IFLA_ADDRESS") == mac and netlink.link_kind(m) in (None, "veth")]
    if len(found) != 1:
        log.warning("%s: %d host interfaces have its MAC %s; leaving them alone",
                    hname, len(found), mac)
        return
    msg = found[0]
    current = msg.get("IFLA_IFNAME")
    log.info("found %s on the host as %s (by its MAC %s)", hname, current, mac)
    netlink.down_and_rename(host, int(msg["index"]), hname, f"rename {current} back to {hname}")
    for cidr in netlink.global_addrs(host, int(msg["index"])):
        undo.quietly(f"delete address {cidr} of {hname}", netlink.address, host, "del", hname,
                     cidr)
    restore_host(host, hname, nic.host_state)
