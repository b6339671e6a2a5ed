"""Network interfaces of a container: add-nic, remove-nic, update-nic,
list-nic, and the hooks' re-plugging and returning.

The model is in :mod:`.nicspec`, the plumbing in :mod:`.veth` (veth pairs
and bridges) and :mod:`.eth` (physical NICs moved in and out); netlink
mechanics are in :mod:`syscontainer_tools.netlink`.  Every step pushes its
undo on an ``ExitStack``: a failure half-way leaves the host and the
container as they were.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator, Sequence

from .. import netlink, undo
from ..errors import Conflict, NotFound, SpecError, ToolError
from ..log import get_logger
from . import eth, veth
from .filters import parse_filter
from .nicspec import (
    COLUMNS,
    FIELDS,
    MAX_ETH,
    Nic,
    NicName,
    NicType,
    NicUpdate,
    check_v6_mtu,
    rows,
)
from .routespec import RouteSpec, removed_line

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from ..container import Container
    from ..rtnl import Handle as IPRoute
    from .state import Record, StateStore

log = get_logger(__name__)

__all__ = ["COLUMNS", "FIELDS", "Nic", "NicName", "NicType", "NicUpdate", "parse_filter",
           "add_nic", "remove_nic", "update_nic", "list_nics", "find_nic", "reapply",
           "pin_netns", "poststop"]


def list_nics(record: Record, filter_json: str | None = None) -> list[dict[str, object]]:
    """list-nic's rows: the saved NICs matching every non-empty field of ``filter_json``."""
    return rows(record.nics, filter_json)


def check_conflicts(nic: Nic, others: Sequence[Nic]) -> None:
    """A new (or changed) NIC against the container's other saved NICs."""
    for other in others:
        if other.ctr_name == nic.ctr_name:
            raise Conflict(f"the container already has a network interface named "
                           f"{nic.ctr_name} ({other.type.value}, host {other.host_name})")
        if nic.host_name and other.host_name == nic.host_name:
            raise Conflict(f"host interface {nic.host_name} is already added to the "
                           f"container as {other.ctr_name}")
        if nic.mac and other.mac.lower() == nic.mac:
            raise Conflict(f"mac {nic.mac} is already used by {other.ctr_name}")
        if _same_address(nic.ip, other.ip):
            raise Conflict(f"ip {nic.ip} is already used by {other.ctr_name} ({other.ip})")


def _same_address(a: str, b: str) -> bool:
    return bool(a and b) and ipaddress.ip_interface(a).ip == ipaddress.ip_interface(b).ip


class Netns:
    """The netlink handles one NIC change needs."""

    def __init__(self, host: IPRoute, ctr_net: IPRoute | None, nsfd: int | None,
                 hostfd: int):
        self.host, self.ctr_net, self.nsfd, self.hostfd = host, ctr_net, nsfd, hostfd

    def plug(self, nic: Nic, stack: contextlib.ExitStack, *, force: bool,
             holder: str | None = None) -> Nic:
        assert self.ctr_net is not None and self.nsfd is not None
        if nic.type is NicType.VETH:
            return veth.plug(self.host, self.ctr_net, self.nsfd, nic, stack)
        return eth.plug(self.host, self.ctr_net, self.nsfd, self.hostfd, nic, stack, force=force,
                        holder=holder)

    def unplug(self, nic: Nic) -> None:
        if nic.type is NicType.VETH:
            veth.unplug(self.host, self.ctr_net, nic)
        else:
            eth.unplug(self.host, self.ctr_net, self.hostfd, self.nsfd, nic)


@contextlib.contextmanager
def live_netns(container: Container, pidfd: int) -> Iterator[Netns]:
    """Handles on the host and in the running container's network namespace."""
    with netlink.container_netns(container, pidfd) as nsfd, netlink.host_netns_fd() as hostfd, \
            netlink.host() as host, netlink.in_netns(nsfd) as ctr_net:
        yield Netns(host, ctr_net, nsfd, hostfd)


