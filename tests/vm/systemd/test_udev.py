"""Udev rules for whole disks under systemd-udevd (VM lane, systemd as init).

add-device of a whole disk writes a rule so that its partitions follow it
into the container; here the rule is run by the real systemd-udevd (with
its sandbox: private mounts, a system-call filter) for a real event on the
guest's virtio-scsi disk, and poststop removes it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syscontainer_tools.resources import blockdev, systemd_unit
from tests.system.conftest import run
from tests.vm.helpers import wait_for
from tests.vm.systemd.conftest import tool_as

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(not systemd_unit.systemd_booted(),
                       reason="needs systemd as init (scripts/vm-lane.sh --init systemd)"),
]

DISK = os.environ.get("SYSCONTAINER_VM_DISK", "")


def settle(action: str, dev: str) -> None:
    run(["udevadm", "trigger", f"--action={action}", "--settle", dev])
    run(["udevadm", "settle", "-t", "60"])


def udevd_journal() -> str:
    proc = run(["journalctl", "-u", "systemd-udevd", "-n", "150", "--no-pager", "-o", "cat"],
               check=False)
    lines = [ln for ln in proc.stdout.splitlines()
             if "syscontainer" in ln or "vda1" in ln or "failed" in ln.lower()]
    return "\n".join(lines[-80:]) or proc.stdout[-6000:]


def test_disk_rule_runs_for_a_real_partition_event(sd_container, state_dir, monkeypatch):
    if not DISK or not os.path.exists(f"{DISK}1"):
        pytest.skip("no partitioned scratch disk (SYSCONTAINER_VM_DISK)")
    if not os.path.exists("/run/udev/control"):
        pytest.skip("systemd-udevd is not running")
    # the real rules directory, so that systemd-udevd reads the rule
    monkeypatch.delenv("SYSCONTAINER_UDEV_RULES_DIR", raising=False)
    ctr = sd_container("runc")
    name = os.path.basename(DISK)
    rule = Path(blockdev.rule_path(ctr.id, name, blockdev.UDEV_RULES_DIR))
    try:
        proc = tool_as("runc", ctr.root, state_dir, "add-device", ctr.id, f"{DISK}:/dev/vdx")
        assert proc.returncode == 0, proc.stderr
        assert rule.is_file(), f"no udev rule at {rule}"
        # udevd's system-call filter has no chroot: the rule leaves its sandbox
        assert "systemd-run --quiet --collect --wait" in rule.read_text()
        assert ctr.sh("test -b /dev/vdx1", check=False).returncode != 0
        # udevd logs a RUN program's output and exit status at debug level
        run(["udevadm", "control", "--log-level=debug"])
        settle("add", f"{DISK}1")
        try:
            wait_for(lambda: ctr.sh("test -b /dev/vdx1", check=False).returncode == 0,
                     "the partition in the container", 30)
        except AssertionError as err:
            raise AssertionError(f"{err}\nthe rule:\n{rule.read_text()}\n"
                                 f"systemd-udevd's journal:\n{udevd_journal()}") from None
        ok = ctr.sh("dd if=/dev/vdx1 bs=512 count=1 of=/dev/null", check=False)
        assert ok.returncode == 0, ok.stderr
        listed = tool_as("runc", ctr.root, state_dir, "list-device", ctr.id, "--sub-partition")
        assert f"{DISK}1" in listed.stdout

        settle("remove", f"{DISK}1")
        wait_for(lambda: ctr.sh("test -e /dev/vdx1", check=False).returncode != 0,
                 "the partition to leave the container", 30)
        # poststop (runc delete runs it) removes the rule
        ctr.stop()
        assert not rule.exists(), "poststop left the udev rule"
        settle("add", f"{DISK}1")           # the host's view of the partition, as before
    finally:
        run(["udevadm", "control", "--log-level=info"], check=False)
        if rule.exists():
            rule.unlink()
            run(["udevadm", "control", "--reload"], check=False)
