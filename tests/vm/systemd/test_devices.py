"""Devices and QoS under the systemd cgroup driver (VM lane, systemd as init).

runc and crun with ``--systemd-cgroup``, and podman with its defaults, put a
container in a ``.scope`` unit, and systemd attaches its own device program
(``sd_devices``) to that scope from the unit's ``DeviceAllow=``.  An added
device must pass it too, and must stay usable after ``systemctl
daemon-reload`` (systemd rebuilds its program then); the tool must never
replace systemd's program (that leaked one program per add/remove).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from syscontainer_tools.resources import devcgroup, systemd_unit
from tests.system.cgroups import v2_dir
from tests.system.conftest import PREFIX, run
from tests.vm.systemd.conftest import tool_as

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(not systemd_unit.systemd_booted(),
                       reason="needs systemd as init (scripts/vm-lane.sh --init systemd)"),
]

CG = Path("/sys/fs/cgroup")


def programs(pid: int, upto: Path) -> list[tuple[str, bytes]]:
    """(cgroup, program name) of every device program from ``upto`` down to
    the process's own cgroup: the set an access of the container must pass."""
    out = []
    d = v2_dir(pid)
    chain = [d]
    while d != upto and d != CG:
        d = d.parent
        chain.append(d)
    for cg in reversed(chain):
        for prog_id in devcgroup.query(str(cg))[1]:
            fd = devcgroup._prog_fd(prog_id)
            try:
                out.append((cg.name, devcgroup.prog_info(fd).name))
            finally:
                os.close(fd)
    return out


def can_read(sh: Any, rootfs: Path, major: int, minor: int) -> subprocess.CompletedProcess[str]:
    """Read the device through a node made from the host in the container's
    root: only the device cgroup decides (the container has no CAP_MKNOD)."""
    node = rootfs / f"{PREFIX}-probe"
    if node.exists():
        node.unlink()
    os.mknod(node, 0o600 | stat.S_IFBLK, os.makedev(major, minor))
    try:
        return sh(f"dd if=/{node.name} bs=512 count=1 of=/dev/null", check=False)
    finally:
        node.unlink()


def daemon_reload() -> None:
    run(["systemctl", "daemon-reload"])


def device_allow(unit: str) -> str:
    return run(["systemctl", "show", "--property=DeviceAllow", unit]).stdout