@contextlib.contextmanager
def _pinned_netns(container_id: str, pin_dir: str = netlink.PIN_DIR) -> Iterator[Netns]:
    """Handles on the host and, where the prestart hook pinned it, in the
    stopped container's network namespace."""
    with netlink.pinned_netns(container_id, pin_dir) as pinned, \
            netlink.host_netns_fd() as hostfd, netlink.host() as host, \
            contextlib.ExitStack() as handles:
        ctr_net = handles.enter_context(netlink.in_netns(pinned)) if pinned is not None else None
        yield Netns(host, ctr_net, pinned, hostfd)


def _added(ref: str, nic: Nic) -> str:
    return (f"Add network interface ({nic.host_name}) to container "
            f"({ref},{nic.ctr_name}) done")


def _removed(ref: str, nic: Nic) -> str:
    return (f"Remove network interface ({nic.host_name}) from container "
            f"({ref},{nic.ctr_name}) done")


def add_nic(container: Container, record: Record, nic: Nic, *, ref: str,
            update_config_only: bool = False, force: bool = False,
            store: StateStore | None = None) -> list[str]:
    """Add one NIC: live on a running container, saved in ``record.nics``.

    A repeated add of the same NIC is done (re-plugged if it went missing)."""
    live = container.running and not update_config_only
    for saved in record.nics:
        if nic.matches(saved):
            if live:
                with container.init_process() as pidfd, live_netns(container, pidfd) as h:
                    assert h.ctr_net is not None
                    if netlink.link_index(h.ctr_net, saved.ctr_name) is None:
                        with contextlib.ExitStack() as stack:
                            h.plug(saved, stack, force=force)
                            stack.pop_all()
            return [_added(ref, saved)]
    check_conflicts(nic, record.nics)
    holder = None
    if nic.type is NicType.ETH:
        if sum(1 for n in record.nics if n.type is NicType.ETH) >= MAX_ETH:
            raise Conflict(f"the container already has {MAX_ETH} physical NICs, the most "
                           "allowed")
        if store is not None:
            holder = eth.holders(store, container.id, force=force).get(nic.host_name)
            if holder and not force:
                raise Conflict(f"host interface {nic.host_name} is already added to "
                               f"container {holder}", hint="remove it there first")
    if live:
        with container.init_process() as pidfd, live_netns(container, pidfd) as h:
            if not nic.host_name:
                nic = nic.replace(host_name=netlink.free_name(h.host, prefix="veth"))
            with contextlib.ExitStack() as stack:
                nic = h.plug(nic, stack, force=force, holder=holder)
                stack.pop_all()
            if nic.type is NicType.ETH and _runs_poststop(container):
                # a live eth must outlive the container's processes: its netns
                # is pinned now (not only at the next prestart) so that poststop
                # can hand it back, also a virtual link that would die with it
                netlink.pin(container, pidfd)
    elif not nic.host_name:
        nic = nic.replace(host_name=netlink.random_name("veth"))
    record.nics = record.nics + [nic]
    return [_added(ref, nic)]


def _runs_poststop(container: Container) -> bool:
    """Whether syscontainer-hooks runs at poststop for ``container``."""
    from .. import wiring

    return wiring.runs_poststop(container)


def find_nic(record: Record, name: NicName, kind: NicType | None = None) -> Nic:
    for nic in record.nics:
        if (nic.ctr_name == name.ctr and (not name.host or nic.host_name == name.host)
                and (kind is None or nic.type is kind)):
            return nic
    raise NotFound(f"network interface {name}{f' of type {kind.value}' if kind else ''} "
                   "is not added to the container")


