"""Routes in a container's main routing table, IPv4 and IPv6.

The user gives ``[{"dest": D, "src": S, "gw": G, "dev": V}, ...]``: at least
one of src/gw/dev; an empty dest or ``default`` is the default route, IPv4
or IPv6 as gw/src say.  Saved items (``record["routes"]``) keep the same four
keys, normalised (``default``, canonical networks and addresses)::

    {"dest": "10.20.0.0/16", "src": "", "gw": "10.0.0.1", "dev": "eth1"}

A route whose dest is already routed (saved, or in the container's table)
is a conflict; one naming a device the container lacks is refused.  Each
add pushes its delete on an ``ExitStack``: a failing batch leaves nothing.
On remove, empty fields are wildcards.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import netlink
from ..errors import Conflict, NotFound, SpecError, ToolError
from .nic import parse_filter, parse_ifname

if TYPE_CHECKING:  # pragma: no cover
    from pyroute2 import IPRoute

    from ..container import Container
    from ..state import Record

log = logging.getLogger(__name__)

KEYS = ("dest", "src", "gw", "dev")
COLUMNS = (("dest", "Destination"), ("src", "Source"), ("gw", "Gateway"), ("dev", "Device"))
MAIN_TABLE = 254
RT_SCOPE_LINK = 253


@dataclass(frozen=True)
class RouteSpec:
    dest: str = ""   # "default", a canonical network, or "" (a wildcard, patterns only)
    src: str = ""
    gw: str = ""
    dev: str = ""

    def __str__(self) -> str:
        return f"{{dest:{self.dest},src:{self.src},gw:{self.gw},dev:{self.dev}}}"

    def to_item(self) -> dict[str, str]:
        return {"dest": self.dest, "src": self.src, "gw": self.gw, "dev": self.dev}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> RouteSpec:
        return cls(*(str(item.get(k) or "") for k in KEYS))

    @property
    def family(self) -> int:
        """4 or 6: from dest, else gw, else src; a bare default is IPv4."""
        if self.dest and self.dest != "default":
            return ipaddress.ip_network(self.dest).version
        for value in (self.gw, self.src):
            if value:
                return ipaddress.ip_address(value).version
        return 4

    def matches(self, item: dict[str, Any]) -> bool:
        """Pattern match: every non-empty field of self equals the item's."""
        return all(not getattr(self, k) or getattr(self, k) == item.get(k) for k in KEYS)

    @classmethod
    def parse(cls, obj: Any, *, pattern: bool = False) -> RouteSpec:
        """One route object; ``pattern`` (remove) keeps empty fields as wildcards."""
        shown = json.dumps(obj, separators=(",", ":"))
        if not isinstance(obj, dict):
            raise SpecError(f"route {shown}: each route must be a JSON object with "
                            "dest, src, gw, dev")
        values = dict.fromkeys(KEYS, "")
        for key, value in obj.items():
            k = str(key).lower()
            if k not in values:
                raise SpecError(f"route {shown}: unknown key {key!r} (use dest, src, gw, dev)")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise SpecError(f"route {shown}: {k} must be a string")
            values[k] = value.strip()
        dest = values["dest"]
        if dest.lower() == "default" or (not dest and not pattern):
            dest = "default"
        elif dest:
            try:
                dest = str(ipaddress.ip_network(dest, strict=True))
            except ValueError as err:
                raise SpecError(f"route {shown}: dest {values['dest']!r} is not a network "
                                f"(CIDR) or 'default': {err}") from None
        addrs = {}
        for k in ("src", "gw"):
            if values[k]:
                try:
                    addrs[k] = ipaddress.ip_address(values[k])
                except ValueError:
                    raise SpecError(f"route {shown}: {k} {values[k]!r} is not an IPv4 or "
                                    "IPv6 address") from None
        if values["dev"]:
            parse_ifname(values["dev"], f"route {shown}: dev")
        spec = cls(dest, str(addrs.get("src", "")), str(addrs.get("gw", "")), values["dev"])
        if pattern:
            if not any(spec.to_item().values()):
                raise SpecError(f"route {shown}: an empty route would match every route; "
                                "name at least one field")
            return spec
        if not (spec.src or spec.gw or spec.dev):
            raise SpecError(f"route {shown}: give at least one of src, gw, dev")
        versions = {a.version for a in addrs.values()}
        if dest != "default":
            versions.add(ipaddress.ip_network(dest).version)
        if len(versions) > 1:
            raise SpecError(f"route {shown}: dest, src and gw mix IPv4 and IPv6")
        return spec


