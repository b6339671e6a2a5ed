"""scripts/setup.sh (which scripts/test.sh ran before these tests) leaves no
packaged daemon running or enabled, and a second run installs nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .waits import scaled

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
# what the packages setup.sh --test installs would start: the C lxcfs, the
# OVS daemons (Debian and openEuler unit names), podman's API socket
UNITS = ("lxcfs.service", "openvswitch-switch.service", "openvswitch.service",
         "ovsdb-server.service", "ovs-vswitchd.service", "podman.socket", "podman.service")
DAEMONS = ("lxcfs", "ovsdb-server", "ovs-vswitchd")
# the tests and benchmarks start these daemons themselves, privately: their
# command lines name a pytest directory or an sct/scdemo-prefixed path
PRIVATE = ("pytest", "/sct", "scdemo")


def packaged_daemons() -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if (args and os.path.basename(args[0]) in DAEMONS
                and not any(mark in a for a in args for mark in PRIVATE)):
            found.append(f"{pid}: {' '.join(args)}")
    return found


def test_no_packaged_daemon_runs():
    assert packaged_daemons() == []


def test_no_packaged_unit_enabled_or_active():
    if not Path("/run/systemd/system").is_dir():
        pytest.skip("systemd is not running here")
    bad = []
    for unit in UNITS:
        for verb, good in (("is-enabled", ("disabled", "masked", "static", "")),
                           ("is-active", ("inactive", "failed", "unknown", ""))):
            out = subprocess.run(["systemctl", verb, unit], capture_output=True,
                                 text=True).stdout.strip()
            if out not in good and "No such file" not in out:
                bad.append(f"{unit} {verb}: {out}")
    assert bad == []


def test_second_run_installs_nothing():
    """Run again, setup.sh installs no package and does not reinstall the
    Python package (the stamp and the console scripts stay untouched)."""
    venv = REPO / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        pytest.skip("setup.sh manages the checkout's .venv; this run uses another Python")
    stamp = venv / ".syscontainer-tools-setup"
    script = venv / "bin" / "syscontainer-tools"
    before = (stamp.stat().st_mtime_ns, script.stat().st_mtime_ns)
    # the interpreter .venv was made with, so setup.sh keeps it
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    proc = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh"), "--test"],
                          env={**os.environ, "PYTHON": str(base)}, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=scaled(300))
    assert proc.returncode == 0, proc.stderr
    assert "installing" not in proc.stdout, proc.stdout
    assert "made by another Python" not in proc.stdout, proc.stdout
    assert proc.stderr == ""
    assert (stamp.stat().st_mtime_ns, script.stat().st_mtime_ns) == before
