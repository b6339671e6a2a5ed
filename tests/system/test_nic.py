"""add-nic / remove-nic / update-nic / list-nic on real runc containers."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

from .conftest import PREFIX
from .nethelpers import (
    NET,
    NET6,
    OCTET,
    addrs,
    ctr_links,
    delete_links,
    host_links,
    in_ctr,
    link,
    make_bridge,
    make_standin,
    ping,
    pinger,
    state_of,
)
from .waits import polls

pytestmark = pytest.mark.system

BRIDGE = f"{PREFIX}b"


@pytest.fixture
def bridge() -> Iterator[str]:
    make_bridge(BRIDGE, f"{NET}.1/24")
    try:
        yield BRIDGE
    finally:
        delete_links(BRIDGE)


def host_end(ctr_name: str, out: str) -> str:
    m = re.search(r"Add network interface \((\S+)\) to container \((\S+),(\S+)\) done", out)
    assert m, out
    assert m.group(3) == ctr_name
    return m.group(1)


def test_veth_on_bridge_ping_update_remove(make_container, tool, state_dir, bridge):
    a = pinger(make_container, "a")
    b = pinger(make_container, "b")
    before = host_links()
    out = tool("add-nic", "--type", "veth", "--name", "eth1", "--ip", f"{NET}.2/24",
               "--mac", "02:00:00:13:00:02", "--mtu", "1400", "--qlen", "500",
               "--bridge", bridge, a.id, check=True).stdout
    ha = host_end("eth1", out)
    assert re.fullmatch(r"veth[a-z0-9]{10}", ha), ha
    assert out.strip() == f"Add network interface ({ha}) to container ({a.id},eth1) done"
    hb = host_end("eth1", tool("add-nic", "--type", "veth", "--name", f"{PREFIX}h:eth1",
                               "--ip", f"{NET}.3/24", "--bridge", bridge, b.id,
                               check=True).stdout)
    assert hb == f"{PREFIX}h"
    try:
        with in_ctr(a) as ns:
            m = link(ns, "eth1")
            assert m.get("IFLA_MTU") == 1400 and m.get("IFLA_TXQLEN") == 500
            assert m.get("IFLA_ADDRESS") == "02:00:00:13:00:02"
            assert m["flags"] & 1
            assert addrs(ns, "eth1") == {f"{NET}.2/24"}
        with IPRoute() as ipr:
            for name in (ha, hb):
                m = link(ipr, name)
                assert m.get("IFLA_MASTER") == ipr.link_lookup(ifname=bridge)[0]
                assert m["flags"] & 1
            assert link(ipr, ha).get("IFLA_MTU") == 1400
        # traffic: container to container, container to bridge, host to container
        assert ping(a, f"{NET}.3").returncode == 0, ping(a, f"{NET}.3").stdout
        assert ping(b, f"{NET}.2").returncode == 0
        assert ping(a, f"{NET}.1").returncode == 0
        assert ping(None, f"{NET}.2").returncode == 0

        # list-nic: json, pretty, table, filter
        rows = json.loads(tool("list-nic", "--format", "json", a.id, check=True).stdout)
        assert rows == [{"Ip": f"{NET}.2/24", "Mac": "02:00:00:13:00:02", "Mtu": 1400,
                         "Qlen": 500, "Type": "veth", "Bridge": bridge, "HostNicName": ha,
                         "CtrNicName": "eth1"}]
        pretty = tool("list-nic", "--pretty", a.id, check=True).stdout
        assert json.loads(pretty) == rows and "\n    " in pretty
        table = tool("list-nic", a.id, check=True).stdout
        assert "eth1" in table and ha in table and "Host NIC" in table
        assert json.loads(tool("list-nic", "--format", "json", "--filter",
                               json.dumps({"ip": f"{NET}.2/24", "MTU": 1400}), a.id,
                               check=True).stdout) == rows
        assert json.loads(tool("list-nic", "--format", "json", "--filter", '{"Mtu": 1500}',
                               a.id, check=True).stdout) == []

        # update-nic live
        out = tool("update-nic", "--name", "eth1", "--ip", f"{NET}.12/24", "--mtu", "1300",
                   "--qlen", "700", "--mac", "02:00:00:13:00:12", a.id, check=True).stdout
        assert f"Update IP address for network interface (eth1,{NET}.12/24) done" in out
        with in_ctr(a) as ns:
            m = link(ns, "eth1")
            assert (m.get("IFLA_MTU"), m.get("IFLA_TXQLEN"), m.get("IFLA_ADDRESS")) == (
                1300, 700, "02:00:00:13:00:12")
            assert addrs(ns, "eth1") == {f"{NET}.12/24"}
        with IPRoute() as ipr:
            assert link(ipr, ha).get("IFLA_MTU") == 1300
        assert ping(b, f"{NET}.12").returncode == 0
        saved = state_of(state_dir, a.id)["nics"][0]
        assert (saved["ip"], saved["mtu"], saved["qlen"]) == (f"{NET}.12/24", 1300, 700)

        # remove-nic: both ends gone, record empty
        out = tool("remove-nic", "--type", "veth", "--name", "eth1", a.id, check=True).stdout
        assert out.strip() == f"Remove network interface ({ha}) from container ({a.id},eth1) done"
        assert "eth1" not in ctr_links(a)
        assert state_of(state_dir, a.id)["nics"] == []
        tool("remove-nic", "--name", f"{PREFIX}h:eth1", b.id, check=True)
        assert host_links() == before
        assert ping(None, f"{NET}.3").returncode != 0
    finally:
        delete_links(ha, hb)


def test_veth_ipv6_and_generated_names_unique(make_container, tool, bridge):
    a = make_container("v6")
    before = host_links()
    out1 = tool("add-nic", "--type", "veth", "--name", "eth1", "--ip", f"{NET6}::2/64",
                "--bridge", bridge, a.id, check=True).stdout
    out2 = tool("add-nic", "--type", "veth", "--name", "eth2", "--bridge", bridge, a.id,
                check=True).stdout
    h1, h2 = host_end("eth1", out1), host_end("eth2", out2)
    try:
        assert h1 != h2
        with in_ctr(a) as ns:
            assert addrs(ns, "eth1") == {f"{NET6}::2/64"}
            assert link(ns, "eth2")["flags"] & 1
        # adding the very same NIC again is done, nothing new
        again = tool("add-nic", "--type", "veth", "--name", "eth1", "--ip", f"{NET6}::2/64",
                     "--bridge", bridge, a.id, check=True).stdout
        assert host_end("eth1", again) == h1
        assert host_links() == before | {h1, h2}
    finally:
        delete_links(h1, h2)


def stopped(ctr):
    """Kill the container's init but keep it known to runc (status stopped)."""
    ctr.runc("kill", ctr.id, "KILL")
    for _ in polls(5):
        if ctr.state()["status"] == "stopped":
            return ctr
        time.sleep(0.05)
    raise AssertionError(f"{ctr.id} did not stop")


