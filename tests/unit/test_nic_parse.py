"""NIC specs, names, filters and record checks: pure, no root."""

from __future__ import annotations

import pytest

from syscontainer_tools import netlink
from syscontainer_tools.errors import Conflict, NotFound, SpecError
from syscontainer_tools.resources import nic
from syscontainer_tools.resources.nicspec import HostState
from syscontainer_tools.resources.routespec import RouteSpec
from syscontainer_tools.resources.state import Record


def spec(**kw):
    kw.setdefault("type", "veth")
    kw.setdefault("name", "eth1")
    if kw["type"] == "veth":
        kw.setdefault("bridge", "br0")
    return nic.Nic.parse(**kw)


def test_defaults_and_canonical_values():
    s = spec(ip="10.0.0.2/24", mac="02:AA:bb:CC:dd:EE")
    assert (s.type, s.ctr_name, s.host_name, s.mtu, s.qlen) == (nic.NicType.VETH, "eth1", "",
                                                                1500, 1000)
    assert s.mac == "02:aa:bb:cc:dd:ee" and s.ip == "10.0.0.2/24"
    assert spec(ip="FD00:0::2/64").ip == "fd00::2/64"
    assert spec(mtu="68").mtu == 68 and spec(mtu="65535").mtu == 65535
    assert spec(qlen="0").qlen == 0


def test_names():
    assert nic.NicName.parse("vethx:eth1") == nic.NicName("vethx", "eth1")
    assert nic.NicName.parse("eth1") == nic.NicName("", "eth1")
    for bad, why in [(":eth1", "host part"), ("veth:", "missing"), ("a:b:c", "cannot contain"),
                     ("x" * 16, "at most 15"), ("a b", "cannot contain"), ("..", "'.' or '..'"),
                     ("a/b", "cannot contain")]:
        with pytest.raises(SpecError, match=why):
            nic.NicName.parse(bad)


@pytest.mark.parametrize(("kw", "why"), [
    ({"ip": "10.0.0.2"}, "prefix length"),
    ({"ip": "10.0.0.256/24"}, "not an IPv4 or IPv6"),
    ({"ip": "0.0.0.0/8"}, "unspecified"),
    ({"ip": "224.0.0.1/4"}, "multicast"),
    ({"mac": "zz:00:00:00:00:00"}, "not a MAC"),
    ({"mac": "03:00:00:00:00:01"}, "multicast"),
    ({"mac": "00:00:00:00:00:00"}, "all-zero"),
    ({"mtu": "67"}, "out of range"),
    ({"mtu": "65536"}, "out of range"),
    ({"mtu": "1.5"}, "whole number"),
    ({"qlen": "-1"}, "out of range"),
    ({"qlen": str(2**32)}, "out of range"),
    ({"type": "tap"}, "not one of veth, eth"),
    ({"bridge": ""}, "needs --bridge"),
    ({"type": "eth", "name": "eth0:eth1", "bridge": "br0"}, "cannot be attached"),
    ({"type": "eth", "name": "eth1"}, "needs the host interface"),
    ({"ip": "fd00::1/64", "mtu": "1279"}, "IPv6 minimum"),
    ({"bridge": "b" * 16}, "at most 15"),
])
def test_bad_specs(kw, why):
    with pytest.raises(SpecError, match=why):
        spec(**kw)


def test_update_parse():
    u = nic.NicUpdate.parse(name="eth1", mtu="1400", qlen="0")
    assert (u.mtu, u.qlen, u.ip, u.mac, u.bridge) == (1400, 0, None, None, None)
    with pytest.raises(SpecError, match="nothing to update"):
        nic.NicUpdate.parse(name="eth1")
    with pytest.raises(SpecError, match="out of range"):
        nic.NicUpdate.parse(name="eth1", mtu="10")


def record_with(*items):
    r = Record("c1")
    r.nics = list(items)
    return r


ETH1 = nic.Nic(nic.NicType.VETH, "eth1", "vethaaaaaaaaaa", "10.0.0.2/24", "02:00:00:00:00:01",
               "br0", 1500, 1000)
