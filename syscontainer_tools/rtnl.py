"""A small rtnetlink client: the few requests the network code makes.

pyroute2's import (its asyncio core included) costs a NIC command more than
all the rest of its work.  The tools need a handful of route-netlink
requests -- links (get, add a veth pair, set, delete), addresses (add,
delete, dump) and routes (add, delete, dump) -- so ``Handle`` speaks them
itself over ``socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)`` with ``struct``.

Its calls and messages are the subset of pyroute2's ``IPRoute`` the code
uses (``link("set", index=..., state="up")``, ``msg["flags"]``,
``msg.get("IFLA_MTU")``, ``msg.get("IFLA_LINKINFO").get("IFLA_INFO_KIND")``),
and a failed request raises ``NetlinkError`` with the kernel's errno in
``code``, as pyroute2's does.  Each request is one message: a link that is
renamed while being set down takes two calls (see netlink.down_and_rename).
"""

from __future__ import annotations

import _socket  # socket's C half: socket.py's enum conversions cost start-up
import os
import struct
import threading

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
IFF_UP = 0x1
RTPROT_STATIC, RTN_UNICAST = 4, 1
NLA_F_NESTED = 0x8000

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTNEXTHOP = struct.Struct("=HBBi")
_U32 = struct.Struct("=I")

# attribute number -> (name, kind) of what the code reads
_LINK_ATTRS = {1: ("IFLA_ADDRESS", "mac"), 3: ("IFLA_IFNAME", "str"), 4: ("IFLA_MTU", "u32"),
               10: ("IFLA_MASTER", "u32"), 13: ("IFLA_TXQLEN", "u32"),
               18: ("IFLA_LINKINFO", "linkinfo")}
_ADDR_ATTRS = {1: ("IFA_ADDRESS", "ip"), 2: ("IFA_LOCAL", "ip"), 3: ("IFA_LABEL", "str")}
_ROUTE_ATTRS = {1: ("RTA_DST", "ip"), 4: ("RTA_OIF", "u32"), 5: ("RTA_GATEWAY", "ip"),
                7: ("RTA_PREFSRC", "ip"), 9: ("RTA_MULTIPATH", "multipath"),
                15: ("RTA_TABLE", "u32")}
# link request keyword -> attribute number and kind
_LINK_SET = {"ifname": (3, "str"), "address": (1, "mac"), "mtu": (4, "u32"),
             "txqlen": (13, "u32"), "master": (10, "u32"), "net_ns_fd": (28, "u32")}
IFLA_LINKINFO, IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 18, 1, 2, 1


class NetlinkError(Exception):
    """A request the kernel refused; ``code`` is its errno."""

    def __init__(self, code: int, msg: str | None = None):
        super().__init__(code, msg or os.strerror(code))
        self.code = code


# --- encoding -------------------------------------------------------------

def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _value(kind: str, value: Any) -> bytes:
    if kind == "str":
        return str(value).encode() + b"\0"
    if kind == "u32":
        return _U32.pack(int(value))
    if kind == "mac":
        return bytes(int(part, 16) for part in str(value).split(":"))
    raise ValueError(kind)  # pragma: no cover


def _link_attrs(kwargs: dict[str, Any]) -> bytes:
    out = b""
    for key, value in kwargs.items():
        if value is None:
            continue  # as pyroute2: an attribute given as None is left out
        number, kind = _LINK_SET[key]
        out += _attr(number, _value(kind, value))
    return out


def _family(address: str) -> int:
    return _socket.AF_INET6 if ":" in address else _socket.AF_INET


def _ip(address: str) -> bytes:
    return _socket.inet_pton(_family(address), address)


# --- decoding -------------------------------------------------------------

def _attrs(data: bytes, offset: int, table: dict[int, tuple[str, str]],
           family: int = _socket.AF_INET) -> dict[str, Any]:
    out: dict[str, Any] = {}
    while offset + 4 <= len(data):
        length, number = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        payload = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
        entry = table.get(number & ~NLA_F_NESTED)
        if entry is None:
            continue
        name, kind = entry
        if kind == "str":
            out[name] = payload.split(b"\0", 1)[0].decode(errors="replace")
        elif kind == "u32":
            out[name] = _U32.unpack_from(payload)[0]
        elif kind == "mac":
            out[name] = ":".join(f"{b:02x}" for b in payload)
        elif kind == "ip":
            out[name] = _socket.inet_ntop(family, payload)
        elif kind == "linkinfo":
            out[name] = _attrs(payload, 0, {IFLA_INFO_KIND: ("IFLA_INFO_KIND", "str")})
        elif kind == "multipath":
            out[name] = _hops(payload)
    return out


