"""Bad input and failures half-way: a clear error, exit 1, nothing left behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

from syscontainer_tools import netlink
from syscontainer_tools.engines import Engine, find
from syscontainer_tools.errors import ToolError
from syscontainer_tools.resources import nic, veth
from syscontainer_tools.resources.state import StateStore

from .conftest import PREFIX
from .nethelpers import (
    NET,
    addrs,
    ctr_links,
    delete_links,
    host_links,
    link,
    make_bridge,
    make_standin,
    module_container,
    state_of,
)

pytestmark = pytest.mark.system

BRIDGE = f"{PREFIX}c"


@pytest.fixture(scope="module")
def bridge() -> Iterator[str]:
    make_bridge(BRIDGE, f"{NET}.65/26")
    try:
        yield BRIDGE
    finally:
        delete_links(BRIDGE)


@pytest.fixture(scope="module")
def shared(runtime_root, rootfs_template, tmp_path_factory) -> Iterator:
    """One container for the bad-input cases (each leaves it as it was)."""
    with module_container("nicbad", runtime_root, rootfs_template, tmp_path_factory) as c:
        yield c


@pytest.fixture
def standins() -> Iterator[list[str]]:
    """Nine stand-in NICs (veth ends) on the host, down, no address."""
    names = [f"{PREFIX}e{i}" for i in range(9)]
    try:
        for i, name in enumerate(names):
            make_standin(name, f"{PREFIX}f{i}")
        yield names
    finally:
        delete_links(*names, *(f"{PREFIX}f{i}" for i in range(9)))


class Snapshot:
    """Host links, container links and the saved state, to compare after a failure."""

    def __init__(self, ctr, state_dir: str):
        self.ctr, self.state_dir = ctr, state_dir
        self.host, self.inside, self.state = self.take()

    def take(self):
        return host_links(), ctr_links(self.ctr), state_of(self.state_dir, self.ctr.id)

    def unchanged(self) -> bool:
        return self.take() == (self.host, self.inside, self.state)


BAD_ADD = [
    (["--ip", "10.0.0.300/24"], "not an IPv4 or IPv6 address"),
    (["--ip", "10.0.0.2"], "prefix length"),
    (["--ip", "fd00::zz/64"], "not an IPv4 or IPv6 address"),
    (["--ip", "10.0.0.2/33"], "not an IPv4 or IPv6 address"),
    (["--mac", "02:00:00:00:00"], "not a MAC address"),
    (["--mac", "01:00:5e:00:00:01"], "multicast"),
    (["--mtu", "67"], "mtu 67 is out of range (68-65535)"),
    (["--mtu", "65536"], "mtu 65536 is out of range"),
    (["--mtu", "big"], "not a whole number"),
    (["--qlen", "-1"], "qlen -1 is out of range"),
    (["--ip", "fd00::5/64", "--mtu", "1200"], "below 1280"),
]


@pytest.mark.parametrize(("extra", "why"), BAD_ADD, ids=[" ".join(a) for a, _ in BAD_ADD])
def test_bad_values(shared, tool, state_dir, bridge, extra, why):
    c = shared
    snap = Snapshot(c, state_dir)
    r = tool("add-nic", "--type", "veth", "--name", "eth1", "--bridge", bridge, *extra, c.id)
    assert r.returncode == 1, r
    assert r.stderr.startswith("Failed to add network interface: "), r.stderr
    assert why in r.stderr
    assert snap.unchanged()


@pytest.mark.parametrize(("args", "why"), [
    (["--type", "veth", "--name", "eth1", "--bridge", f"{PREFIX}nobr"], "not found"),
    (["--type", "veth", "--name", "eth1"], "needs --bridge"),
    (["--type", "eth", "--name", "lo:eth1", "--bridge", "x"], "cannot be attached"),
    (["--type", "eth", "--name", "eth1"], "needs the host interface"),
    (["--type", "tun", "--name", "eth1"], "not one of veth, eth"),
    (["--type", "veth", "--name", "eth1234567890123", "--bridge", "x"], "at most 15"),
    (["--type", "veth", "--name", "lo:eth1", "--bridge", BRIDGE], "host already has"),
    (["--type", "eth", "--name", f"{PREFIX}none:eth1"], "not found on the host"),
    (["--type", "eth", "--name", "lo:eth1"], "loopback"),
], ids=["unknown-bridge", "veth-no-bridge", "eth-bridge", "eth-no-host", "bad-type",
        "long-name", "host-name-taken", "eth-missing", "eth-lo"])
def test_bad_nic(shared, tool, state_dir, bridge, args, why):
    c = shared
    snap = Snapshot(c, state_dir)
    r = tool("add-nic", *args, c.id)
    assert r.returncode == 1, r
    assert r.stderr.startswith("Failed to add network interface: "), r.stderr
    assert why in r.stderr
    assert snap.unchanged()


def test_name_ip_mac_conflicts_in_record(make_container, tool, state_dir, bridge):
    c = make_container()
    host = tool("add-nic", "--type", "veth", "--name", "eth1", "--ip", f"{NET}.66/26",
                "--mac", "02:00:00:13:01:01", "--bridge", bridge, c.id, check=True)
    try:
        snap = Snapshot(c, state_dir)
        for args, why in [
            (["--name", "eth1", "--ip", f"{NET}.67/26"], "already has a network interface named eth1"),
            (["--name", "eth2", "--ip", f"{NET}.66/26"], f"ip {NET}.66/26 is already used"),
            (["--name", "eth2", "--mac", "02:00:00:13:01:01"], "is already used by eth1"),
        ]:
            r = tool("add-nic", "--type", "veth", "--bridge", bridge, *args, c.id)
            assert r.returncode == 1 and why in r.stderr, r.stderr
            assert snap.unchanged()
        r = tool("update-nic", "--name", "eth1", "--mtu", "70000", c.id)
        assert r.returncode == 1 and r.stderr.startswith("Failed to update network interface: ")
        r = tool("update-nic", "--name", "eth9", "--mtu", "1400", c.id)
        assert r.returncode == 1 and "not added" in r.stderr
        r = tool("remove-nic", "--name", "eth9", c.id)
        assert r.returncode == 1 and r.stderr.startswith("Failed to remove network interface: ")
        r = tool("update-nic", "--name", "eth1", "--bridge", f"{PREFIX}nobr", c.id)
        assert r.returncode == 1 and "not found" in r.stderr
        assert snap.unchanged()
        with IPRoute() as ipr:  # the host end is still on the bridge
            hname = state_of(state_dir, c.id)["nics"][0]["host_name"]
            assert link(ipr, hname).get("IFLA_MASTER") == ipr.link_lookup(ifname=bridge)[0]
    finally:
        tool("remove-nic", "--name", "eth1", c.id)
    assert "eth1" in host.stdout


def test_ninth_eth_and_eth_of_another_container(make_container, tool, state_dir, standins):
    a = make_container("a")
    b = make_container("b")
    for i, name in enumerate(standins[:8]):
        tool("add-nic", "--type", "eth", "--name", f"{name}:eth{i + 1}", a.id, check=True)
    try:
        snap_a = Snapshot(a, state_dir)
        r = tool("add-nic", "--type", "eth", "--name", f"{standins[8]}:eth9", a.id)
        assert r.returncode == 1 and "8 physical NICs" in r.stderr, r.stderr
        assert snap_a.unchanged() and standins[8] in host_links()
        snap_b = Snapshot(b, state_dir)
        r = tool("add-nic", "--type", "eth", "--name", f"{standins[0]}:eth1", b.id)
        assert r.returncode == 1, r
        assert r.stderr.startswith("Failed to add network interface: ")
        assert f"already added to container {a.id}" in r.stderr
        assert snap_b.unchanged()
    finally:
        for i, name in enumerate(standins[:8]):
            tool("remove-nic", "--name", f"{name}:eth{i + 1}", a.id)
    assert set(standins) <= host_links()


def test_rollback_veth_deleted_when_attach_fails(make_container, runtime_root, state_dir,
                                                 bridge, monkeypatch):
    c = make_container()
    container = find(c.id, Engine.RUNC, runtime_root)
    snap = Snapshot(c, state_dir)
    spec = nic.Nic.parse(type="veth", name=f"{PREFIX}r:eth1", ip=f"{NET}.70/26",
                         bridge=bridge)
    monkeypatch.setattr(veth, "attach", lambda *a: (_ for _ in ()).throw(
        ToolError("injected failure in attach")))
    with pytest.raises(ToolError, match="injected"), \
            StateStore(state_dir).transaction(c.id) as record:
        nic.add_nic(container, record, spec, ref=c.id)
    assert snap.unchanged()


def test_rollback_eth_returned_when_configure_fails(make_container, runtime_root, state_dir,
                                                   monkeypatch):
    name, peer = f"{PREFIX}q0", f"{PREFIX}q1"
    mac = make_standin(name, peer, mtu=1420, up=True)
    try:
        c = make_container()
        container = find(c.id, Engine.RUNC, runtime_root)
        snap = Snapshot(c, state_dir)
        spec = nic.Nic.parse(type="eth", name=f"{name}:eth1", ip=f"{NET}.71/26", mtu="1300")
        monkeypatch.setattr(netlink, "address", lambda *a: (_ for _ in ()).throw(
            ToolError("injected failure in address")))
        with pytest.raises(ToolError, match="injected"), \
                StateStore(state_dir).transaction(c.id) as record:
            nic.add_nic(container, record, spec, ref=c.id)
        assert snap.unchanged()
        with IPRoute() as ipr:
            m = link(ipr, name)
            assert m.get("IFLA_MTU") == 1420 and m.get("IFLA_ADDRESS") == mac
            assert m["flags"] & 1
            assert addrs(ipr, name) == set()
    finally:
        delete_links(name, peer)


def test_container_in_host_netns_refused(make_container, tool, state_dir, bridge):
    c = make_container("hostnet", netns=False)
    before = host_links()
    r = tool("add-nic", "--type", "veth", "--name", "eth1", "--bridge", bridge, c.id)
    assert r.returncode == 1 and "shares the host's network namespace" in r.stderr, r.stderr
    r = tool("add-route", c.id, '[{"dest":"198.51.100.0/24","dev":"lo"}]')
    assert r.returncode == 1 and "shares the host's network namespace" in r.stderr, r.stderr
    assert host_links() == before and state_of(state_dir, c.id) is None
