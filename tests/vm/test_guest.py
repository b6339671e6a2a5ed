"""The guest is what the lane promises: a stock kernel, pure cgroup v2 with
every controller on, loadable modules, a virtio disk with a DOS table, a NIC."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from tests.system.conftest import run
from tests.vm.conftest import DISK, NIC

pytestmark = __import__("pytest").mark.system


def test_cgroup_layout_is_the_lanes() -> None:
    """Pure v2 with every controller on, or (--cgroup hybrid) this host's
    layout: v1 controllers and an empty v2 mount at /sys/fs/cgroup/unified."""
    mounts = [ln.split() for ln in Path("/proc/self/mounts").read_text().splitlines()]
    if os.environ.get("SYSCONTAINER_VM_CGROUP", "v2") == "hybrid":
        v1 = {opt for m in mounts if m[2] == "cgroup" for opt in m[3].split(",")}
        assert {"cpu", "devices", "blkio", "pids"} <= v1
        assert [m[2] for m in mounts if m[1] == "/sys/fs/cgroup/unified"] == ["cgroup2"]
        # a kernel without CONFIG_MEMCG_V1 (Debian 13's 6.12) keeps memory on v2
        unified = Path("/sys/fs/cgroup/unified/cgroup.controllers").read_text().split()
        assert "memory" in v1 or "memory" in unified
        return
    assert [m[2] for m in mounts if m[1] == "/sys/fs/cgroup"] == ["cgroup2"]
    assert not [m for m in mounts if m[2] == "cgroup"], "a cgroup v1 hierarchy is mounted"
    on = set(Path("/sys/fs/cgroup/cgroup.subtree_control").read_text().split())
    assert {"cpuset", "cpu", "io", "memory", "pids"} <= on


def test_stock_kernel_loads_modules() -> None:
    assert "amd64" in platform.release() or os.environ.get("SYSCONTAINER_VM_KERNEL_ANY")
    run(["modprobe", "dummy"])
    assert Path("/sys/module/dummy").exists()


def test_virtio_disk_has_dos_partitions_and_nic_is_pci() -> None:
    assert DISK, "no virtio disk in the guest"
    name = os.path.basename(DISK)
    parts = sorted(p.name for p in Path(f"/sys/block/{name}").glob(f"{name}[0-9]*"))
    assert parts == [f"{name}1", f"{name}2"]
    assert NIC, "no virtio-net NIC in the guest"
    assert "virtio" in os.path.realpath(f"/sys/class/net/{NIC}/device/driver")
