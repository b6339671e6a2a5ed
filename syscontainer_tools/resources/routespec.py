"""What a route is: one ``{"dest", "src", "gw", "dev"}`` of add-route's JSON.

An empty dest or ``default`` is the default route, IPv4 or IPv6 as gw/src
say.  The saved form keeps the same four keys, normalised (``default``,
canonical networks and addresses); list-route shows them as they are.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import SpecError
from .filters import parse_filter
from .nicspec import parse_ifname

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

KEYS = ("dest", "src", "gw", "dev")
FILTER_KEYS = KEYS   # what list-route --filter matches
COLUMNS = (("dest", "Destination"), ("src", "Source"), ("gw", "Gateway"), ("dev", "Device"))


@dataclass(frozen=True)
class RouteSpec:
    dest: str = ""   # "default", a canonical network, or "" (a wildcard, patterns only)
    src: str = ""
    gw: str = ""
    dev: str = ""

    def __str__(self) -> str:
        return f"{{dest:{self.dest},src:{self.src},gw:{self.gw},dev:{self.dev}}}"

    def to_record(self) -> dict[str, str]:
        return {"dest": self.dest, "src": self.src, "gw": self.gw, "dev": self.dev}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> RouteSpec:
        return cls(*(str(data.get(k) or "") for k in KEYS))

    def row(self) -> dict[str, str]:
        """list-route's columns."""
        return self.to_record()

    @property
    def family(self) -> int:
        """4 or 6: from dest, else gw, else src; a bare default is IPv4."""
        if self.dest and self.dest != "default":
            return ipaddress.ip_network(self.dest).version
        for value in (self.gw, self.src):
            if value:
                return ipaddress.ip_address(value).version
        return 4

    def matches(self, saved: RouteSpec) -> bool:
        """Pattern match: every non-empty field of self equals the saved route's."""
        return all(not getattr(self, k) or getattr(self, k) == getattr(saved, k) for k in KEYS)

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
            if not any(spec.to_record().values()):
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


def added_line(ref: str, spec: RouteSpec) -> str:
    return f"Add route to container {ref}, route: {spec} done"


def removed_line(ref: str, spec: RouteSpec) -> str:
    return f"Remove route from container {ref}, route: {spec} done"


# --- listing ------------------------------------------------------------------

def _same(key: str, want_value: Any, have_value: Any) -> bool:
    want, have = str(want_value).strip(), str(have_value or "")
    if key == "dest":
        if want.lower() == "default" or have == "default":
            return want.lower() == have
        with contextlib.suppress(ValueError):
            return bool(ipaddress.ip_network(want, strict=False) == ipaddress.ip_network(have))
    if key in ("src", "gw"):
        with contextlib.suppress(ValueError):
            return bool(ipaddress.ip_address(want) == ipaddress.ip_address(have))
    return want == have


def rows(routes: Sequence[RouteSpec], filter_json: str | None = None) -> list[dict[str, str]]:
    """list-route: saved routes matching every non-empty field of ``filter_json``."""
    wanted = parse_filter(filter_json, KEYS)
    return [spec.row() for spec in routes
            if all(_same(k, v, getattr(spec, k)) for k, v in wanted.items())]
