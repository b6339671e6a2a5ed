import pytest

from syscontainer_tools.container import Container
from syscontainer_tools.errors import ToolError
from syscontainer_tools.resources import selinux
from syscontainer_tools.resources.pathspec import PathSpec
from syscontainer_tools.resources.state import Record


def ctr(spec=None):
    return Container(id="c1", name="c1", engine="runc", status="running", pid=1,
                     rootfs="/b/rootfs", spec=spec or {})


def test_relabel_where_selinux_is_off(tmp_path):
    with pytest.raises(ToolError, match="SELinux is not enabled on this host"):
        selinux.relabel(ctr(), Record("c1"), ref="c1", selinuxfs=str(tmp_path))


def test_relabel_needs_a_mount_label(tmp_path):
    (tmp_path / "enforce").write_text("1")
    with pytest.raises(ToolError, match="no SELinux mount label"):
        selinux.relabel(ctr(), Record("c1"), ref="c1", selinuxfs=str(tmp_path))


def test_targets_are_rootfs_then_saved_paths():
    rec = Record("c1")
    rec.paths = [PathSpec.parse("/srv/a:/a"), PathSpec.parse("/srv/a:/b")]
    assert selinux.targets(ctr(), rec) == ["/b/rootfs", "/srv/a"]