ETH2 = nic.Nic(nic.NicType.ETH, "eth2", "enp1s0", "fd00::2/64", "52:54:00:00:00:02", "", 9000,
               1000, HostState(9000, 1000, True, ()))


def test_list_and_filter():
    r = record_with(ETH1, ETH2)
    assert [row["CtrNicName"] for row in nic.list_nics(r)] == ["eth1", "eth2"]
    assert "Host" not in nic.list_nics(r)[1]
    assert [x["CtrNicName"] for x in nic.list_nics(r, '{"ip":"10.0.0.2/24"}')] == ["eth1"]
    assert [x["CtrNicName"] for x in nic.list_nics(r, '{"MTU":"9000"}')] == ["eth2"]
    assert [x["CtrNicName"] for x in nic.list_nics(r, '{"Mtu":9000,"Type":"ETH"}')] == ["eth2"]
    assert [x["CtrNicName"] for x in nic.list_nics(r, '{"Ip":"FD00:0::2/64"}')] == ["eth2"]
    assert [x["CtrNicName"] for x in nic.list_nics(r, '{"Ip":"","Mtu":0}')] == ["eth1", "eth2"]
    assert nic.list_nics(r, '{"Mtu":1400}') == []
    for bad, why in [('{"speed":1}', "not one of"), ("[1]", "JSON object"), ("{", "not valid JSON"),
                     ('{"Mtu":[1]}', "string or a number")]:
        with pytest.raises(SpecError, match=why):
            nic.list_nics(r, bad)


def test_conflicts():
    items = [ETH1]
    for item, why in [
        (ETH1.replace(host_name="x", ip="", mac=""), "named eth1"),
        (ETH1.replace(ctr_name="eth5", ip="", mac=""), "already added"),
        (ETH1.replace(ctr_name="eth5", host_name="x", ip=""), "mac"),
        (ETH1.replace(ctr_name="eth5", host_name="x", mac="", ip="10.0.0.2/16"),
         "ip 10.0.0.2/16 is already used"),
    ]:
        with pytest.raises(Conflict, match=why):
            nic.check_conflicts(item, items)
    nic.check_conflicts(ETH1.replace(ctr_name="eth5", host_name="", mac="", ip="10.0.0.3/24"),
                        items)


def test_repeated_add_matches_saved():
    s = spec(ip="10.0.0.2/24", mac="02:00:00:00:00:01")
    assert s.matches(ETH1)
    assert not spec(ip="10.0.0.3/24").matches(ETH1)
    assert not spec(name="other:eth1", ip="10.0.0.2/24").matches(ETH1)


def test_find_nic():
    r = record_with(ETH1, ETH2)
    assert nic.find_nic(r, nic.NicName("", "eth2")).host_name == "enp1s0"
    assert nic.find_nic(r, nic.NicName("enp1s0", "eth2"), nic.NicType.ETH)
    with pytest.raises(NotFound):
        nic.find_nic(r, nic.NicName("", "eth2"), nic.NicType.VETH)
    with pytest.raises(NotFound):
        nic.find_nic(r, nic.NicName("other", "eth2"))


def test_routes_through_nic():
    def r(dev="", gw="", src=""):
        return RouteSpec("x", src, gw, dev)

    assert nic.routes_through(r(dev="eth1"), ETH1)
    assert nic.routes_through(r(gw="10.0.0.1"), ETH1)
    assert not nic.routes_through(r(gw="10.1.0.1"), ETH1)
    assert nic.routes_through(r(src="10.0.0.2"), ETH1)
    assert not nic.routes_through(r(dev="eth2", gw="10.0.0.1"), ETH1)


def test_ifname_and_random_names():
    assert netlink.ifname_problem("veth0123456789") is None
    assert netlink.ifname_problem("") is not None
    name = netlink.random_name("veth")
    assert len(name) == 14 and name.startswith("veth") and name[4:].isalnum()
    assert name[4:] == name[4:].lower()