def remove_nic(container: Container, record: Record, name: NicName,
               kind: NicType | None = None, *, ref: str) -> list[str]:
    """Remove one NIC: a veth is deleted, an eth goes back to the host as it
    was.  Saved routes through it go too (the kernel drops them with it)."""
    nic = find_nic(record, name, kind)
    if container.running:
        with container.init_process() as pidfd, live_netns(container, pidfd) as h:
            h.unplug(nic)
    else:
        # stopped, poststop not (yet) run: a leftover veth host end goes; a physical
        # NIC comes out of a pinned namespace, or, handed back by the kernel under
        # another name, gets its own name back
        with _pinned_netns(container.id) as h:
            h.unplug(nic)
    gone = [r for r in record.routes if routes_through(r, nic)]
    record.routes = [r for r in record.routes if r not in gone]
    record.nics = [n for n in record.nics if n is not nic]
    return [_removed(ref, nic)] + [removed_line(ref, r) for r in gone]


def routes_through(route: RouteSpec, nic: Nic) -> bool:
    """Whether the saved route goes through ``nic`` (the kernel drops it
    with the NIC, and it could not be re-added at the next start)."""
    if route.dev:
        return route.dev == nic.ctr_name
    if not nic.ip:
        return False
    iface = ipaddress.ip_interface(nic.ip)
    try:
        gw = ipaddress.ip_address(route.gw) if route.gw else None
        src = ipaddress.ip_address(route.src) if route.src else None
    except ValueError:
        return False
    return (gw is not None and gw in iface.network) or (gw is None and src == iface.ip)


def update_nic(container: Container, record: Record, upd: NicUpdate, *, ref: str,
               update_config_only: bool = False) -> list[str]:
    """Change ip/mac/bridge/mtu/qlen of a saved NIC, live where running."""
    old = find_nic(record, NicName("", upd.ctr_name))
    new = old
    lines = []
    cname = old.ctr_name
    if upd.ip is not None:
        new = new.replace(ip=upd.ip)
        lines.append(f"Update IP address for network interface ({cname},{upd.ip}) done")
    if upd.mac is not None:
        if old.is_eth and upd.mac != old.mac:
            raise SpecError(f"{cname} is an eth: it keeps its own MAC address")
        new = new.replace(mac=upd.mac)
        lines.append(f"Update MAC address for network interface ({cname},{upd.mac}) done")
    if upd.bridge is not None:
        if old.is_eth:
            raise SpecError(f"{cname} is an eth: it cannot be attached to a bridge")
        new = new.replace(bridge=upd.bridge)
        lines.append(f"Update Bridge for network interface ({cname},{upd.bridge}) done")
    if upd.mtu is not None:
        new = new.replace(mtu=upd.mtu)
        lines.append(f"Update Mtu for network interface ({cname},{upd.mtu}) done")
    if upd.qlen is not None:
        new = new.replace(qlen=upd.qlen)
        lines.append(f"Update Qlen for network interface ({cname},{upd.qlen}) done")
    check_v6_mtu(new.ip, new.mtu)
    check_conflicts(new, [n for n in record.nics if n is not old])
    if new == old:
        return lines
    if container.running and not update_config_only:
        with container.init_process() as pidfd, live_netns(container, pidfd) as h, \
                contextlib.ExitStack() as stack:
            assert h.ctr_net is not None
            _reconfigure(h.host, h.ctr_net, old, new, stack)
            stack.pop_all()
    record.nics = [new if n is old else n for n in record.nics]
    return lines


