"""Network interfaces of a container: veth pairs and host (physical) NICs.

A **veth** pair is created with its peer directly inside the container's
network namespace under the container-side name (one netlink request: no
temporary name, nothing half-made on the host if the name is taken there),
then addressed and brought up; the host end is enslaved to a Linux bridge,
or added as a port of an Open vSwitch bridge, and brought up.

An **eth** is a host interface moved into the container: brought down,
renamed to a temporary name (the container may already use its host name),
moved, renamed to the container-side name, configured.  Its host state (MTU,
queue length, up/down, addresses) is saved so that remove-nic and poststop
give it back as it was: same name, same MTU, same state, no container
address left on it.

Every step pushes its undo on an ``ExitStack``: a failure half-way leaves
the host and the container as they were.

Saved items (``record["nics"]``) use the original tool's field names, which
list-nic prints and ``--filter`` matches::

    {"Type": "veth", "HostNicName": "vethab12cd34ef", "CtrNicName": "eth1",
     "Ip": "10.0.0.2/24", "Mac": "", "Mtu": 1500, "Qlen": 1000, "Bridge": "br0"}

An eth also carries ``"Host": {"Mtu", "Qlen", "Up", "Addrs"}``, its state on
the host before it moved.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import logging
import os
import re
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import netlink
from ..errors import Conflict, NotFound, SpecError, ToolError
from ..textenum import TextEnum

if TYPE_CHECKING:  # pragma: no cover
    from pyroute2 import IPRoute

    from ..container import Container
    from ..state import Record, StateStore

log = logging.getLogger(__name__)

FIELDS = ("Ip", "Mac", "Mtu", "Qlen", "Type", "Bridge", "HostNicName", "CtrNicName")
COLUMNS = (("Type", "Type"), ("HostNicName", "Host NIC"), ("CtrNicName", "Container NIC"),
           ("Ip", "IP"), ("Mac", "MAC"), ("Mtu", "MTU"), ("Qlen", "Qlen"),
           ("Bridge", "Bridge"))
MAX_ETH = 8
DEFAULT_MTU = 1500
DEFAULT_QLEN = 1000
MIN_MTU, MAX_MTU = 68, 65535
MAX_QLEN = 2**32 - 1
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class NicType(TextEnum):
    VETH = "veth"
    ETH = "eth"

    @classmethod
    def parse(cls, value: str) -> NicType:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise SpecError(f"type {value!r} is not one of veth, eth") from None


# --- values ---------------------------------------------------------------

def parse_ifname(value: str, what: str) -> str:
    problem = netlink.ifname_problem(value)
    if problem:
        raise SpecError(f"{what} {value!r}: {problem}")
    return value


def parse_ip(value: str) -> str:
    """A CIDR interface address, IPv4 or IPv6, in canonical form."""
    text = value.strip()
    if "/" not in text:
        raise SpecError(f"ip {value!r}: give an address with its prefix length "
                        "(CIDR), e.g. 10.0.0.2/24 or fd00::2/64")
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise SpecError(f"ip {value!r}: not an IPv4 or IPv6 address with prefix length "
                        "(CIDR)") from None
    if iface.ip.is_unspecified or iface.ip.is_multicast:
        raise SpecError(f"ip {value!r}: {'an unspecified' if iface.ip.is_unspecified else 'a multicast'}"
                        " address cannot be an interface address")
    return str(iface)


def parse_mac(value: str) -> str:
    text = value.strip().lower().replace("-", ":")
    if not _MAC_RE.match(text):
        raise SpecError(f"mac {value!r}: not a MAC address like 02:42:ac:11:00:02")
    if int(text[:2], 16) & 1:
        raise SpecError(f"mac {value!r}: a multicast address cannot be an interface address")
    if text == "00:00:00:00:00:00":
        raise SpecError(f"mac {value!r}: the all-zero address cannot be an interface address")
    return text


def _parse_int(value: str | int, what: str, low: int, high: int) -> int:
    try:
        number = int(str(value).strip(), 10)
    except ValueError:
        raise SpecError(f"{what} {value!r} is not a whole number") from None
    if not low <= number <= high:
        raise SpecError(f"{what} {number} is out of range ({low}-{high})")
    return number


def parse_mtu(value: str | int) -> int:
    return _parse_int(value, "mtu", MIN_MTU, MAX_MTU)


def parse_qlen(value: str | int) -> int:
    return _parse_int(value, "qlen", 0, MAX_QLEN)


def _check_v6_mtu(ip: str, mtu: int) -> None:
    if ip and ipaddress.ip_interface(ip).version == 6 and mtu < 1280:
        raise SpecError(f"mtu {mtu} is below 1280, the IPv6 minimum, and ip {ip} is IPv6")


@dataclass(frozen=True)
class NicName:
    """``--name [HOST:]CTR``."""

    host: str
    ctr: str

    @classmethod
    def parse(cls, value: str) -> NicName:
        host, sep, ctr = value.strip().rpartition(":")
        if sep and not host:
            raise SpecError(f"name {value!r}: the host part before ':' is empty")
        if not ctr:
            raise SpecError(f"name {value!r}: the container-side name is missing "
                            "(format [HOST:]CTR)")
        if host:
            parse_ifname(host, f"name {value!r}: host name")
        parse_ifname(ctr, f"name {value!r}: container name")
        return cls(host, ctr)


@dataclass(frozen=True)
class NicSpec:
    """What ``add-nic`` asks for."""

    type: NicType
    ctr_name: str
    host_name: str            # "" = generate (veth only)
    ip: str = ""
    mac: str = ""
    bridge: str = ""
    mtu: int = DEFAULT_MTU
    qlen: int = DEFAULT_QLEN

    @classmethod
    def parse(cls, *, type: str, name: str, ip: str | None = None, mac: str | None = None,
              bridge: str | None = None, mtu: str | int | None = None,
              qlen: str | int | None = None) -> NicSpec:
        kind = NicType.parse(type)
        names = NicName.parse(name)
        bridge = (bridge or "").strip()
        if kind is NicType.VETH and not bridge:
            raise SpecError("a veth needs --bridge: the host end is attached to it")
        if kind is NicType.ETH and bridge:
            raise SpecError(f"an eth cannot be attached to a bridge (--bridge {bridge}): "
                            "it is moved into the container")
        if kind is NicType.ETH and not names.host:
            raise SpecError(f"name {name!r}: an eth needs the host interface, HOST:CTR")
        if bridge:
            parse_ifname(bridge, "bridge")
        spec = cls(kind, names.ctr, names.host, parse_ip(ip) if ip else "",
                   parse_mac(mac) if mac else "", bridge,
                   parse_mtu(DEFAULT_MTU if mtu is None else mtu),
                   parse_qlen(DEFAULT_QLEN if qlen is None else qlen))
        _check_v6_mtu(spec.ip, spec.mtu)
        return spec

    def to_item(self) -> dict[str, Any]:
        return {"Type": self.type.value, "HostNicName": self.host_name,
                "CtrNicName": self.ctr_name, "Ip": self.ip, "Mac": self.mac,
                "Mtu": self.mtu, "Qlen": self.qlen, "Bridge": self.bridge}

    def matches(self, item: dict[str, Any]) -> bool:
        """Whether the saved ``item`` is this very NIC (a repeated add)."""
        mine = self.to_item()
        keys = [k for k in FIELDS if k not in ("HostNicName", "Mac")]
        return (all(item.get(k) == mine[k] for k in keys)
                and (not self.host_name or item.get("HostNicName") == self.host_name)
                and (not self.mac or item.get("Mac") == self.mac))


@dataclass(frozen=True)
class NicUpdate:
    """What ``update-nic`` changes; None = keep."""

    ctr_name: str
    ip: str | None = None
    mac: str | None = None
    bridge: str | None = None
    mtu: int | None = None
    qlen: int | None = None

    @classmethod
    def parse(cls, *, name: str, ip: str | None = None, mac: str | None = None,
              bridge: str | None = None, mtu: str | None = None,
              qlen: str | None = None) -> NicUpdate:
        ctr = parse_ifname(name.strip(), "name")
        upd = cls(ctr, parse_ip(ip) if ip else None, parse_mac(mac) if mac else None,
                  parse_ifname(bridge.strip(), "bridge") if bridge else None,
                  parse_mtu(mtu) if mtu else None,
                  parse_qlen(qlen) if qlen else None)
        if all(v is None for v in (upd.ip, upd.mac, upd.bridge, upd.mtu, upd.qlen)):
            raise SpecError("nothing to update: give --ip, --mac, --bridge, --mtu or --qlen")
        return upd


# --- filters and rows ---------------------------------------------------------

def parse_filter(text: str | None, fields: Sequence[str]) -> dict[str, Any]:
    """``--filter JSON`` -> {canonical field: value}; empty values are dropped.

    Keys are matched case-insensitively against ``fields``."""
    if not text or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as err:
        raise SpecError(f"filter is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise SpecError("filter must be a JSON object, e.g. '{\"Ip\": \"10.0.0.2/24\"}'")
    by_lower = {f.lower(): f for f in fields}
    out: dict[str, Any] = {}
    for key, value in data.items():
        field = by_lower.get(str(key).lower())
        if field is None:
            raise SpecError(f"filter key {key!r} is not one of {', '.join(fields)}")
        if value in (None, "", 0):
            continue
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise SpecError(f"filter value of {field!r} must be a string or a number")
        out[field] = value
    return out


def _same_value(field: str, want: Any, have: Any) -> bool:
    if field in ("Mtu", "Qlen"):
        try:
            return int(want) == int(have)
        except (TypeError, ValueError):
            return False
    if field == "Ip":
        try:
            return ipaddress.ip_interface(str(want).strip()) == ipaddress.ip_interface(str(have))
        except ValueError:
            return False
    if field in ("Mac", "Type"):
        return str(want).strip().lower() == str(have).lower()
    return str(want) == str(have)


def list_nics(record: Record, filter_json: str | None = None) -> list[dict[str, Any]]:
    """The saved NICs matching every non-empty field of ``filter_json``."""
    wanted = parse_filter(filter_json, FIELDS)
    rows = []
    for item in record["nics"]:
        if all(_same_value(k, v, item.get(k)) for k, v in wanted.items()):
            rows.append({k: item.get(k, "") for k in FIELDS})
    return rows


# --- record checks ------------------------------------------------------------

def _same_address(a: str, b: str) -> bool:
    return bool(a and b) and ipaddress.ip_interface(a).ip == ipaddress.ip_interface(b).ip


def _check_conflicts(item: dict[str, Any], others: Sequence[dict[str, Any]]) -> None:
    for other in others:
        if other["CtrNicName"] == item["CtrNicName"]:
            raise Conflict(f"the container already has a network interface named "
                           f"{item['CtrNicName']} ({other['Type']}, host {other['HostNicName']})")
        if item["HostNicName"] and other["HostNicName"] == item["HostNicName"]:
            raise Conflict(f"host interface {item['HostNicName']} is already added to the "
                           f"container as {other['CtrNicName']}")
        if item["Mac"] and other.get("Mac", "").lower() == item["Mac"]:
            raise Conflict(f"mac {item['Mac']} is already used by {other['CtrNicName']}")
        if _same_address(item["Ip"], other.get("Ip", "")):
            raise Conflict(f"ip {item['Ip']} is already used by {other['CtrNicName']} "
                           f"({other['Ip']})")


def eth_holders(store: StateStore, exclude: str) -> dict[str, str]:
    """{host interface: container id} of every eth saved for another container.

    Other records are read without their lock: they are replaced atomically,
    and taking their lock while holding ours could deadlock."""
    from ..state import Record

    holders: dict[str, str] = {}
    try:
        entries = list(os.scandir(store.root))
    except FileNotFoundError:
        return holders
    for entry in entries:
        if entry.name == exclude or not entry.is_dir():
            continue
        try:
            with open(store.path(entry.name), encoding="utf-8") as f:
                other = Record.from_json(json.load(f), entry.path)
        except (OSError, ValueError, ToolError):
            continue
        for item in other["nics"]:
            if item.get("Type") == NicType.ETH.value and item.get("HostNicName"):
                holders[str(item["HostNicName"])] = entry.name
    return holders


# --- netlink steps ----------------------------------------------------------

def _lookup(ipr: IPRoute, name: str, where: str) -> int:
    index = netlink.link_index(ipr, name)
    if index is None:
        raise NotFound(f"{where} has no interface named {name}")
    return index


def _set(ipr: IPRoute, name: str, what: str, **attrs: Any) -> None:
    index = _lookup(ipr, name, "the namespace")
    with netlink.failing(f"{what} on {name}"):
        ipr.link("set", index=index, **attrs)


def _set_quiet(ipr: IPRoute, name: str, **attrs: Any) -> None:
    """An undo step: never raises, logs what it could not do."""
    try:
        index = netlink.link_index(ipr, name)
        if index is not None:
            ipr.link("set", index=index, **attrs)
    except Exception as err:  # noqa: BLE001 - undo goes on
        log.warning("undo: set %s on %s failed: %s", attrs, name, err)


def _delete_quiet(ipr: IPRoute, name: str) -> None:
    try:
        index = netlink.link_index(ipr, name)
        if index is not None:
            ipr.link("del", index=index)
    except Exception as err:  # noqa: BLE001
        log.warning("undo: delete %s failed: %s", name, err)


def _addr(ipr: IPRoute, cmd: str, name: str, cidr: str) -> None:
    iface = ipaddress.ip_interface(cidr)
    index = _lookup(ipr, name, "the namespace")
    with netlink.failing(f"{'add' if cmd == 'add' else 'delete'} address {cidr} "
                         f"{'to' if cmd == 'add' else 'of'} {name}"):
        ipr.addr(cmd, index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)


def _addr_quiet(ipr: IPRoute, cmd: str, name: str, cidr: str) -> None:
    try:
        _addr(ipr, cmd, name, cidr)
    except Exception as err:  # noqa: BLE001
        log.warning("undo: %s address %s on %s failed: %s", cmd, cidr, name, err)


def _set_mac(ipr: IPRoute, name: str, mac: str) -> None:
    """Set a MAC; a driver that refuses a live change gets it while down."""
    from pyroute2.netlink.exceptions import NetlinkError

    index = _lookup(ipr, name, "the namespace")
    try:
        ipr.link("set", index=index, address=mac)
        return
    except NetlinkError as err:
        if err.code != errno.EBUSY:
            raise ToolError(f"set mac {mac} on {name}: {os.strerror(err.code)}") from None
    up = bool(ipr.get_links(index)[0]["flags"] & netlink.IFF_UP)
    with netlink.failing(f"set mac {mac} on {name}"):
        ipr.link("set", index=index, state="down")
        try:
            ipr.link("set", index=index, address=mac)
        finally:
            if up:
                ipr.link("set", index=index, state="up")


def _bridge(host: IPRoute, name: str) -> tuple[str, int | None]:
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


def _attach(host: IPRoute, stack: contextlib.ExitStack, port: str, bridge: str) -> None:
    kind, index = _bridge(host, bridge)
    if kind == "linux":
        _set(host, port, f"attach to bridge {bridge}", master=index)
        stack.callback(_set_quiet, host, port, master=0)
    else:
        netlink.ovs("--may-exist", "add-port", bridge, port)
        stack.callback(_ovs_del_quiet, bridge, port)


def _detach(host: IPRoute, port: str, bridge: str) -> None:
    """Take ``port`` off ``bridge`` (either kind); not attached is fine."""
    ovs_bridge = netlink.ovs_port_bridge(port)
    if ovs_bridge:
        netlink.ovs("--if-exists", "del-port", ovs_bridge, port)
        return
    if netlink.link_index(host, port) is not None:
        _set(host, port, f"detach from bridge {bridge}", master=0)


def _ovs_del_quiet(bridge: str, port: str) -> None:
    try:
        netlink.ovs("--if-exists", "del-port", bridge, port)
    except ToolError as err:
        log.warning("undo: %s", err)


def _free_name(*handles: IPRoute, prefix: str) -> str:
    for _ in range(20):
        name = netlink.random_name(prefix)
        if all(netlink.link_index(h, name) is None for h in handles):
            return name
    raise ToolError(f"could not find a free interface name starting with {prefix}")


def _plug_veth(host: IPRoute, ns: IPRoute, nsfd: int, item: dict[str, Any],
               stack: contextlib.ExitStack) -> None:
    hname, cname = item["HostNicName"], item["CtrNicName"]
    if netlink.link_index(host, hname) is not None:
        raise Conflict(f"the host already has an interface named {hname}")
    if netlink.link_index(ns, cname) is not None:
        raise Conflict(f"the container already has an interface named {cname}")
    _bridge(host, item["Bridge"])  # fail before anything is made
    peer: dict[str, Any] = {"ifname": cname, "net_ns_fd": nsfd, "mtu": item["Mtu"],
                            "txqlen": item["Qlen"]}
    if item["Mac"]:
        peer["address"] = item["Mac"]
    with netlink.failing(f"create veth pair {hname} (host) / {cname} (container)"):
        host.link("add", ifname=hname, kind="veth", mtu=item["Mtu"], txqlen=item["Qlen"],
                  peer=peer)
    stack.callback(_delete_quiet, host, hname)
    if not item["Mac"]:
        # keep the MAC the kernel chose: the NIC comes back with it after a restart
        link = ns.get_links(ifname=cname)
        item["Mac"] = str(link[0].get("IFLA_ADDRESS") or "") if link else ""
    if item["Ip"]:
        _addr(ns, "add", cname, item["Ip"])
    _set(ns, cname, "set link up", state="up")
    _attach(host, stack, hname, item["Bridge"])
    _set(host, hname, "set link up", state="up")


def _uses_default_route(host: IPRoute, index: int) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        for route in host.get_routes(family=family, table=254):
            if route["dst_len"] != 0 or route.get("RTA_DST") not in (None, "0.0.0.0", "::"):
                continue
            oifs = {route.get("RTA_OIF")}
            for hop in route.get("RTA_MULTIPATH") or []:
                oifs.add(hop["oif"])
            if index in oifs:
                return True
    return False


def _global_addrs(ipr: IPRoute, index: int) -> list[str]:
    out = []
    for msg in ipr.get_addr(index=index):
        if msg["scope"] == 0:  # RT_SCOPE_UNIVERSE: not link-local, not host
            out.append(f"{msg.get('IFA_ADDRESS')}/{msg['prefixlen']}")
    return out


def _check_eth(host: IPRoute, item: dict[str, Any], msg: Any, force: bool,
               holder: str | None) -> None:
    name = item["HostNicName"]
    if msg.get("IFLA_ADDRESS") and item["Mac"] and item["Mac"] != msg.get("IFLA_ADDRESS"):
        raise SpecError(f"an eth keeps its own MAC address: {name} has "
                        f"{msg.get('IFLA_ADDRESS')}, not {item['Mac']} (leave out --mac)")
    if msg["flags"] & 0x8:  # IFF_LOOPBACK
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
    addrs = _global_addrs(host, int(msg["index"]))
    if addrs:
        raise Conflict(f"host interface {name} is in use: it has address "
                       f"{', '.join(addrs)}", hint=hint)


def _plug_eth(host: IPRoute, ns: IPRoute, nsfd: int, hostfd: int, item: dict[str, Any],
              stack: contextlib.ExitStack, *, force: bool, holder: str | None = None) -> None:
    hname, cname = item["HostNicName"], item["CtrNicName"]
    msg = netlink.link(host, hname)
    if msg is None:
        where = f" (it is saved for container {holder})" if holder else ""
        raise NotFound(f"host interface {hname} not found on the host{where}")
    _check_eth(host, item, msg, force, holder)
    if netlink.link_index(ns, cname) is not None:
        raise Conflict(f"the container already has an interface named {cname}")
    index = int(msg["index"])
    was_up = bool(msg["flags"] & netlink.IFF_UP)
    saved: dict[str, Any] = {"Mtu": msg.get("IFLA_MTU"), "Qlen": msg.get("IFLA_TXQLEN"), "Up": was_up,
             "Addrs": _global_addrs(host, index)}
    tmp = _free_name(host, ns, prefix="sct")
    # last undo: the host state as it was
    stack.callback(_restore_host, host, hname, saved)
    with netlink.failing(f"prepare {hname}"):
        host.link("set", index=index, state="down")
        host.link("set", index=index, ifname=tmp)
    stack.callback(_set_quiet, host, tmp, ifname=hname)
    with netlink.failing(f"move {hname} into the container"):
        host.link("set", index=index, net_ns_fd=nsfd)
    stack.callback(_set_quiet, ns, tmp, net_ns_fd=hostfd)
    _set(ns, tmp, f"rename to {cname}", ifname=cname)
    stack.callback(_set_quiet, ns, cname, state="down", ifname=tmp)
    _set(ns, cname, "set mtu and qlen", mtu=item["Mtu"], txqlen=item["Qlen"])
    if item["Ip"]:
        _addr(ns, "add", cname, item["Ip"])
    _set(ns, cname, "set link up", state="up")
    item["Mac"] = str(msg.get("IFLA_ADDRESS") or "")
    item["Host"] = saved


def _restore_host(host: IPRoute, name: str, saved: dict[str, Any]) -> None:
    """Give a returned eth its host MTU, queue length, addresses and state."""
    attrs = {k: v for k, v in (("mtu", saved.get("Mtu")), ("txqlen", saved.get("Qlen")))
             if v is not None}
    if attrs:
        _set_quiet(host, name, **attrs)
    for cidr in saved.get("Addrs") or []:
        _addr_quiet(host, "add", name, cidr)
    if saved.get("Up"):
        _set_quiet(host, name, state="up")


def _unplug_eth(host: IPRoute, ns: IPRoute | None, hostfd: int, nsfd: int | None,
                item: dict[str, Any]) -> None:
    """Give an eth back to the host under its own name and as it was."""
    hname, cname = item["HostNicName"], item["CtrNicName"]
    saved = item.get("Host") or {}
    inside = netlink.link(ns, cname) if ns is not None else None
    if inside is None:
        _recover_eth(host, item)
        return
    if netlink.link_index(host, hname) is not None:
        raise Conflict(f"cannot give {cname} back as {hname}: the host has another "
                       f"interface named {hname} now")
    tmp = _free_name(host, ns, prefix="sct")
    with contextlib.ExitStack() as stack:
        assert ns is not None and nsfd is not None
        was_up = bool(inside["flags"] & netlink.IFF_UP)
        with netlink.failing(f"prepare {cname}"):
            ns.link("set", index=int(inside["index"]), state="down", ifname=tmp)
        stack.callback(_set_quiet, ns, tmp, ifname=cname, state="up" if was_up else "down")
        with netlink.failing(f"move {cname} back to the host"):
            ns.link("set", index=int(inside["index"]), net_ns_fd=hostfd)
        stack.callback(_set_quiet, host, tmp, net_ns_fd=nsfd)
        _set(host, tmp, f"rename back to {hname}", ifname=hname)
        stack.pop_all()
    _restore_host(host, hname, saved)


def _recover_eth(host: IPRoute, item: dict[str, Any]) -> None:
    """The eth is not in the container: find it on the host (a namespace that
    died hands its physical NICs back to the host, maybe under another name)
    by its MAC, and restore its name and state."""
    hname, mac = item["HostNicName"], item.get("Mac", "")
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
    with netlink.failing(f"rename {current} back to {hname}"):
        host.link("set", index=int(msg["index"]), state="down", ifname=hname)
    for cidr in _global_addrs(host, int(msg["index"])):
        _addr_quiet(host, "del", hname, cidr)
    _restore_host(host, hname, item.get("Host") or {})


def _unplug_veth(host: IPRoute, ns: IPRoute | None, item: dict[str, Any]) -> None:
    """Delete a veth pair (from the host end, else from the container end)."""
    hname, cname = item["HostNicName"], item["CtrNicName"]
    if netlink.link_index(host, hname) is not None:
        _detach(host, hname, item.get("Bridge", ""))
        index = netlink.link_index(host, hname)
        if index is not None:
            with netlink.failing(f"delete {hname}"):
                host.link("del", index=index)
        return
    if netlink.ovs_port_bridge(hname):
        _detach(host, hname, item.get("Bridge", ""))
    if ns is not None:
        inside = netlink.link(ns, cname)
        if inside is not None and netlink.link_kind(inside) == "veth":
            with netlink.failing(f"delete {cname}"):
                ns.link("del", index=int(inside["index"]))


@contextlib.contextmanager
def _handles(container: Container, pidfd: int) -> Iterator[tuple[IPRoute, IPRoute, int, int]]:
    """(host handle, container handle, container netns fd, host netns fd)."""
    with netlink.container_netns(container, pidfd) as nsfd, netlink.host_netns_fd() as hostfd, \
            netlink.host() as host, netlink.in_netns(nsfd) as ns:
        yield host, ns, nsfd, hostfd


def _plug(host: IPRoute, ns: IPRoute, nsfd: int, hostfd: int, item: dict[str, Any],
          stack: contextlib.ExitStack, *, force: bool, holder: str | None = None) -> None:
    if item["Type"] == NicType.VETH.value:
        _plug_veth(host, ns, nsfd, item, stack)
    else:
        _plug_eth(host, ns, nsfd, hostfd, item, stack, force=force, holder=holder)


# --- public API -------------------------------------------------------------

def _added(label: str, item: dict[str, Any]) -> str:
    return (f"Add network interface ({item['HostNicName']}) to container "
            f"({label},{item['CtrNicName']}) done")


def _removed(label: str, item: dict[str, Any]) -> str:
    return (f"Remove network interface ({item['HostNicName']}) from container "
            f"({label},{item['CtrNicName']}) done")


def add_nic(container: Container, record: Record, spec: NicSpec, *, label: str,
            update_config_only: bool = False, force: bool = False,
            store: StateStore | None = None) -> list[str]:
    """Add one NIC: live on a running container, saved in ``record["nics"]``.

    A repeated add of the same NIC is done (re-plugged if it went missing)."""
    items = record["nics"]
    live = container.running and not update_config_only
    for item in items:
        if spec.matches(item):
            if live:
                with container.init_process() as pidfd, _handles(container, pidfd) as h:
                    host, ns, nsfd, hostfd = h
                    if netlink.link_index(ns, item["CtrNicName"]) is None:
                        with contextlib.ExitStack() as stack:
                            _plug(host, ns, nsfd, hostfd, item, stack, force=force)
                            stack.pop_all()
            return [_added(label, item)]
    item = spec.to_item()
    _check_conflicts(item, items)
    holder = None
    if spec.type is NicType.ETH:
        if sum(1 for i in items if i["Type"] == NicType.ETH.value) >= MAX_ETH:
            raise Conflict(f"the container already has {MAX_ETH} physical NICs, the most "
                           "allowed")
        if store is not None:
            holder = eth_holders(store, container.id).get(spec.host_name)
            if holder and not force:
                raise Conflict(f"host interface {spec.host_name} is already added to "
                               f"container {holder}", hint="remove it there first")
    if live:
        with container.init_process() as pidfd, _handles(container, pidfd) as h:
            host, ns, nsfd, hostfd = h
            if not item["HostNicName"]:
                item["HostNicName"] = _free_name(host, prefix="veth")
            with contextlib.ExitStack() as stack:
                _plug(host, ns, nsfd, hostfd, item, stack, force=force, holder=holder)
                stack.pop_all()
    elif not item["HostNicName"]:
        item["HostNicName"] = netlink.random_name("veth")
    items.append(item)
    return [_added(label, item)]


def find_nic(record: Record, name: NicName, kind: NicType | None = None) -> dict[str, Any]:
    for item in record["nics"]:
        if (item["CtrNicName"] == name.ctr and (not name.host or item["HostNicName"] == name.host)
                and (kind is None or item["Type"] == kind.value)):
            return item
    what = f"{name.host}:{name.ctr}" if name.host else name.ctr
    raise NotFound(f"network interface {what}{f' of type {kind.value}' if kind else ''} "
                   "is not added to the container")


def remove_nic(container: Container, record: Record, name: NicName,
               kind: NicType | None = None, *, label: str) -> list[str]:
    """Remove one NIC: a veth is deleted, an eth goes back to the host as it
    was.  Saved routes through it go too (the kernel drops them with it)."""
    item = find_nic(record, name, kind)
    if container.running:
        with container.init_process() as pidfd, _handles(container, pidfd) as h:
            host, ns, nsfd, hostfd = h
            if item["Type"] == NicType.VETH.value:
                _unplug_veth(host, ns, item)
            else:
                _unplug_eth(host, ns, hostfd, nsfd, item)
    else:
        # stopped, poststop not (yet) run: a leftover veth host end goes; a physical
        # NIC comes out of a pinned namespace, or, handed back by the kernel under
        # another name, gets its own name back
        with netlink.pinned_netns(container.id) as pinned, \
                netlink.host_netns_fd() as hostfd, netlink.host() as host, \
                contextlib.ExitStack() as handles:
            ns = handles.enter_context(netlink.in_netns(pinned)) if pinned is not None else None
            if item["Type"] == NicType.VETH.value:
                _unplug_veth(host, ns, item)
            else:
                _unplug_eth(host, ns, hostfd, pinned, item)
    lines = []
    from . import route

    kept = []
    for saved in record["routes"]:
        if _routes_through(saved, item):
            lines.append(route.removed_line(label, saved))
        else:
            kept.append(saved)
    record["routes"] = kept
    record["nics"] = [i for i in record["nics"] if i is not item]
    return [_removed(label, item)] + lines


def _routes_through(saved: dict[str, Any], item: dict[str, Any]) -> bool:
    """Whether the saved route goes through the NIC ``item`` (the kernel drops
    it with the NIC, and it could not be re-added at the next start)."""
    if saved.get("dev"):
        return bool(saved["dev"] == item["CtrNicName"])
    if not item.get("Ip"):
        return False
    iface = ipaddress.ip_interface(item["Ip"])
    try:
        gw = ipaddress.ip_address(saved["gw"]) if saved.get("gw") else None
        src = ipaddress.ip_address(saved["src"]) if saved.get("src") else None
    except ValueError:
        return False
    return (gw is not None and gw in iface.network) or (gw is None and src == iface.ip)


def update_nic(container: Container, record: Record, upd: NicUpdate, *, label: str,
               update_config_only: bool = False) -> list[str]:
    """Change ip/mac/bridge/mtu/qlen of a saved NIC, live where running."""
    item = find_nic(record, NicName("", upd.ctr_name))
    new = dict(item)
    lines = []
    cname = item["CtrNicName"]
    if upd.ip is not None:
        new["Ip"] = upd.ip
        lines.append(f"Update IP address for network interface ({cname},{upd.ip}) done")
    if upd.mac is not None:
        if item["Type"] == NicType.ETH.value and upd.mac != item.get("Mac"):
            raise SpecError(f"{cname} is an eth: it keeps its own MAC address")
        new["Mac"] = upd.mac
        lines.append(f"Update MAC address for network interface ({cname},{upd.mac}) done")
    if upd.bridge is not None:
        if item["Type"] == NicType.ETH.value:
            raise SpecError(f"{cname} is an eth: it cannot be attached to a bridge")
        new["Bridge"] = upd.bridge
        lines.append(f"Update Bridge for network interface ({cname},{upd.bridge}) done")
    if upd.mtu is not None:
        new["Mtu"] = upd.mtu
        lines.append(f"Update Mtu for network interface ({cname},{upd.mtu}) done")
    if upd.qlen is not None:
        new["Qlen"] = upd.qlen
        lines.append(f"Update Qlen for network interface ({cname},{upd.qlen}) done")
    _check_v6_mtu(new["Ip"], int(new["Mtu"]))
    _check_conflicts(new, [i for i in record["nics"] if i is not item])
    if new == item:
        return lines
    if container.running and not update_config_only:
        with container.init_process() as pidfd, _handles(container, pidfd) as h, \
                contextlib.ExitStack() as stack:
            host, ns, _, _ = h
            _reconfigure(host, ns, item, new, stack)
            stack.pop_all()
    item.clear()
    item.update(new)
    return lines


def _reconfigure(host: IPRoute, ns: IPRoute, old: dict[str, Any], new: dict[str, Any],
                 stack: contextlib.ExitStack) -> None:
    cname, hname = old["CtrNicName"], old["HostNicName"]
    veth = old["Type"] == NicType.VETH.value
    msg = netlink.link(ns, cname)
    if msg is None:
        raise NotFound(f"the container has no interface named {cname}")
    if new["Bridge"] != old["Bridge"]:
        _bridge(host, new["Bridge"])
        _detach(host, hname, old["Bridge"])
        stack.callback(_reattach_quiet, host, hname, old["Bridge"])
        with contextlib.ExitStack() as inner:
            _attach(host, inner, hname, new["Bridge"])
            stack.push(inner.pop_all())
    for key, attr in (("Mtu", "mtu"), ("Qlen", "txqlen")):
        if new[key] != old[key]:
            before = msg.get("IFLA_MTU" if key == "Mtu" else "IFLA_TXQLEN")
            _set(ns, cname, f"set {key.lower()} {new[key]}", **{attr: new[key]})
            stack.callback(_set_quiet, ns, cname, **{attr: before})
            if veth:
                hmsg = netlink.link(host, hname)
                if hmsg is not None:
                    hbefore = hmsg.get("IFLA_MTU" if key == "Mtu" else "IFLA_TXQLEN")
                    _set(host, hname, f"set {key.lower()} {new[key]}", **{attr: new[key]})
                    stack.callback(_set_quiet, host, hname, **{attr: hbefore})
    if new["Mac"] != old["Mac"]:
        before = msg.get("IFLA_ADDRESS")
        _set_mac(ns, cname, new["Mac"])
        stack.callback(_set_quiet, ns, cname, address=before)
    if new["Ip"] != old["Ip"]:
        if old["Ip"]:
            _addr(ns, "del", cname, old["Ip"])
            stack.callback(_addr_quiet, ns, "add", cname, old["Ip"])
        _addr(ns, "add", cname, new["Ip"])
        stack.callback(_addr_quiet, ns, "del", cname, new["Ip"])


def _reattach_quiet(host: IPRoute, port: str, bridge: str) -> None:
    try:
        with contextlib.ExitStack() as inner:
            _attach(host, inner, port, bridge)
            inner.pop_all()
    except Exception as err:  # noqa: BLE001
        log.warning("undo: re-attach %s to %s failed: %s", port, bridge, err)


# --- hooks ------------------------------------------------------------------

def _items(record: Record | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return record if isinstance(record, list) else record["nics"]


def reapply(container: Container, pidfd: int,
            record: Record | list[dict[str, Any]]) -> list[str]:
    """Prestart: re-create every saved NIC in the container's (new) network
    namespace.  Idempotent: a NIC already there is left alone; a stale veth
    host end of an earlier run is replaced.  All or nothing: a failure takes
    back the NICs this call plugged, then raises."""
    items = _items(record)
    if not items:
        return []
    lines = []
    with _handles(container, pidfd) as (host, ns, nsfd, hostfd), \
            contextlib.ExitStack() as stack:
        for item in items:
            if netlink.link_index(ns, item["CtrNicName"]) is not None:
                continue
            if item["Type"] == NicType.VETH.value:
                stale = netlink.link(host, item["HostNicName"])
                if stale is not None and netlink.link_kind(stale) == "veth":
                    log.info("deleting stale veth host end %s", item["HostNicName"])
                    _unplug_veth(host, None, item)
            else:
                _recover_eth(host, item)
            _plug(host, ns, nsfd, hostfd, item, stack, force=True)
            lines.append(_added(container.name, item))
        stack.pop_all()
    return lines


def pin_netns(container: Container, pin_dir: str = netlink.PIN_DIR) -> str:
    """Prestart: bind-mount the container's network namespace to
    ``pin_dir/<id>`` so that poststop can still reach its NICs."""
    with container.init_process() as pidfd:
        return netlink.pin(container, pidfd, pin_dir)


def poststop(container: Container, record: Record | list[dict[str, Any]],
             pin_dir: str = netlink.PIN_DIR) -> list[str]:
    """Poststop: physical NICs back to the host under their own names (from
    the pinned namespace, or found by MAC where the kernel returned them),
    veth host ends and OVS ports deleted, then the pin removed.

    "Already gone" is fine; other failures are collected and raised together
    after every NIC was tried."""
    items = _items(record)
    lines: list[str] = []
    errors: list[str] = []
    try:
        with netlink.pinned_netns(container.id, pin_dir) as nsfd, \
                netlink.host_netns_fd() as hostfd, netlink.host() as host, \
                contextlib.ExitStack() as handles:
            ns = handles.enter_context(netlink.in_netns(nsfd)) if nsfd is not None else None
            for item in items:
                try:
                    if item["Type"] == NicType.VETH.value:
                        _unplug_veth(host, ns, item)
                    else:
                        _unplug_eth(host, ns, hostfd, nsfd, item)
                    lines.append(_removed(container.name, item))
                except ToolError as err:
                    errors.append(f"{item['CtrNicName']}: {err}")
    finally:
        netlink.unpin(container.id, pin_dir)
    if errors:
        raise ToolError("; ".join(errors))
    return lines
