"""The README's demo, run non-interactively, leaves the host as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import limits_unsupported
from .waits import scaled

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]


def host_snapshot() -> dict[str, object]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    # only what the demo names (scdemo*): other tests may run beside this one
    return {
        "links": sorted(name for line in links.splitlines()
                        if "scdemo" in (name := line.split(": ")[1].split("@")[0])),
        "loops": sorted(line for line in loops.splitlines() if "scdemo" in line),
        "mounts": sorted(m for m in mounts if "scdemo" in m),
        "run": Path("/run/scdemo").exists(),
        "runc": Path("/run/scdemo/runc").exists(),
        "udev": sorted(p.name for p in Path("/run/udev/rules.d").glob("*scdemo*")),
        # the directories the tools make on first use: gone again if the demo made them
        "dirs": [d for d in ("/run/syscontainer-tools/netns", "/run/udev/rules.d")
                 if os.path.lexists(d)],
    }


def test_demo_runs_and_leaves_nothing_behind():
    if why := limits_unsupported():   # the demo's container has a memory limit and a cpuset
        pytest.skip(why)
    before = host_snapshot()
    dirs = before.pop("dirs")
    assert before == {"links": [], "loops": [], "mounts": [], "run": False, "runc": False,
                      "udev": []}
    before["dirs"] = dirs
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--yes"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=scaled(600))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    for expected in ("Add device (/dev/loop", "Update read bps for device",
                     "Add network interface (scdemo-veth) to container (scdemo,eth1) done",
                     "Add route to container scdemo", "Add path (/run/scdemo/share)",
                     "MemTotal:         262144 kB", "processors: 1", "written on the host",
                     "1 packets received", "Torn down"):
        assert expected in out, expected
    # after the restart the device, path, NIC, route and lxcfs view are back
    restarted = out.split("6. Restart")[1].split("7. Remove")[0]
    for expected in ("/dev/sdb", "written on the host", "inet 10.231.77.2/24",
                     "10.231.78.0/24 via 10.231.77.1", "MemTotal:         262144 kB"):
        assert expected in restarted, expected
    assert host_snapshot() == before
