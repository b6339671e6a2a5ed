"""Routes in a container's main routing table, IPv4 and IPv6.

The user gives ``[{"dest": D, "src": S, "gw": G, "dev": V}, ...]``: at least
one of src/gw/dev; an empty dest or ``default`` is the default route, IPv4
or IPv6 as gw/src say (the spec and its saved form are in :mod:`.routespec`).

A route whose dest is already routed (saved, or in the container's table)
is a conflict; one naming a device the container lacks is refused.  Each
add pushes its delete on an ``ExitStack``: a failing batch leaves nothing.
On remove, empty fields are wildcards.
"""

from __future__ import annotations

import _socket  # socket's C half: socket.py's enum conversions cost start-up
import contextlib
import errno
from collections.abc import Iterator, Sequence

from .. import netlink, undo
from ..errors import Conflict, NotFound, ToolError
from ..log import get_logger
from .filters import parse_filter
from .routespec import COLUMNS, KEYS, RouteSpec, added_line, parse_routes, removed_line, rows

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from ..container import Container
    from ..rtnl import Handle as IPRoute
    from .state import Record

log = get_logger(__name__)

__all__ = ["COLUMNS", "KEYS", "parse_filter", "RouteSpec", "parse_routes", "added_line", "removed_line",
           "add_routes", "remove_routes", "list_routes", "reapply"]

MAIN_TABLE = 254
RT_SCOPE_LINK = 253


# --- netlink ------------------------------------------------------------------

def _request(ctr_net: IPRoute, spec: RouteSpec) -> dict[str, Any]:
    family = _socket.AF_INET6 if spec.family == 6 else _socket.AF_INET
    req: dict[str, Any] = {"family": family, "table": MAIN_TABLE}
    if spec.dest == "default":
        req["dst"] = "::/0" if family == _socket.AF_INET6 else "0.0.0.0/0"
    else:
        req["dst"] = spec.dest
    if spec.gw:
        req["gateway"] = spec.gw
    elif family == _socket.AF_INET:
        req["scope"] = RT_SCOPE_LINK
    if spec.src:
        req["prefsrc"] = spec.src
    if spec.dev:
        index = netlink.link_index(ctr_net, spec.dev)
        if index is None:
            raise NotFound(f"the container has no network device {spec.dev} "
                           f"(route {spec})")
        req["oif"] = index
    return req


def _add(ctr_net: IPRoute, spec: RouteSpec, *, exist_ok: bool = False) -> bool:
    """Add one route; False if it was there already (``exist_ok``)."""
    NetlinkError = netlink.error_type()

    req = _request(ctr_net, spec)
    try:
        ctr_net.route("add", **req)
    except NetlinkError as err:
        if err.code == errno.EEXIST:
            if exist_ok:
                return False
            raise Conflict(f"route {spec} conflicts with a route the container already "
                           f"has to {spec.dest}") from None
        raise ToolError.from_errno(err.code, f"route {spec}") from None
    return True


def _delete(ctr_net: IPRoute, spec: RouteSpec) -> None:
    """Delete one route; already gone (or its device gone) is done."""
    NetlinkError = netlink.error_type()

    try:
        req = _request(ctr_net, spec)
    except NotFound:
        return  # the device went, and its routes with it
    try:
        ctr_net.route("del", **req)
    except NetlinkError as err:
        if err.code in (errno.ESRCH, errno.ENOENT, errno.ENODEV):
            return
        raise ToolError.from_errno(err.code, f"route {spec}") from None


@contextlib.contextmanager
def _netns(container: Container, pidfd: int) -> Iterator[IPRoute]:
    with netlink.container_netns(container, pidfd) as nsfd, netlink.in_netns(nsfd) as ctr_net:
        yield ctr_net


def list_routes(record: Record, filter_json: str | None = None) -> list[dict[str, str]]:
    """list-route's rows: saved routes matching every non-empty field of ``filter_json``."""
    return rows(record.routes, filter_json)


# --- public API -------------------------------------------------------------

def add_routes(container: Container, record: Record, specs: Sequence[RouteSpec], *,
               ref: str, update_config_only: bool = False) -> list[str]:
    """Add routes, live on a running container, saved in ``record["routes"]``.

    A route saved already, identical, is done; one to a dest that is saved
    or routed already is a conflict.  All or nothing."""
    saved = record.routes
    new: list[RouteSpec] = []
    lines = []
    for spec in specs:
        if spec in saved or spec in new:
            lines.append(added_line(ref, spec))
            continue
        for other in saved + new:
            if other.dest == spec.dest and other.family == spec.family:
                raise Conflict(f"route {spec} conflicts with route {other}: both go to "
                               f"{spec.dest}")
        new.append(spec)
        lines.append(added_line(ref, spec))
    if new and container.running and not update_config_only:
        with container.init_process() as pidfd, _netns(container, pidfd) as ctr_net, \
                contextlib.ExitStack() as stack:
            for spec in new:
                _add(ctr_net, spec)
                undo.push(stack, f"delete route {spec}", _delete, ctr_net, spec)
            stack.pop_all()
    record.routes = saved + new
    return lines


def remove_routes(container: Container, record: Record, patterns: Sequence[RouteSpec], *,
                  ref: str, update_config_only: bool = False) -> list[str]:
    """Remove every saved route matching each pattern (empty fields are
    wildcards).  A pattern that matches nothing saved is an error."""
    saved = record.routes
    gone: list[RouteSpec] = []
    for pattern in patterns:
        hits = [i for i in saved if pattern.matches(i)]
        if not hits:
            raise NotFound(f"route {pattern} is not added by syscontainer-tools")
        gone.extend(i for i in hits if i not in gone)
    if container.running and not update_config_only:
        with container.init_process() as pidfd, _netns(container, pidfd) as ctr_net, \
                contextlib.ExitStack() as stack:
            for spec in gone:
                _delete(ctr_net, spec)
                undo.push(stack, f"add route {spec} back", _add, ctr_net, spec, exist_ok=True)
            stack.pop_all()
    record.routes = [i for i in saved if i not in gone]
    return [removed_line(ref, i) for i in gone]


def reapply(container: Container, pidfd: int, record: Record,
            ctr_net: IPRoute | None = None) -> list[str]:
    """Prestart: add every saved route in the container's network namespace
    (after the NICs).  Idempotent: a route already there is done.  All or
    nothing: a failure deletes the routes this call added, then raises.
    ``ctr_net``, a handle in that namespace, saves opening another."""
    if not record.routes:
        return []
    lines = []
    with contextlib.ExitStack() as opened, contextlib.ExitStack() as stack:
        if ctr_net is None:
            ctr_net = opened.enter_context(_netns(container, pidfd))
        for spec in record.routes:
            if _add(ctr_net, spec, exist_ok=True):
                undo.push(stack, f"delete route {spec}", _delete, ctr_net, spec)
            lines.append(added_line(container.name, spec))
        stack.pop_all()
    return lines
