import pytest

from syscontainer_tools.cgroup import parse_mountinfo, parse_proc_cgroup
from syscontainer_tools.engines import Candidate, Engine, dockerlike, match
from syscontainer_tools.engines import runc as runc_engine
from syscontainer_tools.errors import ToolError

C = [Candidate("abc123", "web", Engine.RUNC), Candidate("abd456", "db", Engine.RUNC),
     Candidate("web", "web", Engine.CRUN)]


def test_match_order_exact_id_then_name_then_prefix():
    assert match("abc123", C) == [C[0]]
    assert match("db", C) == [C[1]]
    assert match("abc", C) == [C[0]]
    assert match("ab", C) == [C[0], C[1]]          # ambiguous prefix
    assert match("web", C) == [C[2]]               # exact id wins over a name
    assert match("zzz", C) == []


def test_engine_parse():
    assert Engine.parse("RUNC") is Engine.RUNC
    with pytest.raises(ToolError, match="unknown engine"):
        Engine.parse("lxc")


def test_runc_list_parsing():
    out = '[{"ociVersion":"1.0.2","id":"c1","pid":12,"status":"running","bundle":"/b"}]'
    assert runc_engine.parse_list(Engine.RUNC, out) == [Candidate("c1", "c1", Engine.RUNC)]
    assert runc_engine.parse_list(Engine.RUNC, "null") == []
    assert runc_engine.list_argv(Engine.CRUN, "/r") == ["crun", "--root", "/r", "list",
                                                       "--format", "json"]


def test_dockerlike_list_parsing():
    out = "0123abcd\t/legacy,alias\nffff\tname2\n\n"
    assert dockerlike.parse_list(Engine.DOCKER, out) == [
        Candidate("0123abcd", "legacy", Engine.DOCKER), Candidate("ffff", "name2", Engine.DOCKER)]


def test_dockerlike_inspect_record(tmp_path):
    (tmp_path / "config.json").write_text('{"root": {"path": "rootfs"}}')
    data = {"Id": "f00", "Name": "/web", "State": {"Status": "exited", "Running": False,
                                                  "Pid": 0}}
    c = dockerlike.container_from_inspect(Engine.PODMAN, data, lambda d: [str(tmp_path)])
    assert (c.id, c.name, c.running, c.bundle) == ("f00", "web", False, str(tmp_path))
    assert c.rootfs == str(tmp_path / "rootfs")


MOUNTINFO = """\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw
31 30 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 30 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
"""


def test_cgroup_mounts_and_proc_cgroup():
    m = parse_mountinfo(MOUNTINFO)
    assert m.v1["cpu"] == "/sys/fs/cgroup/cpu"
    assert m.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert m.v1["name=systemd"] == "/sys/fs/cgroup/systemd"
    assert m.v2 == "/sys/fs/cgroup/unified"
    cs = parse_proc_cgroup("2:cpu,cpuacct:/ctr\n1:name=systemd:/ctr\n0::/ctr\n", m)
    assert cs.v1["cpu"] == "/sys/fs/cgroup/cpu/ctr"
    assert cs.v2 == "/sys/fs/cgroup/unified/ctr"
    assert cs.dir("cpu") == (1, "/sys/fs/cgroup/cpu/ctr")
    with pytest.raises(ToolError):
        cs.dir("blkio", "io")


def test_covered_cgroup_mounts_are_not_the_hierarchy():
    # a cgroup2 at /sys/fs/cgroup with a tmpfs of v1 hierarchies mounted over
    # it (the hybrid VM guests): the visible v2 is the one at .../unified
    covered = "29 25 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n" + MOUNTINFO
    m = parse_mountinfo(covered)
    assert m.v2 == "/sys/fs/cgroup/unified"
    assert m.v1["cpu"] == "/sys/fs/cgroup/cpu"
    # a hierarchy mounted again over the same point: the later one shows
    again = MOUNTINFO + "40 30 0:40 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
    assert parse_mountinfo(again).v1["name=systemd"] == "/sys/fs/cgroup/systemd"
    # something else over a hierarchy hides it
    hidden = MOUNTINFO + "41 25 0:41 / /sys/fs/cgroup/systemd rw - tmpfs tmpfs rw\n"
    assert "name=systemd" not in parse_mountinfo(hidden).v1