def test_not_running_or_config_only_saves_only(make_container, tool, state_dir, bridge):
    before = host_links()
    s = stopped(make_container("stopped"))
    r = tool("add-nic", "--type", "veth", "--name", "eth1", "--ip", f"{NET}.41/24",
             "--bridge", bridge, s.id, check=True)
    assert re.search(r"Add network interface \(veth[a-z0-9]{10}\)", r.stdout)
    assert "not running" in r.stderr
    assert state_of(state_dir, s.id)["nics"][0]["ip"] == f"{NET}.41/24"
    live = make_container("live")
    tool("add-nic", "--type", "veth", "--name", "eth1", "--ip", f"{NET}.40/24",
         "--bridge", bridge, "--update-config-only", live.id, check=True)
    assert "eth1" not in ctr_links(live)
    assert host_links() == before
    assert state_of(state_dir, live.id)["nics"][0]["ctr_name"] == "eth1"


class TestEth:
    """A veth end made by the test plays the physical NIC."""

    @pytest.fixture
    def standin(self) -> Iterator[tuple[str, str, str]]:
        name, peer = f"{PREFIX}p0", f"{PREFIX}p1"
        mac = make_standin(name, peer, mtu=1450, up=True, peer_cidr=f"{NET}.129/25")
        try:
            yield name, peer, mac
        finally:
            delete_links(name, peer)

    def test_move_in_address_ping_and_back(self, make_container, tool, state_dir, standin):
        name, peer, mac = standin
        c = pinger(make_container, "eth")
        out = tool("add-nic", "--type", "eth", "--name", f"{name}:eth1", "--ip",
                   f"{NET}.130/25", "--mtu", "1400", "--qlen", "2100", c.id,
                   check=True).stdout
        assert out.strip() == f"Add network interface ({name}) to container ({c.id},eth1) done"
        assert name not in host_links()
        with in_ctr(c) as ns:
            m = link(ns, "eth1")
            assert m.get("IFLA_ADDRESS") == mac
            assert (m.get("IFLA_MTU"), m.get("IFLA_TXQLEN")) == (1400, 2100)
            assert addrs(ns, "eth1") == {f"{NET}.130/25"}
        assert ping(c, f"{NET}.129").returncode == 0
        saved = state_of(state_dir, c.id)["nics"][0]
        assert saved["mac"] == mac and saved["host_state"]["mtu"] == 1450 and saved["host_state"]["up"]

        out = tool("remove-nic", "--type", "eth", "--name", f"{name}:eth1", c.id,
                   check=True).stdout
        assert out.strip() == f"Remove network interface ({name}) from container ({c.id},eth1) done"
        assert "eth1" not in ctr_links(c)
        with IPRoute() as ipr:
            m = link(ipr, name)
            assert m is not None, "the eth is back on the host under its own name"
            assert m.get("IFLA_MTU") == 1450 and m.get("IFLA_ADDRESS") == mac
            assert m["flags"] & 1, "it was up before: up again"
            assert addrs(ipr, name) == set(), "no container address left on it"
        assert state_of(state_dir, c.id)["nics"] == []

    def test_in_use_refused_unless_forced(self, make_container, tool, state_dir, standin):
        name, _, _ = standin
        c = make_container("busy")
        # a (low-priority, never used) default route through the stand-in
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=name)[0]
            ipr.route("add", dst="0.0.0.0/0", oif=index, scope=253, priority=4000 + OCTET)
            try:
                r = tool("add-nic", "--type", "eth", "--name", f"{name}:eth1", c.id)
            finally:
                ipr.route("del", dst="0.0.0.0/0", oif=index, scope=253, priority=4000 + OCTET)
        assert r.returncode == 1 and "carries the host's default route" in r.stderr, r.stderr
        assert name in host_links()
        with IPRoute() as ipr:
            ipr.addr("add", index=index, address=f"{NET}.140", prefixlen=25)
        r = tool("add-nic", "--type", "eth", "--name", f"{name}:eth1", c.id)
        assert r.returncode == 1
        assert r.stderr.startswith("Failed to add network interface: ")
        assert "in use" in r.stderr and f"{NET}.140/25" in r.stderr
        assert name in host_links()
        tool("add-nic", "--type", "eth", "--name", f"{name}:eth1", "--force", c.id, check=True)
        tool("remove-nic", "--name", f"{name}:eth1", c.id, check=True)
        with IPRoute() as ipr:
            assert addrs(ipr, name) == {f"{NET}.140/25"}, "its host address comes back"

    def test_eth_keeps_its_mac(self, make_container, tool, standin):
        name, _, mac = standin
        c = make_container("mac")
        r = tool("add-nic", "--type", "eth", "--name", f"{name}:eth1", "--mac",
                 "02:00:00:00:99:99", c.id)
        assert r.returncode == 1 and "keeps its own MAC" in r.stderr
        assert name in host_links() and "eth1" not in ctr_links(c)
        tool("add-nic", "--type", "eth", "--name", f"{name}:eth1", "--mac", mac, c.id,
             check=True)
        tool("remove-nic", "--name", f"{name}:eth1", c.id, check=True)