def parse_routes(text: str, *, pattern: bool = False) -> list[RouteSpec]:
    """The command-line JSON array of routes."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise SpecError(f"malformed route JSON: {err}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise SpecError('malformed route JSON: expected an array like '
                        '[{"dest":"default","gw":"192.168.10.1"}]')
    if not data:
        raise SpecError("no route given")
    return [RouteSpec.parse(obj, pattern=pattern) for obj in data]


def added_line(label: str, item: dict[str, Any] | RouteSpec) -> str:
    spec = item if isinstance(item, RouteSpec) else RouteSpec.from_item(item)
    return f"Add route to container {label}, route: {spec} done"


def removed_line(label: str, item: dict[str, Any] | RouteSpec) -> str:
    spec = item if isinstance(item, RouteSpec) else RouteSpec.from_item(item)
    return f"Remove route from container {label}, route: {spec} done"


# --- listing ------------------------------------------------------------------

def _same(key: str, want: Any, have: Any) -> bool:
    want, have = str(want).strip(), str(have or "")
    if key == "dest":
        if want.lower() == "default" or have == "default":
            return want.lower() == have
        with contextlib.suppress(ValueError):
            return ipaddress.ip_network(want, strict=False) == ipaddress.ip_network(have)
    if key in ("src", "gw"):
        with contextlib.suppress(ValueError):
            return ipaddress.ip_address(want) == ipaddress.ip_address(have)
    return want == have


def list_routes(record: Record, filter_json: str | None = None) -> list[dict[str, Any]]:
    """Saved routes matching every non-empty field of ``filter_json``."""
    wanted = parse_filter(filter_json, KEYS)
    return [{k: item.get(k, "") for k in KEYS} for item in record["routes"]
            if all(_same(k, v, item.get(k)) for k, v in wanted.items())]


# --- netlink ------------------------------------------------------------------

def _request(ns: IPRoute, spec: RouteSpec) -> dict[str, Any]:
    family = socket.AF_INET6 if spec.family == 6 else socket.AF_INET
    req: dict[str, Any] = {"family": family, "table": MAIN_TABLE}
    if spec.dest == "default":
        req["dst"] = "::/0" if family == socket.AF_INET6 else "0.0.0.0/0"
    else:
        req["dst"] = spec.dest
    if spec.gw:
        req["gateway"] = spec.gw
    elif family == socket.AF_INET:
        req["scope"] = RT_SCOPE_LINK
    if spec.src:
        req["prefsrc"] = spec.src
    if spec.dev:
        index = netlink.link_index(ns, spec.dev)
        if index is None:
            raise NotFound(f"the container has no network device {spec.dev} "
                           f"(route {spec})")
        req["oif"] = index
    return req


def _add(ns: IPRoute, spec: RouteSpec, *, exist_ok: bool = False) -> bool:
    """Add one route; False if it was there already (``exist_ok``)."""
    from pyroute2.netlink.exceptions import NetlinkError

    req = _request(ns, spec)
    try:
        ns.route("add", **req)
    except NetlinkError as err:
        if err.code == errno.EEXIST:
            if exist_ok:
                return False
            raise Conflict(f"route {spec} conflicts with a route the container already "
                           f"has to {spec.dest}") from None
        raise ToolError(f"route {spec}: {netlink._strerror(err.code)}") from None
    return True


def _delete(ns: IPRoute, spec: RouteSpec) -> None:
    """Delete one route; already gone (or its device gone) is done."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        req = _request(ns, spec)
    except NotFound:
        return  # the device went, and its routes with it
    try:
        ns.route("del", **req)
    except NetlinkError as err:
        if err.code in (errno.ESRCH, errno.ENOENT, errno.ENODEV):
            return
        raise ToolError(f"route {spec}: {netlink._strerror(err.code)}") from None


