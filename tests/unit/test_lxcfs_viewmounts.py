"""Pure parts of lxcfs_toolkit.viewmounts, cli and hook: no root, no daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lxcfs_toolkit import cli, viewmounts
from syscontainer_tools import mountinfo
from syscontainer_tools.errors import ToolError

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
53 27 254:0 /var/lib/lxc /var/lib/lxc rw,relatime shared:2 - ext4 /dev/vda rw
55 53 0:50 / /var/lib/lxc/lxcfs rw,nosuid,nodev,relatime shared:3 - fuse.lxcfs lxcfs rw,user_id=0
131 22 0:50 /proc/meminfo /proc/meminfo rw,nosuid,nodev master:3 - fuse.lxcfs lxcfs rw
132 22 0:49 /proc/cpuinfo /proc/cpuinfo rw,nosuid,nodev master:3 - fuse.lxcfs lxcfs rw
140 27 0:60 / /mnt/with\\040space rw shared:9 master:4 - tmpfs my\\011src rw
141 27 0:61 / /srv/other rw - fuse.lxcfs lxcfs rw
garbage line
142 27 x:y / /bad rw - tmpfs t rw
"""


def test_parse_mountinfo_fields_and_escapes() -> None:
    entries = mountinfo.parse(MOUNTINFO)
    assert [e.mount_id for e in entries] == [22, 27, 53, 55, 131, 132, 140, 141]
    fuse = entries[3]
    assert fuse.dev == os.makedev(0, 50)
    assert (fuse.point, fuse.root, fuse.fstype, fuse.source) == (
        "/var/lib/lxc/lxcfs", "/", "fuse.lxcfs", "lxcfs")
    assert fuse.shared and fuse.optional == ("shared:3",)
    assert not entries[4].shared and entries[4].root == "/proc/meminfo"
    spaced = entries[6]
    assert spaced.point == "/mnt/with space" and spaced.source == "my\tsrc"
    assert spaced.optional == ("shared:9", "master:4") and spaced.shared


def test_unescape_leaves_incomplete_escapes() -> None:
    assert mountinfo.unescape("a\\04") == "a\\04"
    assert mountinfo.unescape("a\\134b") == "a\\b"
    assert mountinfo.unescape("a\\999") == "a\\999"


def test_top_mount_is_the_last_listed() -> None:
    text = MOUNTINFO + "150 55 0:70 / /var/lib/lxc/lxcfs rw - fuse.lxcfs lxcfs rw\n"
    top = mountinfo.top_mount(mountinfo.parse(text), "/var/lib/lxc/lxcfs")
    assert top is not None and top.mount_id == 150
    assert mountinfo.top_mount(mountinfo.parse(text), "/nowhere") is None


def test_lxcfs_mounts_only_on_the_views_targets() -> None:
    found = viewmounts.lxcfs_mounts(mountinfo.parse(MOUNTINFO), "/var/lib/lxc/lxcfs")
    assert [e.point for e in found] == ["/var/lib/lxc/lxcfs", "/proc/meminfo", "/proc/cpuinfo"]
    # another lxcfs directory: the /proc files still count, the directory does not
    found = viewmounts.lxcfs_mounts(mountinfo.parse(MOUNTINFO), "/var/lib/lxcfs")
    assert [e.point for e in found] == ["/proc/meminfo", "/proc/cpuinfo"]


def test_target_paths() -> None:
    paths = viewmounts.target_paths("/var/lib/lxc/lxcfs")
    for name in ("cpuinfo", "meminfo", "stat", "uptime", "diskstats", "partitions", "swaps",
                 "loadavg"):
        assert f"/proc/{name}" in paths
    assert "/sys/devices/system/cpu/online" in paths
    assert paths[-1] == "/var/lib/lxc/lxcfs"
    assert len(set(paths)) == len(paths)


