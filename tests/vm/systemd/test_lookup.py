"""Finding containers whose cgroup is a systemd unit (VM lane, systemd as
init, pure cgroup v2): runc and crun with ``--systemd-cgroup`` and the
``system.slice:<runtime>:<id>`` cgroupsPath, podman with its defaults
(``machine.slice/libpod-<id>.scope``).  Each is found by id prefix and name,
its cgroup resolved to the unit's directory, and the unit named by systemd
itself.  (The native lane covers the same shapes on cgroup v1 with a
``name=systemd`` hierarchy: tests/system/test_systemd_paths.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from syscontainer_tools import cgroup
from syscontainer_tools.engines import Engine, find
from syscontainer_tools.resources import systemd_unit
from tests.system.conftest import PREFIX, run
from tests.vm.systemd.conftest import tool_as

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(not systemd_unit.systemd_booted(),
                       reason="needs systemd as init (scripts/vm-lane.sh --init systemd)"),
]

CG = Path("/sys/fs/cgroup")


def check_unit(pid: int, unit: str, slice_: str) -> None:
    cgs = cgroup.for_pid(pid)
    assert cgs.v2 is not None and not cgs.v1, cgs
    # the scope itself, or (crun's default under podman) its "container" child
    rel = Path(cgs.v2).relative_to(CG / slice_ / unit)
    assert str(rel) in (".", "container"), cgs.v2
    found = systemd_unit.for_cgroup(cgs.v2)
    assert found is not None, f"systemd does not own {cgs.v2}"
    assert found.name == unit and Path(found.cgroup) == CG / slice_ / unit
    shown = run(["systemctl", "show", "--property=ControlGroup", "--value", unit]).stdout.strip()
    assert shown == f"/{slice_}/{unit}"


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_systemd_driver_container_found(runtime, sd_container, state_dir):
    if not shutil.which(runtime):
        pytest.skip(f"{runtime} is not installed")
    ctr = sd_container(runtime)
    spec = json.loads((ctr.bundle / "config.json").read_text())
    assert spec["linux"]["cgroupsPath"] == f"system.slice:{runtime}:{ctr.id}"
    engine = Engine(runtime)
    for ref in (ctr.id, ctr.id[:len(PREFIX) + len(runtime) + 4]):
        found = find(ref, engine, ctr.root)
        assert found.id == ctr.id and found.pid == ctr.pid
    check_unit(ctr.pid, f"{runtime}-{ctr.id}.scope", "system.slice")
    listed = tool_as(runtime, ctr.root, state_dir, "list-device", ctr.id, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    # auto finds it too, through the runtime's state under the root given
    auto = tool_as("auto", ctr.root, state_dir, "list-device", ctr.id, "--format", "json")
    assert auto.returncode == 0, auto.stderr


def test_podman_default_container_found(podman_ctr, state_dir):
    name = podman_ctr()
    info = json.loads(run(["podman", "inspect", name]).stdout)[0]
    cid, pid = info["Id"], int(info["State"]["Pid"])
    for ref in (name, cid, cid[:12]):
        found = find(ref, Engine.PODMAN)
        assert found.id == cid and found.pid == pid, (ref, found)
    check_unit(pid, f"libpod-{cid}.scope", "machine.slice")
    listed = tool_as("podman", None, state_dir, "list-device", name, "--format", "json")
    assert listed.returncode == 0, listed.stderr
