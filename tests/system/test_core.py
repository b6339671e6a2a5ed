"""Core against real runc containers: lookup, namespace entry, pid checks."""

from __future__ import annotations

import dataclasses
import os

import pytest

from syscontainer_tools import inroot, ns
from syscontainer_tools.container import Container
from syscontainer_tools.engines import Engine, find
from syscontainer_tools.errors import NotFound, ToolError

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def pair(runtime_root, rootfs_template, tmp_path_factory):
    """Two running containers whose ids share a prefix."""
    from .conftest import PREFIX, Ctr, shutil, write_config

    made = []
    for suffix in ("core-a1", "core-a2"):
        bundle = tmp_path_factory.mktemp(suffix)
        shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
        write_config(bundle)
        ctr = Ctr(f"{PREFIX}-{suffix}", bundle, runtime_root)
        ctr.start()
        made.append(ctr)
    yield made
    for ctr in made:
        ctr.stop()


def test_find_by_full_id_and_unique_prefix(pair, runtime_root):
    a, _ = pair
    c = find(a.id, Engine.RUNC, runtime_root)
    assert (c.id, c.pid, c.status, c.bundle) == (a.id, a.pid, "running", str(a.bundle))
    assert c.rootfs == str(a.rootfs)
    assert c.spec["process"]["args"][0] == "/bin/sleep"
    assert find(a.id[:-1] + "1", Engine.AUTO, runtime_root).id == a.id


def test_ambiguous_prefix_lists_candidates(pair, runtime_root):
    a, b = pair
    with pytest.raises(ToolError) as err:
        find(a.id[:-1], Engine.RUNC, runtime_root)
    assert a.id in str(err.value) and b.id in str(err.value)


def test_unknown_container(runtime_root):
    with pytest.raises(NotFound):
        find("no-such-container-xyz", Engine.RUNC, runtime_root)


def test_cli_lookup_errors_are_one_line_exit_1(pair, tool):
    a, b = pair
    r = tool("list-path", "no-such-container-xyz")
    assert r.returncode == 1 and r.stderr.startswith("Failed to ")
    assert "not found" in r.stderr and "Traceback" not in r.stderr
    r = tool("list-path", a.id[:-1])
    assert r.returncode == 1 and "ambiguous" in r.stderr and b.id in r.stderr


def _probe() -> tuple[str, list[str]]:
    return os.uname().nodename, sorted(os.listdir("/"))


def test_run_in_enters_mount_namespace_and_root(pair, runtime_root):
    a, _ = pair
    c = find(a.id, Engine.RUNC, runtime_root)
    (a.rootfs / "marker-only-in-container").write_text("x")
    with c.init_process() as pidfd:
        _, listing = ns.run_in(pidfd, c.pid, _probe)
        assert "marker-only-in-container" in listing
        # errors come back with their real errno
        with pytest.raises(FileNotFoundError):
            ns.run_in(pidfd, c.pid, os.stat, "/definitely/missing")
        uts = ns.run_in(pidfd, c.pid, _probe, flags=ns.MNT | 0x04000000)  # CLONE_NEWUTS
        assert uts[0] == a.bundle.name


def test_stale_pid_is_never_entered(pair, runtime_root):
    a, _ = pair
    c = find(a.id, Engine.RUNC, runtime_root)
    recycled = dataclasses.replace(c, pid_start=(c.pid_start or 0) + 1)
    with pytest.raises(ToolError, match="no longer belongs"), recycled.init_process():
        pass
    gone = dataclasses.replace(c, pid=2**22 - 1)
    with pytest.raises(ToolError), gone.init_process():
        pass


def _make_parent(path: str) -> bool:
    fd, _ = inroot.open_parent(os.open("/", os.O_PATH), path, create=True)
    os.close(fd)
    return os.path.isdir(os.path.dirname(path))


def test_inroot_never_escapes_through_symlinks(pair, runtime_root, tmp_path):
    a, _ = pair
    outside = tmp_path / "host-only"
    outside.mkdir()
    (a.rootfs / "escape").symlink_to("/")
    (a.rootfs / "rel").symlink_to("../../../../../../..")
    (a.rootfs / "abs").symlink_to(str(outside))
    c = find(a.id, Engine.RUNC, runtime_root)
    with c.init_process() as pidfd:
        for link in ("escape", "rel", "abs"):
            assert ns.run_in(pidfd, c.pid, _make_parent, f"/{link}/{a.id}-made/x")
        # from the host side too, through /proc/PID/root
        rootfd = os.open(f"/proc/{c.pid}/root", os.O_PATH)
        try:
            fd, _ = inroot.open_parent(rootfd, f"/abs/{a.id}-host/x", create=True)
            os.close(fd)
        finally:
            os.close(rootfd)
    assert not os.path.exists(f"/{a.id}-made")
    assert list(outside.iterdir()) == []
    assert (a.rootfs / f"{a.id}-made").is_dir()
    assert (a.rootfs / str(outside).lstrip("/") / f"{a.id}-host").is_dir()


def test_from_oci_state_reads_bundle(pair):
    a, _ = pair
    st = a.state()
    c = Container.from_oci_state({"id": st["id"], "pid": st["pid"], "bundle": st["bundle"],
                                  "status": "running"})
    assert c.running and c.rootfs == str(a.rootfs) and c.pid_start is not None
    with pytest.raises(ToolError, match="config.json"):
        Container.from_oci_state({"id": "x", "pid": 1, "bundle": "/nonexistent-bundle"})


def test_relabel_says_selinux_is_off(pair, tool):
    if os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("SELinux is on here")
    r = tool("relabel", pair[0].id)
    assert r.returncode == 1
    assert r.stderr.startswith("Failed to relabel: SELinux is not enabled on this host")
