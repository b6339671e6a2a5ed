"""Route JSON, patterns, messages and filters: pure, no root."""

from __future__ import annotations

import pytest

from syscontainer_tools.errors import Conflict, NotFound, SpecError
from syscontainer_tools.resources import route
from syscontainer_tools.resources.state import Record


def one(text: str, **kw) -> route.RouteSpec:
    specs = route.parse_routes(text, **kw)
    assert len(specs) == 1
    return specs[0]


def test_default_and_canonical():
    assert one('[{"dest":"","gw":"192.168.10.1"}]') == route.RouteSpec("default", "",
                                                                       "192.168.10.1", "")
    assert one('[{"gw":"fd00::1"}]').family == 6
    assert one('[{"dest":"DEFAULT","dev":"eth0"}]').family == 4
    s = one('[{"Dest":"192.168.0.0/16","DEV":"eth0","src":"192.168.1.2"}]')
    assert s == route.RouteSpec("192.168.0.0/16", "192.168.1.2", "", "eth0")
    assert one('[{"dest":"10.1.2.3","dev":"eth0"}]').dest == "10.1.2.3/32"
    assert one('[{"dest":"FD00:0:0::/48","gw":"FD00::1"}]') == route.RouteSpec(
        "fd00::/48", "", "fd00::1", "")
    assert one('{"dest":"10.0.0.0/8","gw":"10.0.0.1"}').dest == "10.0.0.0/8"


def test_message_format():
    s = one('[{"dest":"172.17.28.0/32","gw":"172.17.28.5","dev":"eth123"}]')
    assert route.added_line("0d2d68b45aa0", s) == (
        "Add route to container 0d2d68b45aa0, route: "
        "{dest:172.17.28.0/32,src:,gw:172.17.28.5,dev:eth123} done")
    assert route.removed_line("c", s).startswith("Remove route from container c, ")


@pytest.mark.parametrize(("text", "why"), [
    ("[{", "malformed route JSON"),
    ("5", "malformed route JSON"),
    ("[]", "no route given"),
    ("[5]", "must be a JSON object"),
    ('[{"dest":"10.0.0.0/8"}]', "at least one of src, gw, dev"),
    ('[{"dest":"10.0.0.1/8","dev":"e"}]', "not a network"),
    ('[{"dest":"nowhere","dev":"e"}]', "not a network"),
    ('[{"gw":"10.0.0.256"}]', "not an IPv4 or IPv6 address"),
    ('[{"src":"fd00::g"}]', "not an IPv4 or IPv6 address"),
    ('[{"dest":"10.0.0.0/8","gw":"fd00::1"}]', "mix IPv4 and IPv6"),
    ('[{"gw":"10.0.0.1","src":"fd00::1"}]', "mix IPv4 and IPv6"),
    ('[{"gw":1}]', "must be a string"),
    ('[{"dev":"x/y"}]', "cannot contain"),
    ('[{"metric":"1","dev":"eth0"}]', "unknown key"),
])
def test_bad(text, why):
    with pytest.raises(SpecError, match=why):
        route.parse_routes(text)


def test_patterns():
    p = one('[{"gw":"10.0.0.1"}]', pattern=True)
    assert p.dest == "" and p.matches(route.RouteSpec("default", "", "10.0.0.1", ""))
    assert not p.matches(route.RouteSpec("default", "", "10.0.0.2", ""))
    assert one('[{"dest":"default"}]', pattern=True).dest == "default"
    with pytest.raises(SpecError, match="match every route"):
        route.parse_routes('[{"dest":""}]', pattern=True)


class Stopped:
    """A container that is not running: the library only saves."""

    id = name = "c1"
    running = False


def test_save_only_add_conflict_remove():
    rec = Record("c1")
    specs = route.parse_routes('[{"dest":"10.1.0.0/16","gw":"10.0.0.1"},{"gw":"10.0.0.1"}]')
    lines = route.add_routes(Stopped(), rec, specs, ref="c1")  # type: ignore[arg-type]
    assert len(lines) == 2 and len(rec.routes) == 2
    # identical again: done, not doubled
    route.add_routes(Stopped(), rec, specs[:1], ref="c1")  # type: ignore[arg-type]
    assert len(rec.routes) == 2
    with pytest.raises(Conflict, match="both go to 10.1.0.0/16"):
        route.add_routes(Stopped(), rec, route.parse_routes(  # type: ignore[arg-type]
            '[{"dest":"10.1.0.0/16","dev":"eth0"}]'), ref="c1")
    # an IPv6 default does not conflict with the IPv4 one
    route.add_routes(Stopped(), rec, route.parse_routes(  # type: ignore[arg-type]
        '[{"gw":"fd00::1"}]'), ref="c1")
    assert [r["dest"] for r in route.list_routes(rec, '{"gw":"FD00::1"}')] == ["default"]
    assert len(route.list_routes(rec, '{"dest":"default"}')) == 2
    assert len(route.list_routes(rec, '{"Dest":"10.1.0.0/16","GW":"10.0.0.1"}')) == 1
    with pytest.raises(SpecError, match="not one of"):
        route.list_routes(rec, '{"via":"x"}')
    with pytest.raises(NotFound, match="not added"):
        route.remove_routes(Stopped(), rec, route.parse_routes(  # type: ignore[arg-type]
            '[{"gw":"10.9.9.9"}]', pattern=True), ref="c1")
    lines = route.remove_routes(Stopped(), rec, route.parse_routes(  # type: ignore[arg-type]
        '[{"gw":"10.0.0.1"}]', pattern=True), ref="c1")
    assert len(lines) == 2 and [r.gw for r in rec.routes] == ["fd00::1"]
