"""add-path / remove-path / list-path against real runc containers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import PREFIX, REPO, run

from .waits import polls, scaled

pytestmark = pytest.mark.system


# --- helpers ------------------------------------------------------------------

def mountpoints(ctr: Any) -> list[str]:
    """Mount points in the container's /proc/self/mountinfo (seen from inside)."""
    info = ctr.exec("cat", "/proc/self/mountinfo").stdout
    return [line.split()[4] for line in info.splitlines()]


def mount_options(ctr: Any, point: str) -> list[str]:
    for line in ctr.exec("cat", "/proc/self/mountinfo").stdout.splitlines():
        fields = line.split()
        if fields[4] == point:
            return fields[5].split(",")
    raise AssertionError(f"{point} not mounted in {ctr.id}")


def host_mounts_of(*paths: object) -> list[str]:
    """Host mounts whose source root or mount point is one of ``paths`` or under it
    (other tests on this host may mount and unmount meanwhile: only ours count)."""
    names = [str(p) for p in paths]
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            root, point = line.split()[3:5]
            if any(x == n or x.startswith(n + "/") for x in (root, point) for n in names):
                out.append(f"{root} {point}")
    return out


def nsenter(ctr: Any, *cmd: str) -> subprocess.CompletedProcess[str]:
    return run(["nsenter", "-t", str(ctr.pid), "-m", *cmd])


def state_digest(state_dir: str) -> str:
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(state_dir)):
        for name in sorted(files):
            if name == "lock":
                continue
            p = os.path.join(root, name)
            h.update(p.encode())
            h.update(Path(p).read_bytes())
    return h.hexdigest()


def saved_paths(state_dir: str, cid: str) -> list[dict[str, Any]]:
    p = Path(state_dir) / cid / "state.json"
    return json.loads(p.read_text())["paths"] if p.exists() else []


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    d.mkdir()
    (d / "hello").write_text("hello world\n")
    return d


@pytest.fixture
def shared_src(tmp_path: Path) -> Iterator[Path]:
    """A host directory on a tmpfs with shared propagation (the host's / may be private)."""
    top = tmp_path / "shared"
    top.mkdir()
    run(["mount", "-t", "tmpfs", "-o", "nosuid,nodev", f"{PREFIX}-shared", str(top)])
    made = [str(top)]
    try:
        run(["mount", "--make-shared", str(top)])
        d = top / "src"
        (d / "sub").mkdir(parents=True)
        yield d
    finally:
        for m in reversed(made):
            run(["umount", "-R", "-l", m], check=False)


# --- add ------------------------------------------------------------------------

def test_add_directory_live(make_container, tool, state_dir, src):
    ctr = make_container("pdir")
    out = ok(tool("add-path", ctr.id, f"{src}:/data"))
    assert out == f"Add path ({src}) to container({ctr.id},/data) done.\n"
    assert ctr.exec("cat", "/data/hello").stdout == "hello world\n"
    # host -> container
    (src / "later").write_text("from host\n")
    assert ctr.exec("cat", "/data/later").stdout == "from host\n"
    # container -> host (rw)
    ctr.sh("echo from container > /data/inside")
    assert (src / "inside").read_text() == "from container\n"
    assert "rw" in mount_options(ctr, "/data")
    assert saved_paths(state_dir, ctr.id) == [
        {"host_path": str(src), "container_path": "/data", "options": "rw,rslave"}]
    rows = json.loads(ok(tool("list-path", ctr.id, "--format", "json")))
    assert rows == [{"HostPath": str(src), "ContainerPath": "/data", "Options": "rw,rslave"}]
    pretty = ok(tool("list-path", ctr.id, "--pretty"))
    assert json.loads(pretty) == rows and "\n    " in pretty
    table = ok(tool("list-path", ctr.id))
    assert "Host path" in table and "Container path" in table and str(src) in table
    # identical re-add: done, nothing stacked, nothing saved twice
    ok(tool("add-path", ctr.id, f"{src}:/data:rslave"))
    assert mountpoints(ctr).count("/data") == 1
    assert len(saved_paths(state_dir, ctr.id)) == 1


def test_add_read_only(make_container, tool, src):
    ctr = make_container("pro")
    ok(tool("add-path", ctr.id, f"{src}:/ro:ro"))
    assert ctr.exec("cat", "/ro/hello").stdout == "hello world\n"
    assert "ro" in mount_options(ctr, "/ro")
    res = ctr.sh("echo x > /ro/new", check=False)
    assert res.returncode != 0 and "Read-only file system" in res.stderr
    assert not (src / "new").exists()
    # the host side stays writable
    (src / "fromhost").write_text("y")
    assert ctr.exec("cat", "/ro/fromhost").stdout == "y"


