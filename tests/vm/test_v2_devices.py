"""Devices and block I/O QoS on pure cgroup v2 (runc, cgroupfs driver), on the
lane's virtio-blk disk with a real DOS partition table."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.system.cgroups import v2_dir
from tests.vm.conftest import PURE_V2
from tests.vm.helpers import disk, hooks_for, record, sh, wait_for

pytestmark = pytest.mark.system
v2_only = pytest.mark.skipif(not PURE_V2, reason="io.max, io.weight and io.bfq.weight are cgroup v2's files")


def majmin(path: str) -> str:
    st = os.stat(path)
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def dd_read(ctr, node: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return ctr.sh(f"dd if={node} of=/dev/null bs=4096 count=1", check=check)


def dd_write(ctr, node: str) -> subprocess.CompletedProcess[str]:
    # writes the partition's first block with what is there (the data stays);
    # the caller checks the result (a refused write is what some tests expect)
    return ctr.sh(f"dd if={node} of=/tmp/blk bs=4096 count=1 && "
                  f"dd if=/tmp/blk of={node} bs=4096 count=1 conv=notrunc,fsync", check=False)


def plant(ctr, node: str, dev: str) -> None:
    """A block node made from the host in the container's /dev (mknod inside
    would need the "m" permission): reading it shows what the device
    program decides for that number, whichever path names it."""
    major, minor = dev.split(":")
    path = f"/proc/{ctr.pid}/root{node}"
    if not os.path.exists(path):
        sh(f"mknod {path} b {major} {minor}")


def test_add_device_perm_remove_restart(make_container, tool, state_dir):
    whole, parts = disk()
    p1, p2 = parts
    ctr = make_container("dev2", hooks=hooks_for(state_dir))
    raw = "/dev/sctraw"
    # runc's own v2 program: a block device not added is denied, and so is mknod
    made = ctr.sh(f"mknod /tmp/raw b {majmin(p2).replace(':', ' ')}", check=False)
    assert made.returncode != 0 and "not permitted" in made.stderr, made
    plant(ctr, raw, majmin(p2))
    denied = dd_read(ctr, raw)
    assert denied.returncode != 0 and "not permitted" in denied.stderr, denied

    tool("add-device", ctr.id, f"{p1}:/dev/vdb1:r", f"{p2}:/dev/vdb2:rw", check=True)
    assert dd_read(ctr, "/dev/vdb1").returncode == 0
    ro = dd_write(ctr, "/dev/vdb1")
    assert ro.returncode != 0 and "not permitted" in ro.stderr, ro
    rw = dd_write(ctr, "/dev/vdb2")
    assert rw.returncode == 0, rw.stderr
    # the program allows the number: the other node of p2 reads now too
    assert dd_read(ctr, raw).returncode == 0

    # a restart through the hooks re-applies both, with their permissions
    ctr.restart()
    assert dd_read(ctr, "/dev/vdb1").returncode == 0
    ro = dd_write(ctr, "/dev/vdb1")
    assert ro.returncode != 0 and "not permitted" in ro.stderr, ro
    rw = dd_write(ctr, "/dev/vdb2")
    assert rw.returncode == 0, rw.stderr

    tool("remove-device", ctr.id, f"{p2}:/dev/vdb2", check=True)
    assert ctr.exec("ls", "/dev/vdb2", check=False).returncode != 0
    plant(ctr, raw, majmin(p2))
    again = dd_read(ctr, raw)
    assert again.returncode != 0 and "not permitted" in again.stderr, again
    assert dd_read(ctr, "/dev/vdb1").returncode == 0


def test_follow_partition_on_virtio_disk(make_container, tool, state_dir):
    whole, parts = disk()
    ctr = make_container("fp2")
    out = tool("add-device", "--follow-partition", ctr.id, f"{whole}:/dev/vdc", check=True).stdout
    name = os.path.basename(whole)
    assert out.splitlines() == [
        f"Add device ({whole}) to container({ctr.id},/dev/vdc) done.",
        f"Add device ({parts[0]}) to container({ctr.id},/dev/vdc1) done.",
        f"Add device ({parts[1]}) to container({ctr.id},/dev/vdc2) done.",
    ]
    for n in (1, 2):
        assert dd_read(ctr, f"/dev/vdc{n}").returncode == 0
    # the DOS table is read through the whole disk inside too
    sig = ctr.sh("dd if=/dev/vdc bs=1 skip=510 count=2 2>/dev/null | od -An -tx1").stdout
    assert sig.split() == ["55", "aa"]
    assert os.path.basename(record(state_dir, ctr.id)["devices"][0]["host"]) == name
    tool("remove-device", "--follow-partition", ctr.id, whole, check=True)
    for n in ("", "1", "2"):
        assert ctr.exec("ls", f"/dev/vdc{n}", check=False).returncode != 0


def test_udev_rule_with_udevd_follows_a_new_partition(make_container, tool, state_dir,
                                                      monkeypatch):
    """udevd itself runs the disk's rule when the kernel reads a new partition."""
    if not os.path.exists("/run/udev/control"):
        pytest.fail("udevd is not running in the guest")
    whole, parts = disk()
    # the guest's /run is its own: the rule goes where udevd reads it
    monkeypatch.setenv("SYSCONTAINER_UDEV_RULES_DIR", "/run/udev/rules.d")
    ctr = make_container("udev2")
    tool("add-device", ctr.id, f"{whole}:/dev/vdd:rw", check=True)
    rule = Path(record(state_dir, ctr.id)["devices"][0]["udev_rule"])
    new = f"{whole}3"
    try:
        assert rule.parent == Path("/run/udev/rules.d") and rule.exists()
        # a new partition, as an admin makes one: udevd sees the table written
        # (its inotify watch on the disk) and has the kernel re-read it; partx
        # tells the kernel where udevd did not
        sh(f"echo 'size=16MiB, type=83' | sfdisk -q --no-reread --no-tell-kernel --append {whole}")
        sh("udevadm settle -t 60", check=False)
        sysfs = Path(f"/sys/class/block/{os.path.basename(new)}")
        if not sysfs.exists():
            sh(f"partx -a --nr 3 {whole}", check=False)
        wait_for(sysfs.exists, f"the kernel to know {new}", 30)
        def saved() -> list[dict[str, Any]]:
            return [i for i in record(state_dir, ctr.id)["devices"] if i["container"] == "/dev/vdd3"]

        # the rule's command makes the node, then saves the record: both are waited for
        wait_for(lambda: ctr.exec("ls", "/dev/vdd3", check=False).returncode == 0 and saved(),
                 "udevd to add the new partition to the container", 30)
        assert ctr.sh("dd if=/dev/vdd3 of=/dev/null bs=4096 count=1",
                      check=False).returncode == 0
        assert saved()[0]["parent"] == whole
        sh(f"partx -d --nr 3 {whole}")
        wait_for(lambda: ctr.exec("ls", "/dev/vdd3", check=False).returncode != 0 and not saved(),
                 "udevd to remove the partition from the container", 30)
        tool("remove-device", ctr.id, whole, check=True)
        assert not rule.exists()
        assert not os.path.exists(new)
    finally:
        sh(f"partx -d --nr 3 {whole}; sfdisk -q --no-reread --no-tell-kernel --delete {whole} 3",
           check=False)
        sh("udevadm settle -t 30", check=False)
        if rule.exists():      # the test failed half way: leave the guest's udevd clean
            tool("remove-device", ctr.id, whole)
            rule.unlink(missing_ok=True)
            sh("udevadm control --reload", check=False)


