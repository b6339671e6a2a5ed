"""add-route / remove-route / list-route, checked with pyroute2 inside the netns."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from .conftest import PREFIX
from .nethelpers import (
    NET,
    NET6,
    ctr_links,
    delete_links,
    host_links,
    in_ctr,
    make_bridge,
    module_container,
    routes,
    state_of,
    veth_into,
)

pytestmark = pytest.mark.system

BRIDGE = f"{PREFIX}r"
GW, GW6 = f"{NET}.161", f"{NET6}::1"


@pytest.fixture
def ctr(make_container, tool) -> Iterator:
    """A container with eth1 (IPv4) and eth2 (IPv6) on a test bridge."""
    make_bridge(BRIDGE, f"{GW}/27")
    c = make_container("rt")
    try:
        tool("add-nic", "--type", "veth", "--name", f"{PREFIX}r1:eth1", "--ip", f"{NET}.162/27",
             "--bridge", BRIDGE, c.id, check=True)
        tool("add-nic", "--type", "veth", "--name", f"{PREFIX}r2:eth2", "--ip", f"{NET6}::2/64",
             "--bridge", BRIDGE, c.id, check=True)
        yield c
    finally:
        delete_links(f"{PREFIX}r1", f"{PREFIX}r2", BRIDGE)


def kernel(c) -> set[tuple[str, str, str]]:
    with in_ctr(c) as ns:
        return routes(ns, socket.AF_INET) | routes(ns, socket.AF_INET6)


def test_add_list_remove(ctr, tool, state_dir):
    base = kernel(ctr)
    rules = [{"dest": "10.50.0.0/16", "gw": GW}, {"dest": "", "gw": GW},
             {"dest": "10.60.0.0/16", "dev": "eth1", "src": f"{NET}.162"},
             {"dest": "fd00:99::/48", "gw": GW6}, {"dest": "default", "gw": GW6, "dev": "eth2"}]
    out = tool("add-route", ctr.id, json.dumps(rules), check=True).stdout.splitlines()
    assert out == [
        f"Add route to container {ctr.id}, route: {{dest:10.50.0.0/16,src:,gw:{GW},dev:}} done",
        f"Add route to container {ctr.id}, route: {{dest:default,src:,gw:{GW},dev:}} done",
        f"Add route to container {ctr.id}, route: {{dest:10.60.0.0/16,src:{NET}.162,gw:,dev:eth1}} done",
        f"Add route to container {ctr.id}, route: {{dest:fd00:99::/48,src:,gw:{GW6},dev:}} done",
        f"Add route to container {ctr.id}, route: {{dest:default,src:,gw:{GW6},dev:eth2}} done"]
    assert kernel(ctr) - base == {("10.50.0.0/16", GW, "eth1"), ("default", GW, "eth1"),
                                  ("10.60.0.0/16", "", "eth1"), ("fd00:99::/48", GW6, "eth2"),
                                  ("default", GW6, "eth2")}
    # the same again is done, nothing doubled
    tool("add-route", ctr.id, json.dumps(rules[:1]), check=True)
    assert len(state_of(state_dir, ctr.id)["routes"]) == 5

    listed = json.loads(tool("list-route", "--format", "json", ctr.id, check=True).stdout)
    assert len(listed) == 5 and listed[1] == {"dest": "default", "src": "", "gw": GW, "dev": ""}
    only = json.loads(tool("list-route", "--format", "json", "--filter",
                           json.dumps({"GW": GW6}), ctr.id, check=True).stdout)
    assert [r["dest"] for r in only] == ["fd00:99::/48", "default"]
    assert "10.50.0.0/16" in tool("list-route", ctr.id, check=True).stdout
    assert json.loads(tool("list-route", "--pretty", ctr.id, check=True).stdout) == listed

    # empty fields are wildcards: every route through GW goes
    out = tool("remove-route", ctr.id, json.dumps([{"gw": GW}]), check=True).stdout
    assert out.count("Remove route from container") == 2
    assert ("10.50.0.0/16", GW, "eth1") not in kernel(ctr)
    assert ("default", GW, "eth1") not in kernel(ctr)
    tool("remove-route", ctr.id, '[{"dest":"default","gw":"' + GW6 + '","dev":"eth2"}]',
         check=True)
    assert ("default", GW6, "eth2") not in kernel(ctr)
    assert len(state_of(state_dir, ctr.id)["routes"]) == 2
    # remove-nic takes the saved routes through that NIC along
    out = tool("remove-nic", "--name", "eth2", ctr.id, check=True).stdout
    assert "route: {dest:fd00:99::/48" in out
    assert [r["dest"] for r in state_of(state_dir, ctr.id)["routes"]] == ["10.60.0.0/16"]


BAD = [
    ("[{\"dest\":\"10.1.0.0/16\",\"gw\":", "malformed route JSON"),
    ('{"dest": 5}', "must be a string"),
    ('"default"', "malformed route JSON"),
    ("[]", "no route given"),
    ('[{"dest":"10.1.0.0/16"}]', "at least one of src, gw, dev"),
    ('[{"dest":"10.1.0.1/16","gw":"' + GW + '"}]', "not a network"),
    ('[{"dest":"10.1.0.0/16","gw":"10.1.0.999"}]', "not an IPv4 or IPv6 address"),
    ('[{"dest":"10.1.0.0/16","gw":"' + GW6 + '"}]', "mix IPv4 and IPv6"),
    ('[{"dest":"10.1.0.0/16","via":"' + GW + '"}]', "unknown key 'via'"),
    ('[{"dest":"10.1.0.0/16","dev":"eth7"}]', "no network device eth7"),
    ('[{"dest":"10.1.0.0/16","gw":"' + GW + '"},{"dest":"10.2.0.0/16","dev":"eth7"}]',
     "no network device eth7"),
    ('[{"dest":"' + NET + '.160/27","dev":"eth1"}]', "conflicts with a route the container"),
    ('[{"dest":"10.1.0.0/16","gw":"' + GW + '"},{"dest":"10.1.0.0/16","dev":"eth1"}]',
     "both go to 10.1.0.0/16"),
]


@pytest.fixture(scope="module")
def shared(runtime_root, rootfs_template, tmp_path_factory) -> Iterator:
    """One container for the bad-input cases: eth1/eth2 made by the test."""
    with module_container("rtbad", runtime_root, rootfs_template, tmp_path_factory) as c:
        try:
            veth_into(c, f"{PREFIX}s1", "eth1", f"{NET}.162/27")
            veth_into(c, f"{PREFIX}s2", "eth2", f"{NET6}::2/64")
            yield c
        finally:
            delete_links(f"{PREFIX}s1", f"{PREFIX}s2")


@pytest.mark.parametrize(("arg", "why"), BAD, ids=[w for _, w in BAD])
def test_bad_routes(shared, tool, state_dir, arg, why):
    ctr = shared
    before = (kernel(ctr), state_of(state_dir, ctr.id), host_links(), ctr_links(ctr))
    r = tool("add-route", ctr.id, arg)
    assert r.returncode == 1, r
    assert r.stderr.startswith("Failed to add route: "), r.stderr
    assert why in r.stderr
    assert (kernel(ctr), state_of(state_dir, ctr.id), host_links(), ctr_links(ctr)) == before


def test_remove_errors(ctr, tool, state_dir):
    tool("add-route", ctr.id, '[{"dest":"10.70.0.0/16","gw":"' + GW + '"}]', check=True)
    before = state_of(state_dir, ctr.id)
    for arg, why in [('[{"dest":"10.71.0.0/16"}]', "is not added by syscontainer-tools"),
                     ("[{}]", "would match every route"), ("nope", "malformed route JSON")]:
        r = tool("remove-route", ctr.id, arg)
        assert r.returncode == 1 and r.stderr.startswith("Failed to remove route: "), r.stderr
        assert why in r.stderr
    assert state_of(state_dir, ctr.id) == before
    # a route the kernel already dropped is removed from the record without fuss
    with in_ctr(ctr) as ns:
        ns.route("del", dst="10.70.0.0/16", gateway=GW)
    tool("remove-route", ctr.id, '[{"dest":"10.70.0.0/16"}]', check=True)
    assert state_of(state_dir, ctr.id)["routes"] == []
