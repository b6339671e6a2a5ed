"""Pure parts of the restartable lxcfs: pressure view, wiring, the FUSE loop's tables."""

from __future__ import annotations

import struct

import pytest

from lxcfs_toolkit import fs, fuseloop, wired
from lxcfs_toolkit.cgroupreader import CgroupReader, Hierarchies
from lxcfs_toolkit.views.pressure import render_pressure
from syscontainer_tools.cgroup import Membership

HOST = b"some avg10=1.00 avg60=2.00 avg300=3.00 total=4\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
CG = "some avg10=0.50 avg60=0.25 avg300=0.10 total=99\nfull avg10=0.10 avg60=0.05 avg300=0.01 total=7\n"


def test_pressure_view_prefers_the_cgroup_and_falls_back_to_the_host() -> None:
    assert render_pressure(CG, HOST) == CG.encode()
    assert render_pressure(CG.rstrip("\n"), HOST) == CG.encode()
    assert render_pressure(None, HOST) == HOST            # root cgroup, or no v2
    assert render_pressure("", HOST) == HOST
    assert render_pressure("garbage", HOST) == HOST


def test_pressure_is_read_from_the_v2_cgroup_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "ctr").mkdir()
    (tmp_path / "ctr" / "cpu.pressure").write_text(CG)
    reader = CgroupReader(Hierarchies(v1={"cpu": "/nonexistent"}, v2=str(tmp_path)))
    assert reader.pressure(Membership(v1={}, v2="/ctr"), "cpu") == CG
    assert reader.pressure(Membership(v1={}, v2="/"), "cpu") is None
    assert reader.pressure(Membership(v1={"cpu": "/ctr"}, v2=None), "cpu") is None
    assert CgroupReader(Hierarchies(v1={})).pressure(Membership(v1={}, v2="/ctr"), "cpu") is None


def test_tree_shows_pressure_only_where_the_host_has_psi(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dirs, files = fs.tree(str(tmp_path))
    assert "/proc/pressure" not in dirs and "/proc/pressure/cpu" not in files
    (tmp_path / "pressure").mkdir()
    dirs, files = fs.tree(str(tmp_path))
    assert dirs["/proc/pressure"] == ("cpu", "io", "memory")
    assert files["/proc/pressure/io"] == "pressure_io"
    fuseloop.Tree(dirs, files)   # every path has a stable inode number


def test_inode_numbers_and_kinds_never_move() -> None:
    # a daemon takes over handles and inodes another version handed out
    assert fuseloop.NODES["/"] == 1 and fuseloop.NODES["/proc/meminfo"] == 11
    assert fuseloop.NODES["/proc/stat"] == 12 and fuseloop.NODES["/proc/pressure/memory"] == 22
    assert fuseloop.KINDS[:4] == ("", "cpuinfo", "meminfo", "stat")
    assert len(set(fuseloop.NODES.values())) == len(fuseloop.NODES)
    with pytest.raises(ValueError):
        fuseloop.Tree({"/": ("new",)}, {"/new": "meminfo"})


def test_protocol_structs_have_the_kernels_sizes() -> None:
    assert fuseloop.IN_HEADER.size == 40 and fuseloop.OUT_HEADER.size == 16
    assert fuseloop.ATTR.size == 88 and fuseloop.ENTRY_OUT.size + fuseloop.ATTR.size == 128
    assert fuseloop.ATTR_OUT.size + fuseloop.ATTR.size == 104
    assert fuseloop.INIT_OUT.size == 64 and fuseloop.STATFS_OUT.size == 80
    assert fuseloop.OPEN_OUT.size == 16


def test_dirents_are_8_byte_aligned_and_numbered() -> None:
    dirs, files = fs.tree("/nonexistent")
    session = fuseloop.Session.__new__(fuseloop.Session)
    session.tree = fuseloop.Tree(dirs, files)
    entries = session._dir_entries()[fuseloop.NODES["/proc"]]
    names = []
    for off, rec in enumerate(entries, 1):
        assert len(rec) % 8 == 0
        ino, next_off, namelen, _type = struct.unpack_from("<QQII", rec)
        assert next_off == off
        names.append(rec[24:24 + namelen].decode())
    assert names[:2] == [".", ".."] and "meminfo" in names


def hook(path: str, *args: str, env: list[str] | None = None) -> dict:  # type: ignore[type-arg]
    return {"hooks": {"prestart": [{"path": path, "args": [path, *args], "env": env or []}]}}


def test_a_container_is_wired_by_its_hook_for_that_directory() -> None:
    d = "/var/lib/lxc/lxcfs"
    assert wired.hooked(hook("/usr/bin/lxcfs-hook"), d)
    assert wired.hooked(hook("/usr/bin/lxcfs-hook", "--lxcfs-dir", "/run/x/lxcfs"), "/run/x/lxcfs")
    assert not wired.hooked(hook("/usr/bin/lxcfs-hook", "--lxcfs-dir", "/run/x/lxcfs"), d)
    assert wired.hooked(hook("/usr/bin/lxcfs-hook", "--lxcfs-dir=/run/y"), "/run/y")
    assert wired.hooked(hook("/usr/bin/lxcfs-hook", env=["LXCFS_DIR=/var/lib/lxcfs"]),
                        "/var/lib/lxcfs")
    assert not wired.hooked(hook("/usr/bin/syscontainer-hooks"), d)
    assert not wired.hooked({}, d)
    assert wired.hooked({"hooks": {"createRuntime": hook("/x/lxcfs-hook")["hooks"]["prestart"]}}, d)


def test_records_of_dead_containers_are_pruned(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    monkeypatch.setenv("LXCFS_TOOLKIT_RUN_DIR", str(tmp_path))

    class C:
        id = "abc"
        pid = os.getpid()

    wired.record(C(), "/d")
    assert wired.recorded("/d") == {"abc"}
    assert wired.recorded("/other") == set()
    (tmp_path / "wired" / "dead.json").write_text(
        '{"id": "dead", "pid": 999999999, "start_time": 1, "directory": "/d"}')
    assert wired.recorded("/d") == {"abc"}
    assert not (tmp_path / "wired" / "dead.json").exists()
