"""systemd/lxcfs-toolkit.service under a real systemd (VM lane, systemd as init).

The unit is installed as a package installs it (the file as shipped, only
/usr/bin pointed at this checkout's programs), started, and a container is
wired with lxcfs-hook.  Then what a host does to the daemon: restart,
SIGKILL, stop -- and the container, never restarted, must get its view back
(or, while the daemon is stopped, see the host's values, never a dead mount).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcfs_toolkit import viewmounts
from syscontainer_tools import mountinfo
from syscontainer_tools.resources import systemd_unit
from tests.system.conftest import PREFIX, Ctr, run, write_config
from tests.vm.helpers import wait_for

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(not systemd_unit.systemd_booted(),
                       reason="needs systemd as init (scripts/vm-lane.sh --init systemd)"),
]

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
UNIT = "lxcfs-toolkit.service"
UNIT_DIR = Path("/run/systemd/system")       # as /usr/lib/systemd/system, but not kept
LXCFS_DIR = "/var/lib/lxc/lxcfs"             # the unit's (openEuler) layout
MEMORY = 256 << 20


def systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["systemctl", *args], check=check)


def prop(name: str) -> str:
    return systemctl("show", f"--property={name}", "--value", UNIT).stdout.strip()


def host_memtotal() -> int:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1])


def memtotal(ctr: Ctr) -> tuple[int, str]:
    """(MemTotal in kB or -1, error text) as the container reads it."""
    proc = ctr.exec("cat", "/proc/meminfo", check=False)
    if proc.returncode != 0:
        return -1, proc.stderr.strip()
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MemTotal:"))
    return int(line.split()[1]), ""




def host_lxcfs_mounts() -> list[str]:
    return [e.point for e in mountinfo.read() if e.fstype == viewmounts.FSTYPE]


@pytest.fixture(scope="module")
def unit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse")
    text = (REPO / "systemd" / UNIT).read_text().replace("/usr/bin/", f"{BIN}/")
    root = f"/run/{PREFIX}-runc"
    UNIT_DIR.mkdir(parents=True, exist_ok=True)
    (UNIT_DIR / UNIT).write_text(text)
    dropin = UNIT_DIR / f"{UNIT}.d"
    dropin.mkdir(exist_ok=True)
    # the test's runc root, so that the unit's "remount all" finds its containers
    (dropin / "50-test.conf").write_text(
        f"[Service]\nEnvironment=SYSCONTAINER_ENGINE=runc SYSCONTAINER_RUNTIME_ROOT={root}\n")
    systemctl("daemon-reload")
    try:
        systemctl("start", UNIT)
        yield UNIT
    finally:
        systemctl("stop", UNIT, check=False)
        (dropin / "50-test.conf").unlink()
        dropin.rmdir()
        (UNIT_DIR / UNIT).unlink()
        systemctl("daemon-reload", check=False)
        systemctl("reset-failed", UNIT, check=False)


@pytest.fixture
def ctr(unit: str, runtime_root: str, rootfs_template: Path,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctr]:
    cid = f"{PREFIX}-lx-{secrets.token_hex(2)}"
    bundle = tmp_path_factory.mktemp(cid)
    shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
    hook = {"path": str(BIN / "lxcfs-hook"),
            "args": ["lxcfs-hook", "--log", str(bundle / "hook.log")]}
    write_config(bundle, memory=MEMORY, hooks={"prestart": [hook]})
    c = Ctr(cid, bundle, runtime_root)
    if systemctl("is-active", unit, check=False).stdout.strip() != "active":
        systemctl("start", unit)
    wait_for(lambda: run([str(BIN / "lxcfs-toolkit"), "check-lxcfs"], check=False).returncode == 0,
             "the daemon to answer", 30)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def limited(ctr: Ctr) -> bool:
    return memtotal(ctr)[0] == MEMORY >> 10


def test_unit_is_what_a_host_expects(unit: str) -> None:
    assert prop("ActiveState") == "active"
    assert prop("OOMScoreAdjust") == "-1000", "upstream lxcfs.service has OOMScoreAdjust=-1000"
    reload = systemctl("reload", unit, check=False)
    assert reload.returncode == 0, f"systemctl reload: {reload.stderr.strip()}"
    assert prop("ActiveState") == "active"
    assert LXCFS_DIR in host_lxcfs_mounts()


def test_restart_gives_containers_their_view_back(ctr: Ctr) -> None:
    pid = ctr.pid
    assert limited(ctr), memtotal(ctr)
    main = prop("MainPID")
    systemctl("restart", UNIT)
    assert prop("MainPID") != main
    wait_for(lambda: limited(ctr), "the container's view after restart", 30)
    assert ctr.pid == pid
    assert host_lxcfs_mounts().count(LXCFS_DIR) == 1


def test_sigkill_is_restarted_and_heals(ctr: Ctr) -> None:
    pid = ctr.pid
    assert limited(ctr)
    main = prop("MainPID")
    os.kill(int(main), 9)
    wait_for(lambda: prop("MainPID") not in ("0", main) and prop("ActiveState") == "active",
             "systemd to restart the daemon", 30)
    wait_for(lambda: limited(ctr), "the container's view after SIGKILL", 30)
    assert ctr.pid == pid
    assert int(prop("NRestarts")) >= 1


def test_stop_leaves_no_dead_mounts(ctr: Ctr) -> None:
    assert limited(ctr)
    systemctl("stop", UNIT)
    assert LXCFS_DIR not in host_lxcfs_mounts(), "a stale lxcfs mount stayed on the host"
    total, err = memtotal(ctr)
    assert total == host_memtotal(), f"container after stop: {err or total}"
    systemctl("start", UNIT)
    wait_for(lambda: limited(ctr), "the container's view after start", 30)