def _reconfigure(host: IPRoute, ctr_net: IPRoute, old: Nic, new: Nic,
                 stack: contextlib.ExitStack) -> None:
    cname, hname = old.ctr_name, old.host_name
    msg = netlink.link(ctr_net, cname)
    if msg is None:
        raise NotFound(f"the container has no interface named {cname}")
    if new.bridge != old.bridge:
        veth.bridge_kind(host, new.bridge)
        veth.detach(host, hname, old.bridge)
        undo.push(stack, f"re-attach {hname} to {old.bridge}", veth.reattach, host, hname,
                  old.bridge)
        with contextlib.ExitStack() as inner:
            veth.attach(host, inner, hname, new.bridge)
            stack.push(inner.pop_all())
    for what, attr, nla, before_value, after in (("mtu", "mtu", "IFLA_MTU", old.mtu, new.mtu),
                                                 ("qlen", "txqlen", "IFLA_TXQLEN", old.qlen,
                                                  new.qlen)):
        if after == before_value:
            continue
        before = msg.get(nla)
        netlink.set_link(ctr_net, cname, f"set {what} {after}", **{attr: after})
        undo.push(stack, f"set {what} of {cname} back", netlink.set_link_if_there, ctr_net, cname,
                  **{attr: before})
        if old.type is NicType.VETH:
            hmsg = netlink.link(host, hname)
            if hmsg is not None:
                hbefore = hmsg.get(nla)
                netlink.set_link(host, hname, f"set {what} {after}", **{attr: after})
                undo.push(stack, f"set {what} of {hname} back", netlink.set_link_if_there,
                          host, hname, **{attr: hbefore})
    if new.mac != old.mac:
        before = msg.get("IFLA_ADDRESS")
        netlink.set_mac(ctr_net, cname, new.mac)
        undo.push(stack, f"set mac of {cname} back", netlink.set_link_if_there, ctr_net, cname,
                  address=before)
    if new.ip != old.ip:
        if old.ip:
            netlink.address(ctr_net, "del", cname, old.ip)
            undo.push(stack, f"add address {old.ip} back", netlink.address, ctr_net, "add", cname,
                      old.ip)
        netlink.address(ctr_net, "add", cname, new.ip)
        undo.push(stack, f"delete address {new.ip}", netlink.address, ctr_net, "del", cname, new.ip)


# --- hooks ------------------------------------------------------------------

def reapply(container: Container, pidfd: int, record: Record,
            handles: Netns | None = None) -> list[str]:
    """Prestart: re-create every saved NIC in the container's (new) network
    namespace.  Idempotent: a NIC already there is left alone; a stale veth
    host end of an earlier run is replaced.  All or nothing: a failure takes
    back the NICs this call plugged, then raises.  A NIC whose saved form
    changed on plugging (an eth's host state) is updated in ``record``.
    ``handles`` (of ``live_netns``) saves opening them again."""
    if not record.nics:
        return []
    lines = []
    plugged: list[Nic] = []
    with contextlib.ExitStack() as opened, contextlib.ExitStack() as stack:
        h = handles if handles is not None else opened.enter_context(live_netns(container, pidfd))
        assert h.ctr_net is not None
        for nic in record.nics:
            if netlink.link_index(h.ctr_net, nic.ctr_name) is not None:
                plugged.append(nic)
                continue
            if nic.type is NicType.VETH:
                veth.drop_stale(h.host, nic)
            else:
                eth.recover(h.host, nic)
            plugged.append(h.plug(nic, stack, force=True))
            lines.append(_added(container.name, nic))
        stack.pop_all()
    record.nics = plugged
    return lines


def pin_netns(container: Container, pin_dir: str = netlink.PIN_DIR) -> str:
    """Prestart: bind-mount the container's network namespace to
    ``pin_dir/<id>`` so that poststop can still reach its NICs."""
    with container.init_process() as pidfd:
        return netlink.pin(container, pidfd, pin_dir)


def poststop(container: Container, record: Record, pin_dir: str = netlink.PIN_DIR) -> list[str]:
    """Poststop: physical NICs back to the host under their own names (from
    the pinned namespace, or found by MAC where the kernel returned them),
    veth host ends and OVS ports deleted, then the pin removed.

    "Already gone" is fine; other failures are collected and raised together
    after every NIC was tried."""
    lines: list[str] = []
    errors: list[str] = []
    try:
        with _pinned_netns(container.id, pin_dir) as h:
            for nic in record.nics:
                try:
                    h.unplug(nic)
                    lines.append(_removed(container.name, nic))
                except ToolError as err:
                    errors.append(f"{nic.ctr_name}: {err}")
    finally:
        netlink.unpin(container.id, pin_dir)
    if errors:
        raise ToolError("; ".join(errors))
    return lines