def test_lxcfs_dir_default_env_and_option(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.delenv("LXCFS_DIR", raising=False)
    assert viewmounts.lxcfs_dir() == viewmounts.DEFAULT_DIR == "/var/lib/lxc/lxcfs"
    monkeypatch.setenv("LXCFS_DIR", "/var/lib/lxcfs/")
    assert viewmounts.lxcfs_dir() == "/var/lib/lxcfs"
    assert viewmounts.lxcfs_dir("/srv//x/../lxcfs") == "/srv/lxcfs"
    # the parent's symlinks are resolved (mountinfo has none), the last part is kept
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    assert viewmounts.lxcfs_dir(str(tmp_path / "link" / "lxcfs")) == str(tmp_path / "real" / "lxcfs")
    with pytest.raises(ToolError, match="absolute"):
        viewmounts.lxcfs_dir("relative/lxcfs")
    with pytest.raises(ToolError, match="cannot be /"):
        viewmounts.lxcfs_dir("/")


def test_daemon_not_answering(tmp_path: Path) -> None:
    with pytest.raises(viewmounts.NotAnswering, match="no lxcfs at"):
        viewmounts.daemon(str(tmp_path / "missing"))
    with pytest.raises(viewmounts.NotAnswering, match="no lxcfs is mounted"):
        viewmounts.daemon(str(tmp_path))
    with pytest.raises(viewmounts.NotAnswering, match=r"waited 0.1 s"):
        viewmounts.wait_daemon(str(tmp_path), 0.1)


# --- CLI ---------------------------------------------------------------------------

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("args", [
    ["remount"], ["umount"], ["remount", "all", "-a"], ["remount", "x", "-c", "y"],
    ["umount", "-a", "-c", "y"], ["remount", "--bogus"],
])
def test_usage_errors_exit_2(args: list[str]) -> None:
    code, _ = invoke(*args)
    assert code == 2


def test_selection() -> None:
    assert cli._selection("all", False, None) is None
    assert cli._selection(None, True, None) is None
    assert cli._selection("abc", False, None) == "abc"
    assert cli._selection(None, False, "all") == "all"     # -c all: a container named all


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_bad_wait_is_a_failed_line(value: str) -> None:
    code, out = invoke("--lxcfs-dir", "/nonexistent/lxcfs", "check-lxcfs", "--wait", value)
    assert code == 1
    assert out.startswith("Failed to check lxcfs: --wait must be a number of seconds")


def test_check_lxcfs_without_daemon(tmp_path: Path) -> None:
    code, out = invoke("--lxcfs-dir", str(tmp_path / "lxcfs"), "check-lxcfs")
    assert code == 1
    assert out.startswith(f"Failed to check lxcfs: no lxcfs at {tmp_path}/lxcfs")


def test_relative_lxcfs_dir_is_a_failed_line() -> None:
    code, out = invoke("--lxcfs-dir", "rel", "check-lxcfs")
    assert code == 1 and out.startswith("Failed to check lxcfs: lxcfs directory must be")


# --- hook ---------------------------------------------------------------------------

def hook(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lxcfs_toolkit.hook", *args], input=stdin,
                          capture_output=True, text=True, check=False)


def test_hook_bad_state_exits_1() -> None:
    proc = hook("{not json")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Failed to mount lxcfs: the OCI state on stdin is not JSON")
    proc = hook("[]")
    assert proc.returncode == 1 and "not a JSON object" in proc.stderr
    proc = hook(json.dumps({"pid": 1}))
    assert proc.returncode == 1 and "lacks a valid field" in proc.stderr


def test_hook_without_daemon_changes_nothing_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"root": {"path": "rootfs"}}))
    state = {"id": "c1", "pid": os.getpid(), "bundle": str(tmp_path), "status": "creating"}
    log = tmp_path / "hook.log"
    proc = hook(json.dumps(state), "--lxcfs-dir", str(tmp_path / "lxcfs"), "--log", str(log))
    assert proc.returncode == 0, proc.stderr
    text = log.read_text()
    assert "container c1: lxcfs not mounted, it sees the host's /proc values" in text
    assert proc.stdout == ""


def test_hook_imports_stay_light() -> None:
    code = ("import sys, lxcfs_toolkit.hook, lxcfs_toolkit.viewmounts; "
            "print(sorted(m for m in ('typer', 'rich', 'fuse', 'pyroute2', 'pyudev') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
