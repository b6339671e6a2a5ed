"""crun on pure v2 (it refuses the native host's hybrid layout) and podman
with its default runtime crun: lookup, add-device, add-path, and restart
survival through podman's hooks.d."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainer_tools.engines import Engine, find
from tests.system.conftest import PODMAN_CGROUP_PARENT, PREFIX, Ctr, make_rootfs, run, write_config
from tests.vm.conftest import PURE_V2, TIME_SCALE, need
from tests.vm.helpers import HOOKS, disk

pytestmark = [pytest.mark.system,
              pytest.mark.skipif(not PURE_V2, reason="crun refuses the hybrid layout: pure v2 only")]


def cli(engine: str, root: str | None, state_dir: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SYSCONTAINER_ENGINE=engine, SYSCONTAINER_STATE_DIR=state_dir)
    if root:
        env["SYSCONTAINER_RUNTIME_ROOT"] = root
    proc = run([sys.executable, "-m", "syscontainer_tools", *args], env=env, check=False)
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc


@pytest.fixture
def crun_ctr(tmp_path: Path) -> Iterator[Ctr]:
    need("crun")
    root = f"/run/{PREFIX}-crun"
    os.makedirs(root, exist_ok=True)
    bundle = tmp_path / f"{PREFIX}-cr"
    ctr = Ctr(f"{PREFIX}-cr", bundle, root, runtime="crun")
    try:
        make_rootfs(bundle / "rootfs")
        write_config(bundle)
        ctr.start()
        yield ctr
    finally:
        ctr.stop()   # (kill and delete: harmless when the start failed)
        shutil.rmtree(root, ignore_errors=True)


def test_crun_found_and_changed(crun_ctr: Ctr, state_dir: str, tmp_path: Path) -> None:
    c = find(crun_ctr.id, Engine.CRUN, runtime_root=crun_ctr.root)
    assert c.id == crun_ctr.id and c.running and c.pid == crun_ctr.pid
    _, parts = disk()
    cli("crun", crun_ctr.root, state_dir, "add-device", crun_ctr.id, f"{parts[0]}:/dev/vdb1:r")
    assert crun_ctr.sh("dd if=/dev/vdb1 of=/dev/null bs=4096 count=1",
                       check=False).returncode == 0
    share = tmp_path / "share"
    share.mkdir()
    (share / "f").write_text("via crun\n")
    cli("crun", crun_ctr.root, state_dir, "add-path", crun_ctr.id, f"{share}:/mnt/share")
    assert crun_ctr.exec("cat", "/mnt/share/f").stdout == "via crun\n"
    rows = json.loads(cli("crun", crun_ctr.root, state_dir, "list-device", crun_ctr.id,
                          "--format", "json").stdout)
    assert [r["PathInContainer"] for r in rows] == ["/dev/vdb1"]


PODMAN = ["podman", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]


@pytest.fixture
def podman_ctr(tmp_path: Path, state_dir: str) -> Iterator[tuple[str, Path]]:
    need("podman")
    hooks_d = tmp_path / "hooks.d"
    hooks_d.mkdir()
    # one file per stage, each naming its stage (as install-hooks --engine podman writes)
    for stage in ("prestart", "poststop"):
        (hooks_d / f"{PREFIX}-{stage}.json").write_text(json.dumps({
            "version": "1.0.0",
            "hook": {"path": HOOKS, "args": ["syscontainer-hooks", "--state", stage,
                                             "--state-dir", state_dir],
                     "timeout": int(60 * TIME_SCALE)},
            "when": {"always": True}, "stages": [stage]}))
    rootfs = tmp_path / "rootfs"
    make_rootfs(rootfs)
    name = f"{PREFIX}-pm"
    # under the session's own cgroup parent (removed at the end), not podman's
    # shared libpod_parent, where conmon's cgroup would stay behind
    proc = run([*PODMAN, "--hooks-dir", str(hooks_d), "run", "-d", "--name", name,
                "--cgroup-parent", PODMAN_CGROUP_PARENT, "--network", "none",
                "--rootfs", str(rootfs), "/bin/sleep", "100000"],
               check=False)
    assert proc.returncode == 0, proc.stderr
    try:
        yield name, hooks_d
    finally:
        run([*PODMAN, "rm", "-f", "-t", "0", name], check=False)


def test_podman_with_crun(podman_ctr: tuple[str, Path], state_dir: str, tmp_path: Path) -> None:
    name, hooks_d = podman_ctr
    info = json.loads(run(["podman", "inspect", name]).stdout)[0]
    assert info["OCIRuntime"] == "crun"
    c = find(name, Engine.PODMAN)
    assert c.name == name and c.running
    _, parts = disk()
    cli("podman", None, state_dir, "add-device", name, f"{parts[0]}:/dev/vdb1:r")
    share = tmp_path / "share"
    share.mkdir()
    (share / "f").write_text("via podman\n")
    cli("podman", None, state_dir, "add-path", name, f"{share}:/mnt/share")

    def inside(*cmd: str) -> subprocess.CompletedProcess[str]:
        return run(["podman", "exec", name, *cmd], check=False)

    assert inside("dd", "if=/dev/vdb1", "of=/dev/null", "bs=4096", "count=1").returncode == 0
    assert inside("cat", "/mnt/share/f").stdout == "via podman\n"
    # a restart: the prestart hook from hooks.d brings both back
    proc = run([*PODMAN, "--hooks-dir", str(hooks_d), "restart", "-t", "0", name], check=False)
    assert proc.returncode == 0, proc.stderr
    assert inside("dd", "if=/dev/vdb1", "of=/dev/null", "bs=4096", "count=1").returncode == 0
    assert inside("cat", "/mnt/share/f").stdout == "via podman\n"
