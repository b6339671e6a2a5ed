"""What a NIC is: the typed model of one saved network interface.

``Nic.parse()`` reads add-nic's options, ``NicUpdate.parse()`` update-nic's;
``to_record()``/``from_record()`` own the saved form (schema 2, snake_case
keys), and ``row()`` is list-nic's view in the original tool's column names
(``CtrNicName``, ``HostNicName``, ...), which ``--filter`` matches.  A column
rename touches ``row()`` only, never the saved state.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .. import netlink
from ..errors import SpecError, ToolError
from ..textenum import TextEnum
from .filters import parse_filter

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from .filters import FilterValue

FIELDS = ("Ip", "Mac", "Mtu", "Qlen", "Type", "Bridge", "HostNicName", "CtrNicName")
FILTER_KEYS = FIELDS  # what list-nic --filter matches
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


# --- values -------------------------------------------------------------------

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
        what = "an unspecified" if iface.ip.is_unspecified else "a multicast"
        raise SpecError(f"ip {value!r}: {what} address cannot be an interface address")
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


def check_v6_mtu(ip: str, mtu: int) -> None:
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

    def __str__(self) -> str:
        return f"{self.host}:{self.ctr}" if self.host else self.ctr


# --- the model ------------------------------------------------------------------

@dataclass(frozen=True)
class HostState:
    """An eth's state on the host before it moved, given back on removal."""

    mtu: int | None = None
    qlen: int | None = None
    up: bool = False
    addrs: tuple[str, ...] = ()

    def to_record(self) -> dict[str, Any]:
        return {"mtu": self.mtu, "qlen": self.qlen, "up": self.up, "addrs": list(self.addrs)}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> HostState:
        def opt_int(value: Any) -> int | None:
            return None if value is None else int(value)

        return cls(opt_int(data.get("mtu")), opt_int(data.get("qlen")), bool(data.get("up")),
                   tuple(str(a) for a in data.get("addrs") or ()))


@dataclass(frozen=True)
class Nic:
    """One network interface of a container, as add-nic asked for it and as
    saved (an eth also carries its ``host_state``)."""

    type: NicType
    ctr_name: str
    host_name: str            # "" = generate (veth only), until it is saved
    ip: str = ""
    mac: str = ""
    bridge: str = ""
    mtu: int = DEFAULT_MTU
    qlen: int = DEFAULT_QLEN
    host_state: HostState | None = None

    @property
    def is_eth(self) -> bool:
        return self.type is NicType.ETH

    @classmethod
    def parse(cls, *, type: str, name: str, ip: str | None = None,
              mac: str | None = None, bridge: str | None = None,
              mtu: str | int | None = None, qlen: str | int | None = None) -> Nic:
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
        nic = cls(kind, names.ctr, names.host, parse_ip(ip) if ip else "",
                  parse_mac(mac) if mac else "", bridge,
                  parse_mtu(DEFAULT_MTU if mtu is None else mtu),
                  parse_qlen(DEFAULT_QLEN if qlen is None else qlen))
        check_v6_mtu(nic.ip, nic.mtu)
        return nic

    def replace(self, **changes: Any) -> Nic:
        return dataclasses.replace(self, **changes)

    def matches(self, saved: Nic) -> bool:
        """Whether ``saved`` is this very NIC (a repeated add)."""
        return ((self.type, self.ctr_name, self.ip, self.bridge, self.mtu, self.qlen)
                == (saved.type, saved.ctr_name, saved.ip, saved.bridge, saved.mtu, saved.qlen)
                and (not self.host_name or saved.host_name == self.host_name)
                and (not self.mac or saved.mac == self.mac))

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type.value, "host_name": self.host_name,
                               "ctr_name": self.ctr_name, "ip": self.ip, "mac": self.mac,
                               "mtu": self.mtu, "qlen": self.qlen, "bridge": self.bridge}
        if self.host_state is not None:
            out["host_state"] = self.host_state.to_record()
        return out

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Nic:
        try:
            host = data.get("host_state")
            return cls(NicType(str(data["type"])), str(data["ctr_name"]),
                       str(data.get("host_name") or ""), str(data.get("ip") or ""),
                       str(data.get("mac") or ""), str(data.get("bridge") or ""),
                       int(data.get("mtu", DEFAULT_MTU)), int(data.get("qlen", DEFAULT_QLEN)),
                       HostState.from_record(host) if isinstance(host, Mapping) else None)
        except (KeyError, TypeError, ValueError) as err:
            raise ToolError(f"saved network interface {dict(data)!r} is malformed: "
                            f"{err}") from None

    def row(self) -> dict[str, Any]:
        """list-nic's columns (the original tool's names)."""
        return {"Ip": self.ip, "Mac": self.mac, "Mtu": self.mtu, "Qlen": self.qlen,
                "Type": self.type.value, "Bridge": self.bridge,
                "HostNicName": self.host_name, "CtrNicName": self.ctr_name}


def migrate_v1(item: Mapping[str, Any]) -> dict[str, Any]:
    """A schema-1 saved NIC (list-nic's column names as keys) in schema 2."""
    out: dict[str, Any] = {"type": item.get("Type"), "host_name": item.get("HostNicName", ""),
                           "ctr_name": item.get("CtrNicName"), "ip": item.get("Ip", ""),
                           "mac": item.get("Mac", ""), "mtu": item.get("Mtu", DEFAULT_MTU),
                           "qlen": item.get("Qlen", DEFAULT_QLEN),
                           "bridge": item.get("Bridge", "")}
    host = item.get("Host")
    if isinstance(host, Mapping):
        out["host_state"] = {"mtu": host.get("Mtu"), "qlen": host.get("Qlen"),
                             "up": bool(host.get("Up")), "addrs": list(host.get("Addrs") or [])}
    return out


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


# --- list-nic -----------------------------------------------------------------------

def _same_value(field: str, want: FilterValue, have: Any) -> bool:
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


def rows(nics: list[Nic], filter_json: str | None = None) -> list[dict[str, Any]]:
    """list-nic: the saved NICs matching every non-empty field of ``filter_json``."""
    wanted = parse_filter(filter_json, FIELDS)
    out = []
    for nic in nics:
        row = nic.row()
        if all(_same_value(k, v, row.get(k)) for k, v in wanted.items()):
            out.append(row)
    return out
