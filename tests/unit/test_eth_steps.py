"""Physical NIC steps against a recording stand-in for the netlink handle (rtnl.Handle, pyroute2-like):
no link is ever renamed while it may be up (issue 10: kernels before live
renaming, 6.1 say, refuse that with EBUSY), and a corrupt record of another
container is never silently passed over."""

from __future__ import annotations

import contextlib

import pytest

from syscontainer_tools import netlink
from syscontainer_tools.errors import Conflict
from syscontainer_tools.resources import eth
from syscontainer_tools.resources.nicspec import HostState, Nic, NicType
from syscontainer_tools.resources.state import StateStore

IFF_UP = 0x1


class FakeLinks:
    """Links by index; every RTM_SETLINK recorded; a rename of an up link
    fails as it does before Linux 6.4."""

    def __init__(self, links: dict[int, dict]):
        self.links = links
        self.requests: list[dict] = []

    def link_lookup(self, ifname: str) -> list[int]:
        return [i for i, link in self.links.items() if link["name"] == ifname]

    def get_links(self, *indexes: int, ifname: str | None = None) -> list[dict]:
        chosen = [i for i, link in self.links.items()
                  if (not indexes or i in indexes) and (ifname is None or link["name"] == ifname)]
        return [_msg(i, self.links[i]) for i in chosen]

    def get_addr(self, index: int) -> list[dict]:
        return []

    def get_routes(self, **_kw: object) -> list[dict]:
        return []

    def link(self, cmd: str, index: int, **attrs: object) -> None:
        from syscontainer_tools.rtnl import NetlinkError

        self.requests.append(dict(attrs, index=index))
        link = self.links[index]
        if "ifname" in attrs:
            up = link["up"] if attrs.get("state") is None else attrs["state"] == "up"
            if link["up"] or "state" in attrs and up:
                raise NetlinkError(16, "Device or resource busy")   # EBUSY
            link["name"] = attrs["ifname"]
        if "state" in attrs:
            link["up"] = attrs["state"] == "up"
        if "net_ns_fd" in attrs:
            link["moved"] = attrs["net_ns_fd"]


def _msg(index: int, link: dict) -> dict:
    return {"index": index, "flags": IFF_UP if link["up"] else 0, "IFLA_IFNAME": link["name"],
            "IFLA_ADDRESS": link.get("mac", ""), "IFLA_MTU": 1500, "IFLA_TXQLEN": 1000,
            "IFLA_LINKINFO": None}


def test_down_and_rename_are_two_requests():
    ipr = FakeLinks({3: {"name": "eth9", "up": True}})
    netlink.down_and_rename(ipr, 3, "sct0", "prepare eth9")   # type: ignore[arg-type]
    assert ipr.requests == [{"index": 3, "state": "down"}, {"index": 3, "ifname": "sct0"}]
    assert ipr.links[3] == {"name": "sct0", "up": False}


def test_rename_back_brings_it_up_after_the_rename():
    ipr = FakeLinks({3: {"name": "sct0", "up": False}})
    netlink.rename_if_there(ipr, "sct0", "eth1", up=True)    # type: ignore[arg-type]
    assert ipr.requests == [{"index": 3, "state": "down"}, {"index": 3, "ifname": "eth1"},
                            {"index": 3, "state": "up"}]
    assert ipr.links[3] == {"name": "eth1", "up": True}


def test_unplug_of_an_up_eth_never_renames_it_up():
    """remove-nic / poststop: the eth is up in the container; it goes back to
    the host as enp9s0 on a kernel that refuses to rename an up link."""
    nic = Nic(NicType.ETH, "eth1", "enp9s0", host_state=HostState(1500, 1000, False, ()))
    ns = FakeLinks({7: {"name": "eth1", "up": True}})
    host = FakeLinks({})

    def moved(cmd: str, index: int, **attrs: object) -> None:
        FakeLinks.link(ns, cmd, index, **attrs)
        if "net_ns_fd" in attrs:      # the link appears on the host
            host.links[index] = dict(ns.links.pop(index))

    ns.link = moved  # type: ignore[method-assign]
    eth.unplug(host, ns, 10, 11, nic)   # type: ignore[arg-type]
    assert host.links[7]["name"] == "enp9s0"
    for req in ns.requests + host.requests:
        assert not ("ifname" in req and "state" in req), req


def test_recover_renames_down_first():
    nic = Nic(NicType.ETH, "eth1", "enp9s0", mac="52:54:00:00:00:09")
    host = FakeLinks({4: {"name": "eth0x", "up": True, "mac": "52:54:00:00:00:09"}})
    eth.recover(host, nic)   # type: ignore[arg-type]
    assert host.links[4]["name"] == "enp9s0"
    assert host.requests[:2] == [{"index": 4, "state": "down"}, {"index": 4, "ifname": "enp9s0"}]


def test_holders_refuse_a_corrupt_record(tmp_path):
    store = StateStore(str(tmp_path))
    with store.transaction("c2") as rec:
        rec.nics.append(Nic(NicType.ETH, "eth1", "enp1s0"))
    assert eth.holders(store, "c1") == {"enp1s0": "c2"}
    (tmp_path / "c3").mkdir()
    (tmp_path / "c3" / "state.json").write_text("{torn")
    with pytest.raises(Conflict, match="container c3") as err:
        eth.holders(store, "c1")
    assert "--force" in (err.value.hint or "")
    assert eth.holders(store, "c1", force=True) == {"enp1s0": "c2"}


def test_plug_rollback_renames_down(monkeypatch):
    """A failure after the move: every undo rename is down-then-rename."""
    nic = Nic(NicType.ETH, "eth1", "enp9s0")
    host = FakeLinks({5: {"name": "enp9s0", "up": True, "mac": "52:54:00:00:00:05"}})
    ns = FakeLinks({})

    def moving(cmd: str, index: int, **attrs: object) -> None:
        FakeLinks.link(host, cmd, index, **attrs)
        if "net_ns_fd" in attrs:
            ns.links[index] = dict(host.links.pop(index))

    def back(cmd: str, index: int, **attrs: object) -> None:
        if attrs.get("mtu"):
            from syscontainer_tools.rtnl import NetlinkError
            raise NetlinkError(22, "Invalid argument")
        FakeLinks.link(ns, cmd, index, **attrs)
        if "net_ns_fd" in attrs:
            host.links[index] = dict(ns.links.pop(index))

    host.link = moving  # type: ignore[method-assign]
    ns.link = back      # type: ignore[method-assign]
    monkeypatch.setattr(netlink, "global_addrs", lambda ipr, index: [])
    with pytest.raises(Exception, match="set mtu and qlen"), contextlib.ExitStack() as stack:
        eth.plug(host, ns, 10, 11, nic, stack, force=True)  # type: ignore[arg-type]
    assert host.links[5]["name"] == "enp9s0", "back on the host under its own name"
    assert host.links[5]["up"], "and up again, as it was"
    for req in ns.requests + host.requests:
        assert not ("ifname" in req and "state" in req), req