def test_add_single_file(make_container, tool, tmp_path):
    hostfile = tmp_path / "conf.txt"
    hostfile.write_text("v1\n")
    ctr = make_container("pfile")
    out = ok(tool("add-path", ctr.id, f"{hostfile}:/etc/app/conf.txt"))
    assert out == f"Add path ({hostfile}) to container({ctr.id},/etc/app/conf.txt) done.\n"
    assert ctr.exec("cat", "/etc/app/conf.txt").stdout == "v1\n"
    with open(hostfile, "r+") as f:  # in place: the bind follows the inode
        f.write("v2\n")
    assert ctr.exec("cat", "/etc/app/conf.txt").stdout == "v2\n"
    assert "/etc/app/conf.txt" in mountpoints(ctr)
    ok(tool("remove-path", ctr.id, f"{hostfile}:/etc/app/conf.txt"))
    assert "/etc/app/conf.txt" not in mountpoints(ctr)
    assert ctr.exec("cat", "/etc/app/conf.txt").stdout == ""  # the empty mount point stays
    assert hostfile.read_text() == "v2\n"


def test_missing_host_path_is_created(make_container, tool, tmp_path):
    ctr = make_container("pmk")
    host = tmp_path / "new" / "dir"
    ok(tool("add-path", ctr.id, f"{host}:/made"))
    assert host.is_dir()
    (host / "f").write_text("z")
    assert ctr.exec("cat", "/made/f").stdout == "z"


def test_stopped_container_saves_only(make_container, tool, state_dir, src):
    ctr = make_container("pstop")
    ctr.runc("kill", ctr.id, "KILL")
    for _ in polls(5):
        if ctr.state()["status"] == "stopped":
            break
        time.sleep(0.05)
    proc = tool("add-path", ctr.id, f"{src}:/data")
    assert proc.returncode == 0, proc.stderr
    assert "not running" in proc.stderr
    assert saved_paths(state_dir, ctr.id)[0]["container_path"] == "/data"
    ok(tool("remove-path", ctr.id, f"{src}:/data"))
    assert saved_paths(state_dir, ctr.id) == []


# --- remove ---------------------------------------------------------------------

def test_remove_path(make_container, tool, state_dir, src):
    ctr = make_container("prm")
    ok(tool("add-path", ctr.id, f"{src}:/data", f"{src}:/data2"))
    out = ok(tool("remove-path", ctr.id, f"{src}:/data"))
    assert out == f"Remove path ({src}) from container({ctr.id},/data) done\n"
    assert "/data" not in mountpoints(ctr)
    assert ctr.exec("ls", "/data/hello", check=False).returncode != 0
    assert ctr.exec("cat", "/data2/hello").stdout == "hello world\n"
    assert (src / "hello").read_text() == "hello world\n"
    assert [p["container_path"] for p in saved_paths(state_dir, ctr.id)] == ["/data2"]
    # not added (any more): refused, state unchanged
    before = state_digest(state_dir)
    proc = tool("remove-path", ctr.id, f"{src}:/data")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Failed to remove path: ")
    assert "was not added" in proc.stderr
    assert state_digest(state_dir) == before


def test_remove_already_unmounted(make_container, tool, state_dir, src):
    ctr = make_container("pgone")
    ok(tool("add-path", ctr.id, f"{src}:/data"))
    nsenter(ctr, "/bin/umount", "/data")
    ok(tool("remove-path", ctr.id, f"{src}:/data"))
    assert saved_paths(state_dir, ctr.id) == []
    assert (src / "hello").exists()


# --- propagation ---------------------------------------------------------------

@pytest.mark.parametrize("opts, visible", [("rw,rslave", True), ("rw,slave", True),
                                           ("rw,private", False), ("ro,rprivate", False)])
def test_propagation(make_container, tool, shared_src, opts, visible):
    ctr = make_container("pprop")
    ok(tool("add-path", ctr.id, f"{shared_src}:/data:{opts}"))
    sub = shared_src / "sub"
    run(["mount", "-t", "tmpfs", f"{PREFIX}-late", str(sub)])
    try:
        (sub / "late").write_text("late mount\n")
        res = ctr.exec("cat", "/data/sub/late", check=False)
        assert (res.returncode == 0) is visible, res
        if visible:
            assert res.stdout == "late mount\n"
            assert "/data/sub" in mountpoints(ctr)
    finally:
        run(["umount", str(sub)])
    if visible:  # the unmount propagates too
        assert "/data/sub" not in mountpoints(ctr)


# --- bad input -----------------------------------------------------------------

