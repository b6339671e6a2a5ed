"""rtnl.py, the tools' own rtnetlink client: what it reads is what pyroute2
reads, a refused request is ``NetlinkError`` with the errno (rendered by
netlink.failing), and the tools' handles import no pyroute2 at all."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from pyroute2 import IPRoute

from syscontainer_tools import netlink, rtnl
from syscontainer_tools.errors import ToolError


def run(code: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_host_handle_and_errors_without_pyroute2() -> None:
    out = run(
        "import errno, json, sys\n"
        "from syscontainer_tools import netlink\n"
        "from syscontainer_tools.errors import ToolError\n"
        "with netlink.host() as ipr:\n"
        "    lo = netlink.link_index(ipr, 'lo')\n"
        "    try:\n"
        "        with netlink.failing('delete it'):\n"
        "            ipr.link('del', index=2**31 - 1)\n"
        "        err = None\n"
        "    except ToolError as e:\n"
        "        err = str(e)\n"
        "print(json.dumps({'lo': lo, 'err': err, 'pyroute2': sorted(m for m in sys.modules "
        "if m.split('.')[0] == 'pyroute2')}))\n")
    assert out["lo"] == 1
    assert out["err"] == "delete it: No such device"
    assert out["pyroute2"] == []


LINK_KEYS = ("index", "flags", "IFLA_IFNAME", "IFLA_ADDRESS", "IFLA_MTU", "IFLA_TXQLEN",
             "IFLA_MASTER")


def test_links_read_as_pyroute2_reads_them() -> None:
    with netlink.host() as ours, IPRoute() as theirs:
        mine = {m["index"]: m for m in ours.get_links()}
        for msg in theirs.get_links():
            got = mine[msg["index"]]
            for key in LINK_KEYS:
                assert got.get(key) == msg.get(key), key
            info = msg.get("IFLA_LINKINFO")
            kind = info.get("IFLA_INFO_KIND") if info is not None else None
            assert netlink.link_kind(got) == kind
        lo = ours.get_links(ifname="lo")
        assert [m["index"] for m in lo] == [1] == ours.link_lookup(ifname="lo")
        assert ours.get_links(1)[0]["IFLA_IFNAME"] == "lo"
        assert ours.link_lookup(ifname="sctnosuchlink") == []
        with pytest.raises(rtnl.NetlinkError) as err:
            ours.get_links(ifname="sctnosuchlink")
        assert err.value.code == 19  # ENODEV


def test_addresses_and_routes_read_as_pyroute2_reads_them() -> None:
    with netlink.host() as ours, IPRoute() as theirs:
        mine = sorted((m["index"], m["prefixlen"], m["scope"], m.get("IFA_ADDRESS"))
                      for m in ours.get_addr())
        want = sorted((m["index"], m["prefixlen"], m["scope"], m.get("IFA_ADDRESS"))
                      for m in theirs.get_addr())
        assert mine == want
        assert netlink.global_addrs(ours, 1) == []  # lo's are host scope
        for family in (socket.AF_INET, socket.AF_INET6):
            keys = ("dst_len", "RTA_DST", "RTA_OIF", "RTA_GATEWAY")
            mine_r = sorted(tuple(str(m.get(k)) for k in keys)
                            for m in ours.get_routes(family=family, table=254))
            want_r = sorted(tuple(str(m.get(k)) for k in keys)
                            for m in theirs.get_routes(family=family, table=254))
            assert mine_r == want_r


def test_a_refused_change_is_a_tool_error() -> None:
    with netlink.host() as ipr:
        with pytest.raises(ToolError) as err, netlink.failing("set mtu on nothing"):
            ipr.link("set", index=2**31 - 1, mtu=1500)
        assert str(err.value) == "set mtu on nothing: No such device"
        assert err.value.errno == 19
        with pytest.raises(ToolError) as err:
            netlink.address(ipr, "del", "lo", "192.0.2.77/32")  # lo has no such address
        assert str(err.value).startswith("delete address 192.0.2.77/32 of lo: ")
