"""reapply() and poststop() as the prestart/poststop hooks call them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syscontainer_tools.engines import Engine, find
from syscontainer_tools.errors import NotFound
from syscontainer_tools.resources import device
from syscontainer_tools.resources.state import StateStore

from .conftest import PREFIX

pytestmark = pytest.mark.system


def hook_reapply(ctr, runtime_root: str, state_dir: str) -> list[str]:
    c = find(ctr.id, Engine.RUNC, runtime_root)
    with StateStore(state_dir).transaction(c.id) as rec, c.init_process() as pidfd:
        return device.reapply(c, pidfd, rec)


def test_reapply_after_restart(make_container, make_loop, tool, state_dir, runtime_root):
    ctr = make_container("reapply")
    loop = make_loop(16, partitions=1)
    major, minor = loop.majmin
    proc = tool("add-device", "--follow-partition", ctr.id, f"{loop.path}:/dev/disk/vdc:rw",
                "--device-read-bps", f"{loop.path}:1m")
    assert proc.returncode == 0, proc.stderr
    state_file = Path(state_dir) / ctr.id / "state.json"
    rule = json.loads(state_file.read_text())["devices"][0]["udev_rule"]
    assert Path(rule).exists()

    ctr.stop()
    # poststop: the udev rule goes, the saved state stays
    from syscontainer_tools.container import Container

    rec = StateStore(state_dir).load(ctr.id)
    gone = Container(id=ctr.id, name=ctr.id, engine="runc", status="stopped", pid=0)
    assert device.poststop(gone, rec) == [f"removed udev rule {rule}"]
    assert not Path(rule).exists()
    assert device.poststop(gone, rec) == []

    # the record claims a stale minor: reapply uses the host's numbers and saves them
    data = json.loads(state_file.read_text())
    data["devices"][0]["minor"] = minor + 1000
    data["devices"].append({"host": f"/dev/{PREFIX}-gone", "container": "/dev/gone",
                            "type": "b", "major": 7, "minor": 999, "perm": "rwm",
                            "mode": 0o660, "parent": ""})
    state_file.write_text(json.dumps(data))

    ctr.start()
    assert ctr.exec("ls", "/dev/disk/vdc", check=False).returncode != 0
    with pytest.raises(NotFound, match=f"/dev/{PREFIX}-gone"):
        hook_reapply(ctr, runtime_root, state_dir)
    out = ctr.exec("ls", "-l", "/dev/disk/vdc").stdout.split()
    assert out[0].startswith("b") and (int(out[4].rstrip(",")), int(out[5])) == (major, minor)
    assert ctr.exec("ls", "/dev/disk/vdcp1").returncode == 0
    assert ctr.sh("dd if=/dev/disk/vdc bs=512 count=1 of=/dev/null", check=False).returncode == 0
    devlist = Path(f"/sys/fs/cgroup/devices/{ctr.id}/devices.list").read_text()
    assert f"b {major}:{minor} rw" in devlist
    bps = Path(f"/sys/fs/cgroup/blkio/{ctr.id}/blkio.throttle.read_bps_device").read_text()
    assert f"{major}:{minor} 1048576" in bps
    assert Path(rule).exists()
    # the failed hook raised, so the transaction did not save; a second run succeeds
    # once the missing entry is dropped, and saves the new numbers
    data = json.loads(state_file.read_text())
    data["devices"] = [d for d in data["devices"] if d["container"] != "/dev/gone"]
    state_file.write_text(json.dumps(data))
    lines = hook_reapply(ctr, runtime_root, state_dir)
    assert any("is now b" in line for line in lines)
    assert json.loads(state_file.read_text())["devices"][0]["minor"] == minor
    # idempotent
    hook_reapply(ctr, runtime_root, state_dir)


def test_blkio_weight(make_container, make_loop, tool, state_dir):
    ctr = make_container("weight")
    loop = make_loop()
    major, minor = loop.majmin
    name = Path(loop.path).name
    sched = Path(f"/sys/block/{name}/queue/scheduler")
    if "bfq" not in sched.read_text():
        pytest.skip("no BFQ scheduler in this kernel")
    sched.write_text("none")
    proc = tool("add-device", ctr.id, loop.path, "--blkio-weight-device", f"{loop.path}:100")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Failed to add device: ")
    assert "BFQ" in proc.stderr and "uses none" in proc.stderr
    assert not (Path(state_dir) / ctr.id / "state.json").exists()
    sched.write_text("bfq")
    proc = tool("add-device", ctr.id, loop.path, "--blkio-weight-device", f"{loop.path}:100")
    assert proc.returncode == 0, proc.stderr
    assert f"Update blkio weight for device ({loop.path},100) done." in proc.stdout
    text = Path(f"/sys/fs/cgroup/blkio/{ctr.id}/blkio.bfq.weight_device").read_text()
    assert f"{major}:{minor} 100" in text
    proc = tool("update-device", ctr.id, "--blkio-weight-device", f"{loop.path}:500")
    assert proc.returncode == 0, proc.stderr
    text = Path(f"/sys/fs/cgroup/blkio/{ctr.id}/blkio.bfq.weight_device").read_text()
    assert f"{major}:{minor} 500" in text
    # 0 drops the weight (BFQ takes "default" for that), and so does removing the device
    proc = tool("update-device", ctr.id, "--blkio-weight-device", f"{loop.path}:0")
    assert proc.returncode == 0, proc.stderr
    text = Path(f"/sys/fs/cgroup/blkio/{ctr.id}/blkio.bfq.weight_device").read_text()
    assert f"{major}:{minor}" not in text
    proc = tool("update-device", ctr.id, "--blkio-weight-device", f"{loop.path}:300")
    assert proc.returncode == 0, proc.stderr
    proc = tool("remove-device", ctr.id, loop.path)
    assert proc.returncode == 0, proc.stderr
    text = Path(f"/sys/fs/cgroup/blkio/{ctr.id}/blkio.bfq.weight_device").read_text()
    assert f"{major}:{minor}" not in text
