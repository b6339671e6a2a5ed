"""What the OCI hooks call: pin the netns at prestart, give NICs back at
poststop, re-create NICs and routes in the new namespace of a restart."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

from syscontainer_tools.engines import Engine, find
from syscontainer_tools.resources import nic, route
from syscontainer_tools.state import StateStore

from .conftest import PREFIX
from .nethelpers import (
    NET,
    NET6,
    addrs,
    delete_links,
    host_links,
    in_ctr,
    link,
    make_bridge,
    make_standin,
    routes,
)

pytestmark = pytest.mark.system

BRIDGE = f"{PREFIX}k"


@pytest.fixture
def setup() -> Iterator[tuple[str, str, str]]:
    make_bridge(BRIDGE, f"{NET}.193/27")
    name, peer = f"{PREFIX}k0", f"{PREFIX}k1"
    mac = make_standin(name, peer, mtu=1480)
    try:
        yield name, peer, mac
    finally:
        delete_links(BRIDGE, name, peer)


def test_pin_poststop_restart_reapply(make_container, tool, runtime_root, state_dir, setup,
                                      tmp_path):
    eth, _, mac = setup
    pins = str(tmp_path / "netns")
    c = make_container("hook")
    tool("add-nic", "--type", "veth", "--name", f"{PREFIX}kv:eth1", "--ip", f"{NET}.194/27",
         "--bridge", BRIDGE, c.id, check=True)
    tool("add-nic", "--type", "eth", "--name", f"{eth}:eth2", "--ip", f"{NET6}::9/64",
         "--mtu", "1400", c.id, check=True)
    tool("add-route", c.id, f'[{{"dest":"10.214.0.0/16","gw":"{NET}.193"}},'
         f'{{"dest":"","gw":"{NET6}::1","dev":"eth2"}}]', check=True)
    store = StateStore(state_dir)
    try:
        container = find(c.id, Engine.RUNC, runtime_root)
        pinned = nic.pin_netns(container, pins)
        assert os.path.ismount(pinned)
        c.stop()  # the init is gone: only the pin keeps the namespace
        assert eth not in host_links() and f"{PREFIX}kv" in host_links()
        lines = nic.poststop(container, store.load(c.id), pins)
        assert lines == [
            f"Remove network interface ({PREFIX}kv) from container ({c.id},eth1) done",
            f"Remove network interface ({eth}) from container ({c.id},eth2) done"]
        assert not os.path.exists(pinned)
        with IPRoute() as ipr:
            m = link(ipr, eth)
            assert m is not None and m.get("IFLA_MTU") == 1480 and m.get("IFLA_ADDRESS") == mac
            assert not m["flags"] & 1, "it was down before"
        assert f"{PREFIX}kv" not in host_links()
        # a second poststop finds everything gone already: fine
        assert len(nic.poststop(container, store.load(c.id), pins)) == 2

        c.start()  # a new network namespace, only lo in it
        container = find(c.id, Engine.RUNC, runtime_root)
        for _ in range(2):  # the second round shows reapply is idempotent
            with store.transaction(c.id) as record, container.init_process() as pidfd:
                nic.pin_netns(container, pins)
                nic.reapply(container, pidfd, record)
                route.reapply(container, pidfd, record["routes"])
        with in_ctr(c) as ns:
            assert link(ns, "eth1") is not None and link(ns, "eth2") is not None
            assert link(ns, "eth2").get("IFLA_ADDRESS") == mac
            assert link(ns, "eth2").get("IFLA_MTU") == 1400
            assert addrs(ns, "eth1") == {f"{NET}.194/27"}
            assert ("10.214.0.0/16", f"{NET}.193", "eth1") in routes(ns, socket.AF_INET)
            assert ("default", f"{NET6}::1", "eth2") in routes(ns, socket.AF_INET6)
        assert f"{PREFIX}kv" in host_links() and eth not in host_links()
        c.stop()
        nic.poststop(container, store.load(c.id), pins)
        assert eth in host_links() and f"{PREFIX}kv" not in host_links()
    finally:
        from syscontainer_tools import netlink

        netlink.unpin(c.id, pins)
