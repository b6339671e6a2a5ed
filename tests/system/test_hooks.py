"""syscontainer-hooks wired into real runc containers' config.json.

runc runs prestart hooks with the OCI state on stdin (before pivot_root, in
status "creating") and poststop hooks at ``runc delete``.  Everything saved
with the CLI must be back after a restart (kill, delete, run again with the
same id and bundle), checked from inside.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import PODMAN_CGROUP_PARENT, PREFIX, run
from .waits import polls, scaled

pytestmark = pytest.mark.system

BINDIR = Path(sys.executable).parent
HOOK = str(BINDIR / "syscontainer-hooks")


def hooks_for(state_dir: str, env: list[str] | None = None) -> dict:
    def entry(stage: str) -> dict:
        h = {"path": HOOK, "args": ["syscontainer-hooks", "--state", stage,
                                    "--state-dir", state_dir],
             "timeout": int(scaled(60))}  # (a guest under emulation is slow)
        if env:
            h["env"] = env
        return h

    return {"prestart": [entry("prestart")], "poststop": [entry("poststop")]}


def oci_state(ctr) -> str:
    st = ctr.state()
    return json.dumps({"ociVersion": "1.0.2", "id": st["id"], "pid": st["pid"],
                       "bundle": st["bundle"], "status": st["status"]})


def call_hook(stage: str, state: str, state_dir: str) -> subprocess.CompletedProcess[str]:
    return run([HOOK, "--state", stage, "--state-dir", state_dir], input=state, check=False)


def test_nothing_saved_starts_and_stops(make_container, state_dir):
    ctr = make_container("hk-empty", hooks=hooks_for(state_dir))
    assert ctr.exec("echo", "up").stdout == "up\n"
    ctr.restart()
    assert ctr.state()["status"] == "running"


def test_saved_paths_come_back_after_restart(make_container, state_dir, tool, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    (share / "f").write_text("from host\n")
    ctr = make_container("hk-path", hooks=hooks_for(state_dir))
    tool("add-path", ctr.id, f"{share}:/mnt/share:ro", check=True)
    old_pid = ctr.pid
    ctr.restart()
    assert ctr.pid != old_pid
    assert ctr.exec("cat", "/mnt/share/f").stdout == "from host\n"
    assert ctr.sh("touch /mnt/share/x", check=False).returncode != 0  # still read-only
    assert not (share / "x").exists()


def test_saved_device_comes_back_and_missing_one_fails(make_container, make_loop,
                                                             state_dir, tool):
    loop = make_loop(8)
    ctr = make_container("hk-dev", hooks=hooks_for(state_dir))
    tool("add-device", "--device-read-bps", f"{loop.path}:1m", ctr.id,
         f"{loop.path}:/dev/disk/data:rw", check=True)
    ctr.restart()
    major, minor = loop.majmin
    out = ctr.exec("stat", "-c", "%F %t:%T", "/dev/disk/data").stdout.split()
    assert out[-1] == f"{major:x}:{minor:x}" and out[0] == "block"
    assert ctr.exec("dd", "if=/dev/disk/data", "of=/dev/null", "bs=4k",
                    "count=1").returncode == 0
    blkio = Path(f"/sys/fs/cgroup/blkio/{ctr.id}/blkio.throttle.read_bps_device").read_text()
    assert f"{major}:{minor} 1048576" in blkio
    # a saved device whose host node went away fails the next start, naming it
    disk = make_loop(16, partitions=1)
    part = disk.partitions[0]
    tool("add-device", ctr.id, f"{part}:/dev/part1", check=True)
    ctr.stop()
    run(["partx", "-d", disk.path])
    assert not os.path.exists(part)
    with pytest.raises(AssertionError) as err:
        ctr.start()
    assert part in str(err.value)


def test_renumbered_host_device_is_followed(make_container, make_loop, state_dir, tool,
                                            tmp_path):
    disk = make_loop(16, partitions=1)
    part = disk.partitions[0]
    before = os.stat(part).st_rdev
    log = tmp_path / "hook.log"
    hooks = hooks_for(state_dir)
    hooks["prestart"][0]["args"] += ["--log", str(log)]
    ctr = make_container("hk-renum", hooks=hooks)
    tool("add-device", ctr.id, f"{part}:/dev/part1", check=True)
    ctr.stop()
    run(["partx", "-d", disk.path])
    other = make_loop(16, partitions=1)  # takes the freed partition number
    run(["partx", "-a", disk.path])
    for _ in polls(2.5):
        if os.path.exists(part):
            break
        time.sleep(0.05)
    after = os.stat(part).st_rdev
    if after == before:
        pytest.skip("the kernel gave the partition its old number back")
    assert os.stat(other.partitions[0]).st_rdev == before
    ctr.start()
    out = ctr.exec("stat", "-c", "%t:%T", "/dev/part1").stdout.strip()
    assert out == f"{os.major(after):x}:{os.minor(after):x}"
    saved = json.loads(Path(f"{state_dir}/{ctr.id}/state.json").read_text())["devices"]
    assert [(d["major"], d["minor"]) for d in saved] == [(os.major(after), os.minor(after))]
    new, old = (f"b {os.major(n)}:{os.minor(n)}" for n in (after, before))
    assert f"device {part} is now {new} (saved as {old})" in log.read_text()


def test_hook_run_twice_is_idempotent(make_container, state_dir, tool, tmp_path):
    share = tmp_path / "share2"
    share.mkdir()
    ctr = make_container("hk-twice", hooks=hooks_for(state_dir))
    tool("add-path", ctr.id, f"{share}:/mnt/s2", check=True)
    for _ in range(2):
        r = call_hook("prestart", oci_state(ctr), state_dir)
        assert r.returncode == 0, r.stderr
    mounts = ctr.exec("cat", "/proc/self/mountinfo").stdout
    assert sum(1 for line in mounts.splitlines() if line.split()[4] == "/mnt/s2") == 1


def test_corrupt_state_fails_the_start_clearly(make_container, state_dir):
    ctr = make_container("hk-bad", hooks=hooks_for(state_dir), start=False)
    os.makedirs(f"{state_dir}/{ctr.id}")
    Path(f"{state_dir}/{ctr.id}/state.json").write_text("{not json")
    with pytest.raises(AssertionError) as err:
        ctr.start()
    assert "not valid JSON" in str(err.value)
    r = call_hook("prestart", json.dumps({"id": ctr.id, "pid": os.getpid(),
                                          "bundle": str(ctr.bundle)}), state_dir)
    assert r.returncode == 1 and r.stderr.startswith("syscontainer-hooks prestart: ")
    assert "Traceback" not in r.stderr


def test_missing_bundle_and_bad_stdin(state_dir):
    r = call_hook("prestart", json.dumps({"id": f"{PREFIX}-x", "pid": 1,
                                          "bundle": "/nonexistent-bundle"}), state_dir)
    assert r.returncode == 1 and "has no config.json" in r.stderr
    for bad in ("", "garbage", "{}"):
        r = call_hook("prestart", bad, state_dir)
        assert r.returncode == 1 and "OCI state" in r.stderr and "Traceback" not in r.stderr
    r = run([HOOK, "--state", "bogus"], input="{}", check=False)
    assert r.returncode == 2


def test_kernel_modules_drive_modprobe(make_container, state_dir, tmp_path):
    # This kernel cannot load modules (no /proc/modules), so a recording
    # modprobe placed first on the hook's PATH stands in for the real one.
    fake = tmp_path / "fakebin"
    fake.mkdir()
    record = tmp_path / "modprobe.args"
    (fake / "modprobe").write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    (fake / "modprobe").chmod(0o755)
    env = [f"PATH={fake}:/usr/sbin:/usr/bin:/sbin:/bin"]
    make_container("hk-mod", hooks=hooks_for(state_dir, env),
                   env=["KERNEL_MODULES=ip_vs,br_netfilter"])
    assert record.read_text() == "-a -- ip_vs br_netfilter\n"

    with pytest.raises(AssertionError) as err:
        make_container("hk-mod-bad", hooks=hooks_for(state_dir, env),
                       env=["KERNEL_MODULES=ip_vs,-v;reboot"])
    assert "invalid module name" in str(err.value)
    assert record.read_text() == "-a -- ip_vs br_netfilter\n"  # nothing more was run

    (fake / "modprobe").write_text("#!/bin/sh\necho \"modprobe: FATAL: Module $3 not found\" >&2\n"
                                   "exit 1\n")
    with pytest.raises(AssertionError) as err:
        make_container("hk-mod-unknown", hooks=hooks_for(state_dir, env),
                       env=["KERNEL_MODULES=nosuchmod"])
    assert "Module nosuchmod not found" in str(err.value)


def test_podman_hooks_d(tmp_path, state_dir, rootfs_template):
    """podman reads the hooks.d files install-hooks writes; a saved path comes
    back after ``podman restart`` and is found through the podman adapter."""
    import shutil

    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    hooks_d = tmp_path / "hooks.d"
    r = run([str(BINDIR / "syscontainer-tools"), "install-hooks", "--engine", "podman",
             "--dest", str(hooks_d), "--bindir", str(BINDIR), "--no-lxcfs", "--log-dir", "",
             "--hook-state-dir", state_dir], check=False)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in hooks_d.iterdir()) == [
        "50-syscontainer-hooks-poststop.json", "50-syscontainer-hooks-prestart.json"]
    rootfs = tmp_path / "rootfs"
    shutil.copytree(rootfs_template, rootfs, symlinks=True)
    name = f"{PREFIX}-pmhook"
    podman = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs",
              "--hooks-dir", str(hooks_d)]
    r = run([*podman, "run", "-d", "--name", name, "--cgroup-parent", PODMAN_CGROUP_PARENT,
             "--network", "none", "--ulimit",
             "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--rootfs", str(rootfs),
             "/bin/sleep", "100000"], check=False)
    if r.returncode != 0:
        pytest.skip(f"podman cannot start a container here: {r.stderr.strip()}")
    try:
        share = tmp_path / "share"
        share.mkdir()
        (share / "f").write_text("via podman\n")
        env = dict(os.environ, SYSCONTAINER_STATE_DIR=state_dir)
        r = run([str(BINDIR / "syscontainer-tools"), "--engine", "podman", "add-path", name,
                 f"{share}:/mnt/p"], env=env, check=False)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"Add path ({share}) to container({name},/mnt/p) done."
        run([*podman, "restart", "-t", "0", name])
        out = run([*podman, "exec", name, "cat", "/mnt/p/f"], check=False)
        assert out.stdout == "via podman\n", out.stderr
    finally:
        run([*podman, "rm", "-f", "-t", "0", name], check=False)
