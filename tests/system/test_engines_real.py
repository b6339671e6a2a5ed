"""Engine adapters against the real CLIs available here: podman (with the runc
runtime: crun refuses this machine's hybrid cgroup layout) and crun's listing."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from syscontainer_tools.engines import Engine, find, list_all
from syscontainer_tools.errors import NotFound

from .conftest import PODMAN_CGROUP_PARENT, PREFIX, make_rootfs

pytestmark = pytest.mark.system

PODMAN_RUN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "run", "-d",
              "--cgroup-parent", PODMAN_CGROUP_PARENT, "--ulimit", "nofile=1024:1024",
              "--ulimit", "nproc=1024:1024", "--network", "none"]


@pytest.fixture(scope="module")
def podman_ctr(tmp_path_factory):
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    rootfs = tmp_path_factory.mktemp("podman-rootfs")
    make_rootfs(rootfs)
    name = f"{PREFIX}-pm"
    proc = subprocess.run([*PODMAN_RUN, "--name", name, "--rootfs", str(rootfs),
                           "/bin/sleep", "100000"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        pytest.skip(f"podman cannot start a container here: {proc.stderr.strip()}")
    cid = proc.stdout.strip()
    yield name, cid, str(rootfs)
    subprocess.run(["podman", "--cgroup-manager", "cgroupfs", "rm", "-f", "-t", "0", cid],
                   capture_output=True, check=False)


def test_podman_by_name_prefix_and_auto(podman_ctr):
    name, cid, rootfs = podman_ctr
    c = find(name, Engine.PODMAN)
    assert (c.id, c.name, c.engine, c.running) == (cid, name, "podman", True)
    assert c.rootfs == rootfs and c.spec["process"]["args"][-1] == "100000"
    with open(f"/proc/{c.pid}/cgroup") as f:
        assert cid in f.read()
    assert find(cid[:12], Engine.PODMAN).id == cid
    assert find(name, Engine.AUTO).engine == "podman"
    with pytest.raises(NotFound):
        find(f"{PREFIX}-nope", Engine.PODMAN)


def test_crun_listing_parses_real_output(tmp_path):
    if not shutil.which("crun"):
        pytest.skip("crun is not installed")
    assert [c for c in list_all(Engine.CRUN, str(tmp_path)) if c.engine is Engine.CRUN] == []
