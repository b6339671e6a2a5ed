"""The prestart re-apply of saved paths, and the mount(2) fallback for kernels
without mount_setattr -- both through the library, in this process."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from syscontainer_tools import syscalls
from syscontainer_tools.engines import Engine, find
from syscontainer_tools.resources import path
from syscontainer_tools.resources.path import PathSpec
from syscontainer_tools.resources.state import Record
from tests.system.conftest import PREFIX, run
from tests.system.test_paths import host_mounts_of, mount_options, mountpoints, shared_src, src

pytestmark = pytest.mark.system
__all__ = ["shared_src", "src"]  # fixtures

# A minimal prestart hook: what syscontainer-hooks does for the paths section.
HOOK = """
import json, os, sys
from syscontainer_tools.container import Container
from syscontainer_tools.resources import path
from syscontainer_tools.resources.pathspec import PathSpec
from syscontainer_tools.resources.state import Record
state = json.load(sys.stdin)
c = Container.from_oci_state(state)
record = Record(c.id, paths=[PathSpec.from_record(i) for i in json.load(open(sys.argv[1]))])
pidfd = os.pidfd_open(c.pid)
root, rootfs = os.stat(f"/proc/{c.pid}/root"), os.stat(c.rootfs)
pivoted = (root.st_dev, root.st_ino) == (rootfs.st_dev, rootfs.st_ino)
lines = path.reapply(c, pidfd, record)
with open(sys.argv[2], "a") as f:
    f.write(f"pivoted={pivoted}\\n" + "\\n".join(lines) + "\\n")
"""


def test_reapply_at_prestart(make_container, tmp_path, src, runtime_root):
    hostfile = tmp_path / "conf"
    hostfile.write_text("conf\n")
    missing = tmp_path / "made-at-start"
    specs = [PathSpec.parse(t) for t in (
        f"{src}:/data", f"{hostfile}:/etc/conf:ro", f"{missing}:/made",
        f"{src}:/escape/tmp/{PREFIX}-pre:private")]
    items_file, out = tmp_path / "items.json", tmp_path / "hook.out"
    items_file.write_text(json.dumps([s.to_record() for s in specs]))
    hooks = {"prestart": [{"path": sys.executable,
                           "args": [sys.executable, "-c", HOOK, str(items_file), str(out)]}]}
    ctr = make_container("preapply", start=False, hooks=hooks)
    (ctr.rootfs / "escape").symlink_to("/")
    assert host_mounts_of(src, f"/tmp/{PREFIX}-pre") == []
    ctr.start()
    log = out.read_text()
    # runc runs prestart hooks before pivot_root: the init's root is still the host's
    assert log.startswith("pivoted=False\n"), log
    assert f"Add path ({src}) to container({ctr.id},/data) done." in log
    assert f"Add path ({hostfile}) to container({ctr.id},/etc/conf) done." in log
    assert ctr.exec("cat", "/data/hello").stdout == "hello world\n"
    assert ctr.exec("cat", "/etc/conf").stdout == "conf\n"
    assert "ro" in mount_options(ctr, "/etc/conf")
    assert missing.is_dir() and "/made" in mountpoints(ctr)
    # the planted symlink resolved inside the rootfs, before and after pivot_root alike
    assert ctr.exec("cat", f"/tmp/{PREFIX}-pre/hello").stdout == "hello world\n"
    assert not os.path.lexists(f"/tmp/{PREFIX}-pre")
    assert host_mounts_of(src, f"/tmp/{PREFIX}-pre") == []

    # idempotent: again on the running container, nothing stacks
    c = find(ctr.id, Engine.RUNC, runtime_root)
    with c.init_process() as pidfd:
        lines = path.reapply(c, pidfd, Record(c.id, paths=specs))
    assert all("already in container" in line for line in lines), lines
    points = mountpoints(ctr)
    assert points.count("/data") == 1 and points.count("/etc/conf") == 1

    # and at the next start
    ctr.restart()
    assert ctr.exec("cat", "/data/hello").stdout == "hello world\n"
    assert mountpoints(ctr).count("/data") == 1


@pytest.fixture
def no_mount_setattr(monkeypatch):
    calls: list[Any] = []

    def enosys(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS), "mount_setattr")

    monkeypatch.setattr(syscalls, "mount_setattr", enosys)
    return calls


@pytest.mark.parametrize("opts, visible", [("ro,rslave", True), ("ro,private", False),
                                           ("rw,rprivate", False)])
def test_without_mount_setattr(make_container, runtime_root, shared_src, no_mount_setattr,
                               opts, visible):
    ctr = make_container("plegacy")
    c = find(ctr.id, Engine.RUNC, runtime_root)
    record = Record(c.id)
    spec = PathSpec.parse(f"{shared_src}:/data:{opts}")
    lines = path.add_paths(c, record, [spec], ref="L")
    assert no_mount_setattr, "the fallback was not taken"
    assert lines == [f"Add path ({shared_src}) to container(L,/data) done."]
    options = mount_options(ctr, "/data")
    assert ("ro" in options) is spec.readonly
    assert "nosuid" in options and "nodev" in options  # kept through the ro remount
    if spec.readonly:
        res = ctr.sh("echo x > /data/new", check=False)
        assert res.returncode != 0 and "Read-only file system" in res.stderr
    sub = shared_src / "sub"
    run(["mount", "-t", "tmpfs", f"{PREFIX}-late", str(sub)])
    try:
        (sub / "late").write_text("late\n")
        assert (ctr.exec("cat", "/data/sub/late", check=False).returncode == 0) is visible
    finally:
        run(["umount", str(sub)])
    path.remove_paths(c, record, [spec], ref="L")
    assert "/data" not in mountpoints(ctr) and record.paths == []


def test_remove_rollback_remounts(make_container, runtime_root, src, tmp_path, monkeypatch):
    """remove-path of two where the second fails: the first is mounted again."""
    ctr = make_container("prmroll")
    c = find(ctr.id, Engine.RUNC, runtime_root)
    record = Record(c.id)
    specs = [PathSpec.parse(f"{src}:/one"), PathSpec.parse(f"{src}:/two")]
    path.add_paths(c, record, specs, ref="L")
    saved = list(record.paths)
    from syscontainer_tools import mounts

    real = mounts.unbind_from

    def flaky(pidfd: int, pid: int, bind: Any, **kw: Any) -> bool:
        if bind.target == "/two":
            raise OSError(errno.EBUSY, "busy", "/two")
        return real(pidfd, pid, bind, **kw)

    monkeypatch.setattr(mounts, "unbind_from", flaky)
    with pytest.raises(OSError):
        path.remove_paths(c, record, specs, ref="L")
    assert record.paths == saved
    assert ctr.exec("cat", "/one/hello").stdout == "hello world\n"
    assert mountpoints(ctr).count("/one") == 1


def test_shared_src_is_on_its_own_tmpfs(shared_src: Path):
    # guards the propagation tests above: the host's / may be private
    with open("/proc/self/mountinfo") as f:
        line = next(x for x in f if x.split()[4] == str(shared_src.parent))
    assert "shared:" in line