def check_device_lifecycle(call: Any, ctr_id: str, sh: Any, rootfs: Path, unit: str, pid: Any,
                           restart: Any, loop: Any) -> None:
    major, minor = loop.majmin
    entry = f"/dev/block/{major}:{minor} rwm"
    found = systemd_unit.for_cgroup(str(v2_dir(pid())))
    assert found is not None and found.name == unit
    scope = Path(found.cgroup)
    # runc gives the scope a device policy (DevicePolicy=strict, DeviceAllow=
    # the container's list): systemd keeps a program of its own there.  crun
    # gives none: its own program is the only one, and the tool must not make
    # one appear (a first DeviceAllow= would deny every other device).
    policy = systemd_unit.has_device_policy(found)
    allow_before = device_allow(unit)
    # runc and crun detach every program they find when they attach their
    # own, systemd's included; systemd attaches its program again at the
    # next reload, the state of a host that has seen one
    daemon_reload()
    before = programs(pid(), scope)
    assert ((scope.name, b"sd_devices") in before) == policy, (policy, before)
    denied = can_read(sh, rootfs, major, minor)
    assert denied.returncode != 0 and "not permitted" in denied.stderr, denied.stderr

    proc = call("add-device", ctr_id, f"{loop.path}:/dev/sdx")
    assert proc.returncode == 0, proc.stderr
    if policy:
        assert entry in device_allow(unit)
    else:
        assert device_allow(unit) == allow_before, "the tool gave the unit a device policy"
    assert sh("dd if=/dev/sdx bs=512 count=1 of=/dev/null", check=False).returncode == 0
    daemon_reload()
    ok = sh("dd if=/dev/sdx bs=512 count=1 of=/dev/null", check=False)
    assert ok.returncode == 0, f"after daemon-reload: {ok.stderr}"
    assert len(programs(pid(), scope)) == len(before)

    proc = call("remove-device", ctr_id, f"{loop.path}:/dev/sdx")
    assert proc.returncode == 0, proc.stderr
    assert entry not in device_allow(unit)
    denied = can_read(sh, rootfs, major, minor)
    assert denied.returncode != 0 and "not permitted" in denied.stderr

    for _ in range(10):
        assert call("add-device", ctr_id, f"{loop.path}:/dev/sdx").returncode == 0
        assert call("remove-device", ctr_id, f"{loop.path}:/dev/sdx").returncode == 0
    after = programs(pid(), scope)
    assert len(after) == len(before), (before, after)
    assert ((scope.name, b"sd_devices") in after) == policy, after

    if restart is None:
        return
    assert call("add-device", ctr_id, f"{loop.path}:/dev/sdx").returncode == 0
    restart()
    ok = sh("dd if=/dev/sdx bs=512 count=1 of=/dev/null", check=False)
    assert ok.returncode == 0, f"after restart: {ok.stderr}"
    assert (entry in device_allow(unit)) == policy
    daemon_reload()
    ok = sh("dd if=/dev/sdx bs=512 count=1 of=/dev/null", check=False)
    assert ok.returncode == 0, f"after restart and daemon-reload: {ok.stderr}"


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_devices_under_systemd_driver(runtime, sd_container, make_loop, state_dir):
    if not shutil.which(runtime):
        pytest.skip(f"{runtime} is not installed")
    ctr = sd_container(runtime)
    loop = make_loop()

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return tool_as(runtime, ctr.root, state_dir, *args)

    check_device_lifecycle(call, ctr.id, ctr.sh, ctr.rootfs, ctr.unit, lambda: ctr.pid, ctr.restart, loop)


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_qos_survives_daemon_reload(runtime, sd_container, make_loop, state_dir):
    if not shutil.which(runtime):
        pytest.skip(f"{runtime} is not installed")
    ctr = sd_container(runtime)
    loop = make_loop()
    major, minor = loop.majmin
    proc = tool_as(runtime, ctr.root, state_dir, "add-device", "--device-read-bps",
                   f"{loop.path}:1m", "--device-write-iops", f"{loop.path}:300", ctr.id,
                   f"{loop.path}:/dev/sdq")
    assert proc.returncode == 0, proc.stderr
    # the unit's own io.max (crun puts the container in a "container" child
    # of the scope; a limit on the scope holds for the whole subtree)
    unit = systemd_unit.for_cgroup(str(v2_dir(ctr.pid)))
    assert unit is not None and unit.name == ctr.unit
    io_max = Path(unit.cgroup) / "io.max"

    def limits() -> str:
        return next((ln for ln in io_max.read_text().splitlines()
                     if ln.startswith(f"{major}:{minor} ")), "")

    assert "rbps=1048576" in limits() and "wiops=300" in limits()
    daemon_reload()
    assert "rbps=1048576" in limits() and "wiops=300" in limits(), \
        f"daemon-reload undid the limits: {io_max.read_text()!r}"
    proc = tool_as(runtime, ctr.root, state_dir, "update-device", "--device-read-bps",
                   f"{loop.path}:0", ctr.id)
    assert proc.returncode == 0, proc.stderr
    daemon_reload()
    assert "rbps=max" in limits() or "rbps" not in limits()
    assert "wiops=300" in limits()


def test_podman_defaults(podman_ctr, make_loop, state_dir):
    """podman's own defaults: the systemd cgroup manager and crun."""
    name = podman_ctr()
    info = json.loads(run(["podman", "inspect", name]).stdout)[0]
    cid, rootfs = info["Id"], Path(info["Rootfs"])
    assert (rootfs / "bin" / "busybox").is_file(), info["Rootfs"]
    loop = make_loop()

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return tool_as("podman", None, state_dir, *args)

    def sh(script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["podman", "exec", name, "/bin/sh", "-c", script], check=check)

    def pid() -> int:
        return int(run(["podman", "inspect", "-f", "{{.State.Pid}}", name]).stdout)

    check_device_lifecycle(call, name, sh, rootfs, f"libpod-{cid}.scope", pid, None, loop)