@v2_only
def test_io_max_throttles_and_io_weight(make_container, tool, state_dir):
    """io.max's four keys reach the file; a read-bps limit slows dd to about
    that rate (checked as a lower bound on the time: a slow guest only adds)."""
    whole, _ = disk()
    mm = majmin(whole)
    ctr = make_container("qos2")
    tool("add-device", ctr.id, f"{whole}:/dev/vde", "--device-read-bps", f"{whole}:1m",
         "--device-write-bps", f"{whole}:2m", "--device-read-iops", f"{whole}:300",
         "--device-write-iops", f"{whole}:400", check=True)
    cg = v2_dir(ctr.pid)
    line = [ln for ln in (cg / "io.max").read_text().splitlines() if ln.startswith(mm)]
    assert line == [f"{mm} rbps=1048576 wbps=2097152 riops=300 wiops=400"]
    Path("/proc/sys/vm/drop_caches").write_text("3")
    t0 = time.monotonic()
    ctr.sh("dd if=/dev/vde of=/dev/null bs=64k count=48 skip=1700")
    took = time.monotonic() - t0
    # 3 MiB at 1 MiB/s: the throttle holds it for at least ~2 s (the first
    # second's budget may come at once)
    assert took >= 1.8, f"3 MiB read in {took:.2f}s past a 1 MiB/s limit"
    stat = (cg / "io.stat").read_text()
    assert any(ln.startswith(mm) and "rbytes=" in ln for ln in stat.splitlines())

    tool("update-device", ctr.id, "--device-read-bps", f"{whole}:0", check=True)
    line = [ln for ln in (cg / "io.max").read_text().splitlines() if ln.startswith(mm)]
    assert line == [f"{mm} rbps=max wbps=2097152 riops=300 wiops=400"]

    # io.weight is blk-iocost's file: with neither BFQ nor iocost on the disk
    # the kernel takes no per-device weight, and the tool says what would
    sched = Path(f"/sys/block/{os.path.basename(whole)}/queue/scheduler")
    sched.write_text("mq-deadline")
    refused = tool("update-device", ctr.id, "--blkio-weight-device", f"{whole}:300")
    assert refused.returncode != 0 and "io.cost.qos" in refused.stderr, refused.stderr
    qos = Path("/sys/fs/cgroup/io.cost.qos")
    qos.write_text(f"{mm} enable=1")
    try:
        tool("update-device", ctr.id, "--blkio-weight-device", f"{whole}:300", check=True)
        assert f"{mm} 300" in (cg / "io.weight").read_text()
        tool("remove-device", ctr.id, whole, check=True)
        assert not [ln for ln in (cg / "io.max").read_text().splitlines() if ln.startswith(mm)]
        assert f"{mm} 300" not in (cg / "io.weight").read_text()
    finally:
        qos.write_text(f"{mm} enable=0")


