"""serve()'s mount-point checks that need no mount."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcfs_toolkit.server import check_mountpoint, mount_entry
from syscontainer_tools.errors import ToolError

MOUNTINFO = (
    "44 27 0:51 / /var/lib/lxc/lxcfs rw,nosuid - fuse.lxcfs lxcfs rw,user_id=0\n"
    "45 27 0:52 / /mnt/with\\040space rw - tmpfs tmpfs rw\n"
)


def test_mount_entry_parses_mountinfo(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert mount_entry("/var/lib/lxc/lxcfs", str(info)) == ("fuse.lxcfs", "lxcfs")
    assert mount_entry("/mnt/with space", str(info)) == ("tmpfs", "tmpfs")
    assert mount_entry("/nowhere", str(info)) is None


def test_check_mountpoint_creates_a_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "a" / "lxcfs"
    check_mountpoint(str(target))
    assert target.is_dir()
    check_mountpoint(str(target))  # an existing, unmounted directory is fine


def test_check_mountpoint_rejects_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ToolError):
        check_mountpoint(str(f))