@pytest.mark.parametrize("spec, words", [
    ("relative/dir:/data", "is not absolute"),
    ("{src}:data", "is not absolute"),
    ("{src}:/", "root / cannot be a target"),
    ("{src}:/data:ro,rw", "'ro' and 'rw' exclude each other"),
    ("{src}:/data:rwx", "option 'rwx' is not one of"),
    ("{src}:/data:slave,rprivate", "only one propagation"),
    ("{src}", "expected HOSTPATH:CONTAINERPATH"),
])
def test_bad_input(make_container, tool, state_dir, src, spec, words):
    ctr = make_container("pbad")
    ok(tool("add-path", ctr.id, f"{src}:/keep"))
    before, mounts_before = state_digest(state_dir), mountpoints(ctr)
    # a good spec before the bad one: nothing of it may land either
    proc = tool("add-path", ctr.id, f"{src}:/first", spec.format(src=src))
    assert proc.returncode == 1
    assert proc.stderr.startswith("Failed to add path: "), proc.stderr
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr
    assert state_digest(state_dir) == before
    assert mountpoints(ctr) == mounts_before


def test_conflicts(make_container, tool, state_dir, src, tmp_path):
    ctr = make_container("pconf")
    other = tmp_path / "other"
    other.mkdir()
    ok(tool("add-path", ctr.id, f"{src}:/data"))
    before, mounts_before = state_digest(state_dir), mountpoints(ctr)
    for spec, words in ((f"{other}:/data", "already has host path"),
                        (f"{src}:/data3:ro", "already added with options rw,rslave")):
        proc = tool("add-path", ctr.id, f"{other}:/fine", spec)
        assert proc.returncode == 1 and proc.stderr.startswith("Failed to add path: ")
        assert words in proc.stderr
    assert state_digest(state_dir) == before
    assert mountpoints(ctr) == mounts_before
    # the same host path elsewhere with the same options is fine
    ok(tool("add-path", ctr.id, f"{src}:/data4"))


def test_unknown_container(tool, state_dir, src):
    proc = tool("add-path", f"{PREFIX}-nosuch", f"{src}:/data")
    assert proc.returncode == 1 and proc.stderr.startswith("Failed to add path: ")
    proc = tool("remove-path", f"{PREFIX}-nosuch", f"{src}:/data")
    assert proc.returncode == 1 and proc.stderr.startswith("Failed to remove path: ")
    assert os.listdir(state_dir) == []


def test_rollback_on_later_failure(make_container, tool, state_dir, src, tmp_path):
    """A bind that fails in the kernel after others went in: all are undone."""
    ctr = make_container("proll")
    hostfile = tmp_path / "file"
    hostfile.write_text("f")
    created = tmp_path / "created-by-tool"
    before, mounts_before = state_digest(state_dir), mountpoints(ctr)
    # /etc/passwd is a file in the container: a directory cannot be mounted on it
    proc = tool("add-path", ctr.id, f"{src}:/one", f"{created}:/two", f"{src}:/etc/passwd")
    assert proc.returncode == 1 and proc.stderr.startswith("Failed to add path: ")
    assert "/etc/passwd" in proc.stderr
    assert mountpoints(ctr) == mounts_before
    assert state_digest(state_dir) == before
    assert not created.exists()  # the host dir it made is gone again
    assert src.exists() and (src / "hello").exists()


def test_path_limit(make_container, tool, state_dir, tmp_path):
    ctr = make_container("plimit")
    specs = [f"{tmp_path}/h/{i}:/c/{i}" for i in range(128)]
    proc = tool("add-path", "--update-config-only", ctr.id, *specs)
    assert proc.returncode == 0, proc.stderr
    assert len(saved_paths(state_dir, ctr.id)) == 128
    assert "/c/0" not in mountpoints(ctr)  # saved only
    before = state_digest(state_dir)
    proc = tool("add-path", ctr.id, f"{tmp_path}/h/x:/c/x")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Failed to add path: ") and "at most 128" in proc.stderr
    assert state_digest(state_dir) == before
    assert not (tmp_path / "h" / "x").exists()
    assert "/c/x" not in mountpoints(ctr)


# --- symlinks planted in the container -------------------------------------------