def _hops(data: bytes) -> list[dict[str, Any]]:
    hops, offset = [], 0
    while offset + _RTNEXTHOP.size <= len(data):
        length, flags, hops_, index = _RTNEXTHOP.unpack_from(data, offset)
        if length < _RTNEXTHOP.size:
            break
        hops.append({"flags": flags, "hops": hops_, "oif": index})
        offset += (length + 3) & ~3
    return hops


def _link(data: bytes) -> dict[str, Any]:
    family, ifi_type, index, flags, change = _IFINFOMSG.unpack_from(data)
    msg = {"family": family, "ifi_type": ifi_type, "index": index, "flags": flags,
           "change": change}
    msg.update(_attrs(data, _IFINFOMSG.size, _LINK_ATTRS))
    return msg


def _addr(data: bytes) -> dict[str, Any]:
    family, prefixlen, flags, scope, index = _IFADDRMSG.unpack_from(data)
    msg = {"family": family, "prefixlen": prefixlen, "flags": flags, "scope": scope,
           "index": index}
    msg.update(_attrs(data, _IFADDRMSG.size, _ADDR_ATTRS, family))
    return msg


def _route(data: bytes) -> dict[str, Any]:
    (family, dst_len, src_len, tos, table, proto, scope, rtype,
     flags) = _RTMSG.unpack_from(data)
    msg = {"family": family, "dst_len": dst_len, "src_len": src_len, "tos": tos,
           "table": table, "proto": proto, "scope": scope, "type": rtype, "flags": flags}
    msg.update(_attrs(data, _RTMSG.size, _ROUTE_ATTRS, family))
    return msg


# --- the handle -------------------------------------------------------------

