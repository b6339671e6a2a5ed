"""PathSpec parsing, conflict planning and record shape (no root needed)."""

from __future__ import annotations

import errno
import os

import pytest

from syscontainer_tools import mounts, syscalls
from syscontainer_tools.errors import Conflict, SpecError, ToolError
from syscontainer_tools.resources import path
from syscontainer_tools.resources.path import MAX_PATHS, PathSpec, Propagation
from syscontainer_tools.resources.state import Record


def test_defaults():
    spec = PathSpec.parse("/srv/data:/data")
    assert spec == PathSpec("/srv/data", "/data", False, Propagation.RSLAVE)
    assert spec.options == "rw,rslave"
    assert spec.bind == mounts.Bind("/srv/data", "/data", False, syscalls.MS_SLAVE, True)


def test_paths_are_cleaned():
    spec = PathSpec.parse("/srv//data/./x/..:/a/b/../c/")
    assert (spec.host_path, spec.container_path) == ("/srv/data", "/a/c")
    assert PathSpec.parse("//srv:/x").host_path == "/srv"


@pytest.mark.parametrize("opts, readonly, prop", [
    ("ro", True, Propagation.RSLAVE),
    ("rw", False, Propagation.RSLAVE),
    ("private", False, Propagation.PRIVATE),
    ("ro,rprivate", True, Propagation.RPRIVATE),
    ("slave,ro", True, Propagation.SLAVE),
    ("rslave,rw", False, Propagation.RSLAVE),
])
def test_options(opts, readonly, prop):
    spec = PathSpec.parse(f"/h:/c:{opts}")
    assert (spec.readonly, spec.propagation) == (readonly, prop)


def test_options_canonical_order():
    assert PathSpec.parse("/h:/c:rprivate,ro").options == "ro,rprivate"
    assert PathSpec.parse("/h:/c:slave").options == "rw,slave"


def test_propagation_flags():
    assert Propagation.PRIVATE.flag == syscalls.MS_PRIVATE
    assert not Propagation.PRIVATE.recursive
    assert Propagation.RPRIVATE.flag == syscalls.MS_PRIVATE and Propagation.RPRIVATE.recursive
    assert Propagation.SLAVE.flag == syscalls.MS_SLAVE and not Propagation.SLAVE.recursive


@pytest.mark.parametrize("text, words", [
    ("/h", "expected HOSTPATH:CONTAINERPATH"),
    ("/h:/c:rw:x", "expected HOSTPATH:CONTAINERPATH"),
    ("h:/c", "host path 'h' is not absolute"),
    ("/h:c", "container path 'c' is not absolute"),
    (":/c", "host path is empty"),
    ("/h:", "container path is empty"),
    ("/h:/", "container's root / cannot be a target"),
    ("/h:/a/..", "container's root / cannot be a target"),
    ("/h:/c:ro,rw", "'ro' and 'rw' exclude each other"),
    ("/h:/c:rx", "option 'rx' is not one of ro, rw, private"),
    ("/h:/c:shared", "option 'shared' is not one of"),
    ("/h:/c:", "option '' is not one of"),
    ("/h:/c:ro,ro", "option 'ro' is given twice"),
    ("/h:/c:slave,private", "only one propagation may be given, not slave, private"),
])
def test_bad_specs(text, words):
    with pytest.raises(SpecError) as err:
        PathSpec.parse(text)
    assert words in str(err.value)
    assert repr(text) in str(err.value)


def test_record_round_trip():
    spec = PathSpec.parse("/h:/c:private,ro")
    item = spec.to_record()
    assert item == {"host_path": "/h", "container_path": "/c", "options": "ro,private"}
    assert PathSpec.from_record(item) == spec
    with pytest.raises(ToolError):
        PathSpec.from_record({"host_path": "/h"})


def _specs(*texts):
    return [PathSpec.parse(t) for t in texts]


def test_plan_conflicts():
    saved = _specs("/h1:/c1", "/h2:/c2:ro")
    with pytest.raises(Conflict, match="container path /c1 already has host path /h1"):
        path._plan_add(saved, _specs("/other:/c1"))
    with pytest.raises(Conflict, match="host path /h2 is already added with options ro,rslave"):
        path._plan_add(saved, _specs("/h2:/c3"))
    # conflicts inside one command too
    with pytest.raises(Conflict, match="container path /x already has host path /a"):
        path._plan_add([], _specs("/a:/x", "/b:/x"))
    with pytest.raises(Conflict, match="options"):
        path._plan_add([], _specs("/a:/x:ro", "/a:/y:rw"))


def test_plan_identical_and_same_host_elsewhere():
    saved = _specs("/h1:/c1")
    plan = path._plan_add(saved, _specs("/h1:/c1:rw,rslave", "/h1:/c9", "/h1:/c9"))
    assert [(s.container_path, new) for s, new in plan] == [("/c1", False), ("/c9", True)]


def test_plan_limit():
    saved = _specs(*(f"/h{i}:/c{i}" for i in range(MAX_PATHS - 1)))
    assert len(path._plan_add(saved, _specs("/x:/y"))) == 1
    # an identical re-add does not count
    path._plan_add(saved + _specs("/x:/y"), _specs("/x:/y"))
    with pytest.raises(Conflict, match=f"at most {MAX_PATHS} paths: {MAX_PATHS} are added"):
        path._plan_add(saved + _specs("/x:/y"), _specs("/z:/z"))


def test_list_paths_rows():
    rec = Record("c1")
    rec.paths = [PathSpec.parse("/h:/c")]
    assert path.list_paths(rec) == [
        {"HostPath": "/h", "ContainerPath": "/c", "Options": "rw,rslave"}]


def test_no_open_tree_is_a_clear_error(monkeypatch):
    def enosys(*_a, **_k):
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS), "open_tree")

    monkeypatch.setattr(syscalls, "open_tree", enosys)
    with pytest.raises(ToolError, match="Linux 5.2 or later") as err:
        mounts.open_source(mounts.Bind("/tmp", "/x"))
    assert "--update-config-only" in (err.value.hint or "")


def test_ensure_host_path(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    made = path.ensure_host_path(str(target), (os.getuid(), os.getgid()))
    assert made == [str(tmp_path / "a"), str(tmp_path / "a" / "b"), str(target)]
    assert target.is_dir()
    assert path.ensure_host_path(str(target), (os.getuid(), os.getgid())) == []
    (target / "keep").write_text("x")
    path.remove_dirs(made)  # rmdir only: a directory with content stays
    assert (target / "keep").read_text() == "x"
    (target / "keep").unlink()
    path.remove_dirs(made)
    assert not (tmp_path / "a").exists()


def test_ensure_host_path_dangling(tmp_path):
    (tmp_path / "l").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ToolError, match="dangling"):
        path.ensure_host_path(str(tmp_path / "l"), (0, 0))