@pytest.mark.parametrize("link, target, spec_path, lands", [
    ("escape", "/", "/escape/tmp/{p}-x", "/tmp/{p}-x"),
    ("mnt/evil", "/etc", "/mnt/evil/{p}-y", "/etc/{p}-y"),
    ("mnt/up", "../../../../../../tmp", "/mnt/up/{p}-z", "/tmp/{p}-z"),
])
def test_symlink_cannot_escape(make_container, tool, src, link, target, spec_path, lands):
    ctr = make_container("pesc", start=False)
    (ctr.rootfs / link).symlink_to(target)
    ctr.start()
    spec_path, lands = spec_path.format(p=PREFIX), lands.format(p=PREFIX)
    assert host_mounts_of(src, lands) == []
    ok(tool("add-path", ctr.id, f"{src}:{spec_path}"))
    # never on the host: no host mount of src or at the path, nothing created there
    assert host_mounts_of(src, lands) == []
    assert not os.path.lexists(lands)
    # it landed inside the container's root
    assert ctr.exec("cat", f"{lands}/hello").stdout == "hello world\n"
    assert lands in mountpoints(ctr)
    assert (ctr.rootfs / lands.lstrip("/")).is_dir()  # the mount point, in the rootfs
    ok(tool("remove-path", ctr.id, f"{src}:{spec_path}"))
    assert lands not in mountpoints(ctr)
    assert host_mounts_of(src, lands) == []
    assert (src / "hello").exists()


def test_remove_through_swapped_symlink(make_container, tool, state_dir, src, tmp_path):
    """The symlink on the way now points at another mount: that mount is left alone."""
    hostmnt = tmp_path / "hostmnt"
    hostmnt.mkdir()
    run(["mount", "-t", "tmpfs", f"{PREFIX}-vol", str(hostmnt)])
    try:
        (hostmnt / "precious").write_text("keep me")
        ctr = make_container("pswap", start=False)
        cfg = json.loads((ctr.bundle / "config.json").read_text())
        cfg["mounts"].append({"destination": "/vol", "type": "bind", "source": str(hostmnt),
                              "options": ["rbind", "rw"]})
        (ctr.bundle / "config.json").write_text(json.dumps(cfg))
        (ctr.rootfs / "a").mkdir()
        (ctr.rootfs / "link").symlink_to("/a")
        ctr.start()
        ok(tool("add-path", ctr.id, f"{src}:/link"))
        assert "/a" in mountpoints(ctr)
        ctr.sh("rm /link && ln -s /vol /link")
        before = state_digest(state_dir)
        proc = tool("remove-path", ctr.id, f"{src}:/link")
        assert proc.returncode == 1
        assert proc.stderr.startswith("Failed to remove path: ")
        assert "another mount" in proc.stderr
        assert state_digest(state_dir) == before
        points = mountpoints(ctr)
        assert "/vol" in points and "/a" in points
        assert ctr.exec("cat", "/vol/precious").stdout == "keep me"
        assert f"/ {hostmnt}" in host_mounts_of(hostmnt)
        # put the link back: now it goes
        ctr.sh("rm /link && ln -s /a /link")
        ok(tool("remove-path", ctr.id, f"{src}:/link"))
        assert "/a" not in mountpoints(ctr) and "/vol" in mountpoints(ctr)
    finally:
        run(["umount", "-l", str(hostmnt)], check=False)


# --- concurrency ------------------------------------------------------------------

def test_concurrent_adds_both_land(make_container, runtime_root, state_dir, src, tmp_path):
    ctr = make_container("pconc")
    other = tmp_path / "other"
    other.mkdir()
    (other / "o").write_text("o")
    env = dict(os.environ, SYSCONTAINER_ENGINE="runc", SYSCONTAINER_RUNTIME_ROOT=runtime_root,
               SYSCONTAINER_STATE_DIR=state_dir)
    argv = [sys.executable, "-m", "syscontainer_tools", "add-path", ctr.id]
    procs = [subprocess.Popen([*argv, spec], env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for spec in (f"{src}:/one", f"{other}:/two")]
    for p in procs:
        out, err = p.communicate(timeout=scaled(60))
        assert p.returncode == 0, err
    assert sorted(p["container_path"] for p in saved_paths(state_dir, ctr.id)) == ["/one", "/two"]
    assert ctr.exec("cat", "/one/hello").stdout == "hello world\n"
    assert ctr.exec("cat", "/two/o").stdout == "o"


def test_read_only_rootfs(make_container, tool, state_dir, src):
    ctr = make_container("prorootfs", start=False)
    cfg = json.loads((ctr.bundle / "config.json").read_text())
    cfg["root"]["readonly"] = True
    (ctr.bundle / "config.json").write_text(json.dumps(cfg))
    ctr.start()
    proc = tool("add-path", ctr.id, f"{src}:/mnt", f"{src}:/newdir")
    assert proc.returncode == 1
    assert proc.stderr == ("Failed to add path: cannot create the mount point /newdir in the "
                           "container: Read-only file system\n")
    assert "/mnt" not in mountpoints(ctr) and saved_paths(state_dir, ctr.id) == []
    # an existing mount point needs no write
    ok(tool("add-path", ctr.id, f"{src}:/mnt"))
    assert ctr.exec("cat", "/mnt/hello").stdout == "hello world\n"