class Handle:
    """A route-netlink socket in one network namespace (pyroute2's ``IPRoute`` subset)."""

    def __init__(self, sock: _socket.socket):
        self._sock = sock
        self._seq = 0

    @classmethod
    def open(cls) -> Handle:
        """A handle in this thread's network namespace."""
        sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC,
                             NETLINK_ROUTE)
        try:
            sock.bind((0, 0))
        except OSError:
            sock.close()
            raise
        return cls(sock)

    @classmethod
    def in_netns(cls, nsfd: int) -> Handle:
        """A handle in the network namespace ``nsfd`` refers to.

        A netlink socket stays in the namespace it was made in.  It is made
        by a short-lived thread that joins the namespace (setns changes only
        the calling thread's), so the tool's own thread never leaves its
        namespace."""
        from . import syscalls

        result: list[Any] = []

        def make() -> None:
            try:
                syscalls.setns(nsfd, syscalls.CLONE_NEWNET)
                result.append(cls.open())
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                result.append(err)

        thread = threading.Thread(target=make, name="netns-socket")
        thread.start()
        thread.join()
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]  # type: ignore[no-any-return]

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------

    def _request(self, msg_type: int, flags: int, body: bytes,
                 parse: Any = None) -> list[dict[str, Any]]:
        """Send one request; the parsed answers (a dump's), or [] for an ack."""
        self._seq += 1
        seq = self._seq
        self._sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type,
                                       flags | NLM_F_REQUEST, seq, 0) + body)
        out: list[dict[str, Any]] = []
        while True:
            data = self._sock.recv(1 << 16)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, kind, mflags, mseq, _pid = _NLMSGHDR.unpack_from(data, offset)
                if length < _NLMSGHDR.size:
                    break
                payload = data[offset + _NLMSGHDR.size:offset + length]
                offset += (length + 3) & ~3
                if mseq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise NetlinkError(code)
                    return out
                if parse is not None:
                    out.append(parse(payload))
                if not mflags & NLM_F_MULTI and not flags & NLM_F_ACK:
                    return out

    # --- links -------------------------------------------------------------

    def get_links(self, *indexes: int, ifname: str | None = None) -> list[dict[str, Any]]:
        """``get_links()`` all, ``get_links(index)``, ``get_links(ifname=name)``."""
        if ifname is not None:
            return self._request(RTM_GETLINK, 0, _IFINFOMSG.pack(0, 0, 0, 0, 0)
                                 + _attr(3, _value("str", ifname)), _link)
        if indexes:
            return [m for i in indexes
                    for m in self._request(RTM_GETLINK, 0, _IFINFOMSG.pack(0, 0, i, 0, 0),
                                           _link)]
        return self._request(RTM_GETLINK, NLM_F_DUMP, _IFINFOMSG.pack(0, 0, 0, 0, 0), _link)

    def link_lookup(self, ifname: str) -> list[int]:
        try:
            return [int(m["index"]) for m in self.get_links(ifname=ifname)]
        except NetlinkError as err:
            if err.code in (19, 2):  # ENODEV, ENOENT
                return []
            raise

    def link(self, command: str, index: int = 0, state: str | None = None,
             kind: str | None = None, peer: dict[str, Any] | None = None,
             **attrs: Any) -> None:
        """``link("set", index=, state=/ifname=/address=/mtu=/txqlen=/master=/net_ns_fd=)``,
        ``link("add", ifname=, kind="veth", peer={...}, ...)``, ``link("del", index=)``."""
        flags = change = 0
        if state is not None:
            change = IFF_UP
            flags = IFF_UP if state == "up" else 0
        header = _IFINFOMSG.pack(0, 0, index, flags, change)
        if command == "del":
            self._request(RTM_DELLINK, NLM_F_ACK, header)
        elif command == "set":
            self._request(RTM_NEWLINK, NLM_F_ACK, header + _link_attrs(attrs))
        elif command == "add":
            info = _attr(IFLA_INFO_KIND, _value("str", kind))
            if peer is not None:
                peer_msg = _IFINFOMSG.pack(0, 0, 0, 0, 0) + _link_attrs(peer)
                info += _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_msg))
            self._request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                          header + _link_attrs(attrs) + _attr(IFLA_LINKINFO, info))
        else:
            raise ValueError(f"link command {command!r}")

    # --- addresses -----------------------------------------------------------

    def addr(self, command: str, index: int, address: str, prefixlen: int) -> None:
        family = _family(address)
        body = _IFADDRMSG.pack(family, prefixlen, 0, 0, index) + _attr(1, _ip(address))
        if family == _socket.AF_INET:
            body += _attr(2, _ip(address))  # IFA_LOCAL, as ip(8) and pyroute2 send it
        if command == "add":
            self._request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)
        elif command == "del":
            self._request(RTM_DELADDR, NLM_F_ACK, body)
        else:
            raise ValueError(f"addr command {command!r}")

    def get_addr(self, index: int | None = None,
                 family: int = _socket.AF_UNSPEC) -> list[dict[str, Any]]:
        msgs = self._request(RTM_GETADDR, NLM_F_DUMP, _IFADDRMSG.pack(family, 0, 0, 0, 0), _addr)
        return [m for m in msgs if index is None or m["index"] == index]

    # --- routes ----------------------------------------------------------------

    def route(self, command: str, *, dst: str, family: int | None = None, table: int = 254,
              gateway: str | None = None, scope: int = 0, prefsrc: str | None = None,
              oif: int | None = None) -> None:
        """``route("add"|"del", dst="A/N", gateway=, scope=, prefsrc=, oif=, table=)``;
        an add is a static unicast route, as pyroute2 makes it."""
        address, _, length = dst.partition("/")
        fam = family if family is not None else _family(address)
        dst_len = int(length) if length else (128 if fam == _socket.AF_INET6 else 32)
        if command == "add":
            msg_type, flags, proto, rtype = (RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                                             RTPROT_STATIC, RTN_UNICAST)
        elif command == "del":
            msg_type, flags, proto, rtype = RTM_DELROUTE, NLM_F_ACK, 0, 0
        else:
            raise ValueError(f"route command {command!r}")
        body = _RTMSG.pack(fam, dst_len, 0, 0, table if table < 256 else 252, proto, scope,
                           rtype, 0)
        if dst_len:
            body += _attr(1, _socket.inet_pton(fam, address))
        if table >= 256:
            body += _attr(15, _U32.pack(table))
        if gateway:
            body += _attr(5, _ip(gateway))
        if prefsrc:
            body += _attr(7, _ip(prefsrc))
        if oif is not None:
            body += _attr(4, _U32.pack(oif))
        self._request(msg_type, flags, body)

    def get_routes(self, family: int = _socket.AF_UNSPEC,
                   table: int | None = None) -> list[dict[str, Any]]:
        msgs = self._request(RTM_GETROUTE, NLM_F_DUMP,
                             _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0), _route)
        return [m for m in msgs
                if table is None or m.get("RTA_TABLE", m["table"]) == table]
