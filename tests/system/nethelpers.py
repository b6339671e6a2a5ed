"""Shared pieces of the NIC and route system tests: a test-made bridge, veth
stand-ins for physical NICs, containers that may ping, netns inspection.

Everything is named with the session PREFIX and lives in a 10.213.X.0/24
(and fd00:213:X::/64) range derived from it, used by no other test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from .conftest import PREFIX, Ctr, write_config

OCTET = int(PREFIX[-2:], 16)
NET = f"10.213.{OCTET}"
NET6 = f"fd00:213:{OCTET:x}"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


# Links another test session or the demo may be making on the same host at
# the same time: not this session's business.
_OTHERS = re.compile(r"^(sct[0-9a-f]{6}|scdemo)")


def host_links() -> set[str]:
    with IPRoute() as ipr:
        names = {str(m.get("IFLA_IFNAME")) for m in ipr.get_links()}
    return {n for n in names if n.startswith(PREFIX) or not _OTHERS.match(n)}


def link(ipr: IPRoute, name: str) -> Any:
    found = ipr.link_lookup(ifname=name)
    return ipr.get_links(found[0])[0] if found else None


@contextlib.contextmanager
def in_ctr(ctr: Ctr) -> Iterator[IPRoute]:
    with IPRoute(netns=f"/proc/{ctr.pid}/ns/net", flags=0) as ipr:
        yield ipr


def ctr_links(ctr: Ctr) -> set[str]:
    with in_ctr(ctr) as ipr:
        return {str(m.get("IFLA_IFNAME")) for m in ipr.get_links()}


def addrs(ipr: IPRoute, name: str) -> set[str]:
    index = ipr.link_lookup(ifname=name)[0]
    return {f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}" for m in ipr.get_addr(index=index)
            if m["scope"] == 0}


def routes(ipr: IPRoute, family: int) -> set[tuple[str, str, str]]:
    """(dest, gw, dev) of the main table, dest 'default' for /0."""
    names = {m["index"]: m.get("IFLA_IFNAME") for m in ipr.get_links()}
    out = set()
    for r in ipr.get_routes(family=family, table=254):
        dest = "default" if r["dst_len"] == 0 else f"{r.get('RTA_DST')}/{r['dst_len']}"
        out.add((dest, r.get("RTA_GATEWAY") or "", names.get(r.get("RTA_OIF"), "")))
    return out


def allow_ping(ctr: Ctr) -> None:
    """Give a not-yet-started container CAP_NET_RAW (busybox ping needs it)."""
    cfg_path = ctr.bundle / "config.json"
    cfg = json.loads(cfg_path.read_text())
    for key, caps in cfg["process"]["capabilities"].items():
        if "CAP_NET_RAW" not in caps:
            caps.append("CAP_NET_RAW")
        cfg["process"]["capabilities"][key] = caps
    cfg_path.write_text(json.dumps(cfg, indent=1))


def pinger(make_container: Any, name: str) -> Ctr:
    ctr = make_container(name, start=False)
    allow_ping(ctr)
    ctr.start()
    return ctr


def ping(ctr: Ctr | None, ip: str) -> subprocess.CompletedProcess[str]:
    """One ping from the container (or the host, ``ctr=None``)."""
    argv = ["ping", "-c", "1", "-W", "2", ip]
    if ctr is None:
        return subprocess.run([BUSYBOX, *argv], capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL)
    return ctr.exec(*argv, check=False)


def delete_links(*names: str) -> None:
    with IPRoute() as ipr:
        for name in names:
            for index in ipr.link_lookup(ifname=name):
                with contextlib.suppress(Exception):
                    ipr.link("del", index=index)


def make_bridge(name: str, cidr: str) -> None:
    ip, _, plen = cidr.partition("/")
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="bridge")
        index = ipr.link_lookup(ifname=name)[0]
        ipr.addr("add", index=index, address=ip, prefixlen=int(plen))
        ipr.link("set", index=index, state="up")


def make_standin(name: str, peer: str, *, mtu: int = 1500, up: bool = False,
                 peer_cidr: str | None = None) -> str:
    """A veth pair on the host: ``name`` plays the physical NIC, ``peer``
    stays on the host (with ``peer_cidr``) as the wire's other end.
    Returns the MAC of ``name``.  Both ends get a MAC of the test's own: a
    random one from the kernel is rewritten by udevd (MACAddressPolicy=
    persistent, as in the VM lane's guests) after the test has read it."""
    macs = ["02:" + ":".join(secrets.token_hex(1) for _ in range(5)) for _ in range(2)]
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="veth", mtu=mtu, address=macs[0],
                 peer={"ifname": peer, "mtu": mtu, "address": macs[1]})
        index = ipr.link_lookup(ifname=name)[0]
        pidx = ipr.link_lookup(ifname=peer)[0]
        if peer_cidr:
            ip, _, plen = peer_cidr.partition("/")
            ipr.addr("add", index=pidx, address=ip, prefixlen=int(plen))
        ipr.link("set", index=pidx, state="up")
        if up:
            ipr.link("set", index=index, state="up")
        return str(ipr.get_links(index)[0].get("IFLA_ADDRESS"))


def state_of(state_dir: str, cid: str) -> dict[str, Any] | None:
    path = os.path.join(state_dir, cid, "state.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        data: dict[str, Any] = json.load(f)
    return data


@contextlib.contextmanager
def module_container(name: str, runtime_root: str, rootfs_template: Path,
                     tmp_path_factory: Any) -> Iterator[Ctr]:
    """One container for a whole module (``make_container`` is per test)."""
    cid = f"{PREFIX}-{name}"
    bundle = tmp_path_factory.mktemp(cid)
    shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
    write_config(bundle)
    ctr = Ctr(cid, bundle, runtime_root)
    ctr.start()
    try:
        yield ctr
    finally:
        ctr.stop()


def veth_into(ctr: Ctr, host: str, inside: str, cidr: str) -> None:
    """A veth made by the test (not by the tool), its peer in the container."""
    ip, _, plen = cidr.partition("/")
    fd = os.open(f"/proc/{ctr.pid}/ns/net", os.O_RDONLY)
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=host, kind="veth", peer={"ifname": inside, "net_ns_fd": fd})
            ipr.link("set", index=ipr.link_lookup(ifname=host)[0], state="up")
        with in_ctr(ctr) as ns:
            index = ns.link_lookup(ifname=inside)[0]
            ns.addr("add", index=index, address=ip, prefixlen=int(plen))
            ns.link("set", index=index, state="up")
    finally:
        os.close(fd)
