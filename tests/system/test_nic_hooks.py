"""What the OCI hooks call: pin the netns at prestart, give NICs back at
poststop, re-create NICs and routes in the new namespace of a restart."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

from syscontainer_tools.engines import Engine, find
from syscontainer_tools.resources import nic, route
from syscontainer_tools.resources.state import StateStore

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
from .test_hooks import hooks_for
from .waits import polls

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
                route.reapply(container, pidfd, record)
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


def test_runc_hooks_bring_everything_back(make_container, make_loop, tool, state_dir, setup,
                                         tmp_path):
    """End to end: runc runs syscontainer-hooks at prestart and poststop; a
    device, a path, a veth on a bridge, a route and a physical-NIC stand-in
    all come back after restarts, checked from inside."""
    eth, _, mac = setup
    c = make_container("hk-net", hooks=hooks_for(state_dir))
    loop = make_loop(8)
    share = tmp_path / "share"
    share.mkdir()
    (share / "f").write_text("shared\n")
    try:
        tool("add-device", c.id, f"{loop.path}:/dev/vdb", check=True)
        tool("add-path", c.id, f"{share}:/mnt/share", check=True)
        tool("add-nic", "--type", "veth", "--name", f"{PREFIX}kh:eth1", "--ip",
             f"{NET}.195/27", "--bridge", BRIDGE, c.id, check=True)
        tool("add-route", c.id, f'[{{"dest":"10.215.0.0/16","gw":"{NET}.193"}}]', check=True)
        # the first start had nothing saved, so nothing pinned its netns: a stand-in
        # eth (a veth end) would die with it.  From this start on, prestart pins.
        c.restart()
        assert os.path.ismount(f"/run/syscontainer-tools/netns/{c.id}")
        tool("add-nic", "--type", "eth", "--name", f"{eth}:eth2", "--ip", f"{NET6}::7/64",
             c.id, check=True)
        with in_ctr(c) as ns:
            veth_mac = link(ns, "eth1").get("IFLA_ADDRESS")
        old = c.pid
        c.restart()  # poststop hook at delete gives eth2 back, prestart puts all back
        assert c.pid != old
        with in_ctr(c) as ns:
            assert link(ns, "eth2").get("IFLA_ADDRESS") == mac
            assert link(ns, "eth1").get("IFLA_ADDRESS") == veth_mac  # a stable MAC
            assert addrs(ns, "eth1") == {f"{NET}.195/27"}
            assert addrs(ns, "eth2") == {f"{NET6}::7/64"}
            assert ("10.215.0.0/16", f"{NET}.193", "eth1") in routes(ns, socket.AF_INET)
        major, minor = loop.majmin
        assert c.exec("stat", "-c", "%F %t:%T", "/dev/vdb").stdout.split()[-1] == \
            f"{major:x}:{minor:x}"
        assert c.exec("cat", "/mnt/share/f").stdout == "shared\n"
        assert eth not in host_links()
        c.stop()  # the poststop hook gives the eth back and deletes the veth
        assert eth in host_links() and f"{PREFIX}kh" not in host_links()
        with IPRoute() as ipr:
            assert link(ipr, eth).get("IFLA_MTU") == 1480
    finally:
        from syscontainer_tools import netlink

        netlink.unpin(c.id)
        delete_links(f"{PREFIX}kh")


def test_remove_nic_of_stopped_container_uses_the_pin(make_container, tool, runtime_root,
                                                      setup):
    """Stopped, poststop not run yet: remove-nic still gets the eth out of the
    pinned namespace and deletes the veth's host end."""
    from syscontainer_tools import netlink

    eth, _, mac = setup
    c = make_container("hk-rm")
    try:
        tool("add-nic", "--type", "veth", "--name", f"{PREFIX}kr:eth1", "--bridge", BRIDGE,
             c.id, check=True)
        tool("add-nic", "--type", "eth", "--name", f"{eth}:eth2", "--ip", f"{NET}.196/27",
             c.id, check=True)
        nic.pin_netns(find(c.id, Engine.RUNC, runtime_root))
        c.runc("kill", c.id, "KILL")
        for _ in polls(5):
            if c.state()["status"] == "stopped":
                break
            time.sleep(0.05)
        assert eth not in host_links() and f"{PREFIX}kr" in host_links()
        r = tool("remove-nic", "--name", f"{eth}:eth2", c.id, check=True)
        assert "not running" in r.stderr
        tool("remove-nic", "--name", "eth1", c.id, check=True)
        with IPRoute() as ipr:
            m = link(ipr, eth)
            assert m is not None and m.get("IFLA_MTU") == 1480 and m.get("IFLA_ADDRESS") == mac
            assert addrs(ipr, eth) == set()
        assert f"{PREFIX}kr" not in host_links()
    finally:
        netlink.unpin(c.id)
        delete_links(f"{PREFIX}kr")
