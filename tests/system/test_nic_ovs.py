"""veth host ends on an Open vSwitch bridge.

The daemons run from a private directory (OVS_RUNDIR) made by the fixture,
with the userspace (netdev) datapath when the kernel has no openvswitch
module; the fixture stops the daemons it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from .conftest import PREFIX
from .nethelpers import NET, delete_links, host_links, link, make_bridge, ping, pinger, state_of
from .waits import polls, scaled

pytestmark = pytest.mark.system

OVSBR = f"{PREFIX}o"


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, timeout=scaled(30))


@pytest.fixture
def ovs_bridge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    missing = [b for b in ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl")
               if shutil.which(b) is None]
    if missing:
        pytest.skip(f"Open vSwitch is not installed ({', '.join(missing)} missing)")
    schema = "/usr/share/openvswitch/vswitch.ovsschema"
    rundir = tmp_path / "ovs"
    rundir.mkdir()
    env = dict(os.environ, OVS_RUNDIR=str(rundir), OVS_DBDIR=str(rundir),
               OVS_LOGDIR=str(rundir))
    db, sock = rundir / "conf.db", rundir / "db.sock"
    pids = [rundir / "ovsdb-server.pid", rundir / "ovs-vswitchd.pid"]
    try:
        steps = [
            ["ovsdb-tool", "create", str(db), schema],
            ["ovsdb-server", f"--remote=punix:{sock}", f"--pidfile={pids[0]}", "--detach",
             f"--log-file={rundir / 'ovsdb-server.log'}", str(db)],
            ["ovs-vsctl", "--no-wait", "init"],
            ["ovs-vswitchd", f"unix:{sock}", f"--pidfile={pids[1]}", "--detach",
             f"--log-file={rundir / 'ovs-vswitchd.log'}"],
            # no loadable kernel modules here: the userspace datapath works everywhere
            ["ovs-vsctl", "--timeout=10", "add-br", OVSBR, "--", "set", "bridge", OVSBR,
             "datapath_type=netdev"],
        ]
        for argv in steps:
            proc = _run(argv, env)
            if proc.returncode != 0:
                pytest.skip(f"Open vSwitch cannot run here: {' '.join(argv[:2])} failed: "
                            f"{proc.stderr.strip()[-300:]}")
        monkeypatch.setenv("OVS_RUNDIR", str(rundir))
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=OVSBR)[0]
            ipr.addr("add", index=index, address=f"{NET}.225", prefixlen=28)
            ipr.link("set", index=index, state="up")
        yield OVSBR
    finally:
        _run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", OVSBR], env)
        for pidfile in reversed(pids):
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
            os.kill(pid, signal.SIGTERM)
            for _ in polls(5):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        delete_links(OVSBR)


def ports(bridge: str) -> list[str]:
    out = subprocess.run(["ovs-vsctl", "list-ports", bridge], capture_output=True, text=True,
                         check=True, env=os.environ).stdout
    return out.split()


def test_veth_on_ovs_bridge(make_container, tool, state_dir, ovs_bridge):
    a = pinger(make_container, "oa")
    b = pinger(make_container, "ob")
    before = host_links()
    tool("add-nic", "--type", "veth", "--name", f"{PREFIX}oa:eth1", "--ip", f"{NET}.226/28",
         "--bridge", ovs_bridge, a.id, check=True)
    tool("add-nic", "--type", "veth", "--name", f"{PREFIX}ob:eth1", "--ip", f"{NET}.227/28",
         "--bridge", ovs_bridge, b.id, check=True)
    try:
        assert sorted(ports(ovs_bridge)) == [f"{PREFIX}oa", f"{PREFIX}ob"]
        assert state_of(state_dir, a.id)["nics"][0]["bridge"] == ovs_bridge
        # traffic through the switch (retries: the userspace datapath learns slowly)
        for _ in range(5):
            if ping(a, f"{NET}.227").returncode == 0:
                break
        else:
            pytest.fail(f"no ping over OVS: {ping(a, f'{NET}.227').stdout}")
        # update-nic moves the host end from the OVS bridge to a Linux bridge
        make_bridge(f"{PREFIX}l", f"{NET}.241/28")
        out = tool("update-nic", "--name", "eth1", "--bridge", f"{PREFIX}l", a.id,
                   check=True).stdout
        assert f"Update Bridge for network interface (eth1,{PREFIX}l) done" in out
        assert ports(ovs_bridge) == [f"{PREFIX}ob"]
        with IPRoute() as ipr:
            assert link(ipr, f"{PREFIX}oa").get("IFLA_MASTER") == ipr.link_lookup(
                ifname=f"{PREFIX}l")[0]
        tool("remove-nic", "--name", "eth1", a.id, check=True)
        assert ports(ovs_bridge) == [f"{PREFIX}ob"]
        tool("remove-nic", "--name", "eth1", b.id, check=True)
        assert ports(ovs_bridge) == []
        assert host_links() == before | {f"{PREFIX}l"}
    finally:
        delete_links(f"{PREFIX}oa", f"{PREFIX}ob", f"{PREFIX}l")
