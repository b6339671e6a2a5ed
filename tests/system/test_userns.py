"""A container with a user namespace: what the tools create inside belongs
to the container's root (mapped), also on its own /dev tmpfs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from syscontainer_tools.engines import Engine, find
from syscontainer_tools.resources import device
from syscontainer_tools.resources.state import StateStore

from .conftest import PREFIX, Ctr, write_config

pytestmark = pytest.mark.system

HOST_ROOT = 100000


@pytest.fixture
def userns_ctr(runtime_root, rootfs_template):
    # the mapped root must be able to walk to its rootfs: not under pytest's 0700 tmp
    bundle = Path(f"/run/{PREFIX}-userns")
    bundle.mkdir(mode=0o755)
    shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
    write_config(bundle)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["linux"]["namespaces"].append({"type": "user"})
    for key in ("uidMappings", "gidMappings"):
        cfg["linux"][key] = [{"containerID": 0, "hostID": HOST_ROOT, "size": 65536}]
    # sysfs cannot be mounted from a user namespace without a netns of its own: bind it
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/sys"] + [
        {"destination": "/sys", "type": "none", "source": "/sys",
         "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}]
    (bundle / "config.json").write_text(json.dumps(cfg))
    for dirpath, dirnames, filenames in os.walk(bundle / "rootfs"):
        for name in [*dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), HOST_ROOT, HOST_ROOT)
    os.lchown(bundle / "rootfs", HOST_ROOT, HOST_ROOT)
    ctr = Ctr(f"{PREFIX}-userns", bundle, runtime_root)
    try:
        ctr.start()
        yield ctr
    finally:
        ctr.stop()
        shutil.rmtree(bundle, ignore_errors=True)


def test_device_and_path_owned_by_the_containers_root(userns_ctr, make_loop, tool, tmp_path,
                                                      state_dir, udev_rules_dir):
    ctr = userns_ctr
    assert Path(f"/proc/{ctr.pid}/uid_map").read_text().split() == ["0", str(HOST_ROOT),
                                                                      "65536"]
    loop = make_loop(8)
    host_owner = os.stat(loop.path)[4:6]
    r = tool("add-device", ctr.id, f"{loop.path}:/dev/newdir/disk")
    assert r.returncode == 0, r.stderr
    # the container's /dev is its user namespace's tmpfs (implicitly nodev): a node
    # made on the host, owned by the container's root, is bound there; the new
    # parent directory belongs to the container's root too
    listing = ctr.exec("stat", "-c", "%u:%g %F", "/dev/newdir", "/dev/newdir/disk").stdout
    assert listing.splitlines() == ["0:0 directory", "0:0 block special file"]
    assert ctr.exec("dd", "if=/dev/newdir/disk", "of=/dev/null", "bs=4k",
                    "count=1").returncode == 0
    # again, as prestart does: the bind is kept, and the host's node never chowned
    c = find(ctr.id, Engine.RUNC, ctr.root)
    with StateStore(state_dir).transaction(c.id) as record, c.init_process() as pidfd:
        device.reapply(c, pidfd, record)
    assert os.stat(loop.path)[4:6] == host_owner
    mounts = ctr.exec("cat", "/proc/self/mountinfo").stdout
    assert sum(1 for line in mounts.splitlines() if line.split()[4] == "/dev/newdir/disk") == 1
    share = tmp_path / "share"
    share.mkdir()
    (share / "f").write_text("x\n")
    r = tool("add-path", ctr.id, f"{share}:/run/deep/share")
    assert r.returncode == 0, r.stderr
    assert ctr.exec("stat", "-c", "%u:%g", "/run/deep").stdout.strip() == "0:0"
    assert ctr.exec("cat", "/run/deep/share/f").stdout == "x\n"
    assert len(list(udev_rules_dir.iterdir())) == 1  # the whole disk's partitions follow it
    r = tool("remove-device", ctr.id, f"{loop.path}:/dev/newdir/disk")
    assert r.returncode == 0, r.stderr
    assert list(udev_rules_dir.iterdir()) == []
    assert ctr.exec("ls", "/dev/newdir/disk", check=False).returncode != 0
    mounts = ctr.exec("cat", "/proc/self/mountinfo").stdout
    assert "/dev/newdir/disk" not in mounts
    assert os.stat(loop.path)[4:6] == host_owner