@v2_only
def test_blkio_weight_reaches_bfq(make_container, tool, state_dir):
    """With BFQ active the weight goes to io.bfq.weight, the file BFQ reads
    (io.weight exists too whenever io is on: it is blk-iocost's)."""
    whole, _ = disk()
    mm = majmin(whole)
    sh("modprobe bfq")
    sched = Path(f"/sys/block/{os.path.basename(whole)}/queue/scheduler")
    old = sched.read_text().split("[")[1].split("]")[0]
    sched.write_text("bfq")
    try:
        ctr = make_container("bfq2")
        cg = v2_dir(ctr.pid)
        assert (cg / "io.weight").exists() and (cg / "io.bfq.weight").exists()
        tool("add-device", ctr.id, f"{whole}:/dev/vdf", "--blkio-weight-device", f"{whole}:200",
             check=True)
        assert f"{mm} 200" in (cg / "io.bfq.weight").read_text()
        assert f"{mm} 200" not in (cg / "io.weight").read_text()
        tool("update-device", ctr.id, "--blkio-weight-device", f"{whole}:0", check=True)
        assert mm not in (cg / "io.bfq.weight").read_text()
        tool("update-device", ctr.id, "--blkio-weight-device", f"{whole}:700", check=True)
        assert f"{mm} 700" in (cg / "io.bfq.weight").read_text()
        tool("remove-device", ctr.id, whole, check=True)
        assert mm not in (cg / "io.bfq.weight").read_text()
    finally:
        sched.write_text(old)