def _delete_quiet(ns: IPRoute, spec: RouteSpec) -> None:
    try:
        _delete(ns, spec)
    except ToolError as err:
        log.warning("undo: %s", err)


def _add_quiet(ns: IPRoute, spec: RouteSpec) -> None:
    try:
        _add(ns, spec, exist_ok=True)
    except ToolError as err:
        log.warning("undo: %s", err)


@contextlib.contextmanager
def _netns(container: Container, pidfd: int):  # type: ignore[no-untyped-def]
    with netlink.container_netns(container, pidfd) as nsfd, netlink.in_netns(nsfd) as ns:
        yield ns


# --- public API -------------------------------------------------------------

def add_routes(container: Container, record: Record, specs: Sequence[RouteSpec], *,
               label: str, update_config_only: bool = False) -> list[str]:
    """Add routes, live on a running container, saved in ``record["routes"]``.

    A route saved already, identical, is done; one to a dest that is saved
    or routed already is a conflict.  All or nothing."""
    saved = record["routes"]
    new: list[RouteSpec] = []
    lines = []
    for spec in specs:
        item = spec.to_item()
        if item in saved or spec in new:
            lines.append(added_line(label, spec))
            continue
        for other in [RouteSpec.from_item(i) for i in saved] + new:
            if other.dest == spec.dest and other.family == spec.family:
                raise Conflict(f"route {spec} conflicts with route {other}: both go to "
                               f"{spec.dest}")
        new.append(spec)
        lines.append(added_line(label, spec))
    if new and container.running and not update_config_only:
        with container.init_process() as pidfd, _netns(container, pidfd) as ns, \
                contextlib.ExitStack() as stack:
            for spec in new:
                _add(ns, spec)
                stack.callback(_delete_quiet, ns, spec)
            stack.pop_all()
    saved.extend(spec.to_item() for spec in new)
    return lines


def remove_routes(container: Container, record: Record, patterns: Sequence[RouteSpec], *,
                  label: str, update_config_only: bool = False) -> list[str]:
    """Remove every saved route matching each pattern (empty fields are
    wildcards).  A pattern that matches nothing saved is an error."""
    saved = record["routes"]
    gone: list[dict[str, Any]] = []
    for pattern in patterns:
        hits = [i for i in saved if pattern.matches(i)]
        if not hits:
            raise NotFound(f"route {pattern} is not added by syscontainer-tools")
        gone.extend(i for i in hits if i not in gone)
    if container.running and not update_config_only:
        with container.init_process() as pidfd, _netns(container, pidfd) as ns, \
                contextlib.ExitStack() as stack:
            for item in gone:
                spec = RouteSpec.from_item(item)
                _delete(ns, spec)
                stack.callback(_add_quiet, ns, spec)
            stack.pop_all()
    record["routes"] = [i for i in saved if i not in gone]
    return [removed_line(label, i) for i in gone]


def reapply(container: Container, pidfd: int, items: list[dict[str, Any]]) -> list[str]:
    """Prestart: add every saved route in the container's network namespace
    (after the NICs).  Idempotent: a route already there is done.  All or
    nothing: a failure deletes the routes this call added, then raises."""
    if not items:
        return []
    lines = []
    with _netns(container, pidfd) as ns, contextlib.ExitStack() as stack:
        for item in items:
            spec = RouteSpec.from_item(item)
            if _add(ns, spec, exist_ok=True):
                stack.callback(_delete_quiet, ns, spec)
            lines.append(added_line(container.name, spec))
        stack.pop_all()
    return lines
