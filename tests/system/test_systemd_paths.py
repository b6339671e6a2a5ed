"""Containers whose cgroups have systemd's shape (``X.slice/runc-ID.scope``,
``machine.slice/libpod-ID.scope``), on this host's layout: cgroup v1 with a
``name=systemd`` hierarchy beside the controllers (the VM lane covers pure v2
under a real systemd).  They are found, their cgroups resolved in every
hierarchy, and a device added to them works."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

from syscontainer_tools import cgroup
from syscontainer_tools.resources import systemd_unit

from .conftest import PREFIX

pytestmark = pytest.mark.system

SLICE = f"{PREFIX}-machine.slice"


def _v1() -> bool:
    return "devices" in cgroup.host_mounts().v1


@pytest.fixture
def scoped(make_container):
    made = []

    def factory(name: str, scope: str):
        ctr = make_container(name, start=False)
        cfg = json.loads((ctr.bundle / "config.json").read_text())
        cfg["linux"]["cgroupsPath"] = f"/{SLICE}/{scope.format(id=ctr.id)}"
        (ctr.bundle / "config.json").write_text(json.dumps(cfg, indent=1))
        ctr.start()
        made.append(ctr)
        return ctr

    yield factory
    for ctr in made:
        ctr.stop()
    # runc leaves the parent directories it made: take the empty ones away
    mounts = cgroup.host_mounts()
    for top in {*mounts.v1.values(), *([mounts.v2] if mounts.v2 else [])}:
        d = Path(top) / SLICE
        if d.is_dir():
            with contextlib.suppress(OSError):
                d.rmdir()


@pytest.mark.parametrize("scope", ["runc-{id}.scope", "libpod-{id}.scope"])
def test_systemd_shaped_cgroup_found_and_resolved(scope, scoped, make_loop, tool):
    if not _v1():
        pytest.skip("needs the v1 devices hierarchy (this host's layout)")
    ctr = scoped("sdp", scope)
    unit_dir = scope.format(id=ctr.id)
    cgs = cgroup.for_pid(ctr.pid)
    mounts = cgroup.host_mounts()
    # every hierarchy runc put it in, name=systemd included, resolves to the
    # scope; one this runc does not manage stays the root (Debian 11's runc
    # 1.0.0~rc93 has no rdma)
    placed = {ctl for line in Path(f"/proc/{ctr.pid}/cgroup").read_text().splitlines()
              if line.split(":", 2)[2] != "/" for ctl in line.split(":")[1].split(",")}
    assert "devices" in placed and ("name=systemd" in placed or "name=systemd" not in mounts.v1)
    for name, path in cgs.v1.items():
        want = os.path.join(mounts.v1[name], SLICE, unit_dir) if name in placed \
            else os.path.join(mounts.v1[name], "")
        assert path == want, (name, path)
    assert "name=systemd" in cgs.v1 or "name=systemd" not in mounts.v1
    assert systemd_unit.unit_of(f"{SLICE}/{unit_dir}") == (unit_dir, f"/{SLICE}/{unit_dir}")
    # not systemd's own: the tool treats it as cgroupfs and never calls systemctl
    assert systemd_unit.for_cgroup(cgs.v2) is None
    listed = tool("list-device", ctr.id[:len(PREFIX) + 5], "--format", "json")
    assert listed.returncode == 0, listed.stderr
    loop = make_loop()
    proc = tool("add-device", ctr.id, f"{loop.path}:/dev/sdz")
    assert proc.returncode == 0, proc.stderr
    assert ctr.sh("dd if=/dev/sdz bs=512 count=1 of=/dev/null", check=False).returncode == 0
    major, minor = loop.majmin
    allowed = Path(cgs.v1["devices"], "devices.list").read_text()
    assert f"b {major}:{minor} rwm" in allowed
    assert tool("remove-device", ctr.id, f"{loop.path}:/dev/sdz").returncode == 0
