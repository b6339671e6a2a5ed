"""containerd for real: a private containerd (Debian's package) started by the
test with its own root, state and socket; an image imported from the test
rootfs; containers run with ``ctr run``, with plain runc and with the runtime
wrapper as the runc shim's binary (``--runc-binary``, what ``BinaryName``
does for Kubernetes' CRI).  The wrapper takes its settings from the runc.json
that ``install-hooks --engine containerd`` writes.

Skipped where containerd is not installed.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from syscontainer_tools import wiring
from syscontainer_tools.engines import Engine, find
from syscontainer_tools.errors import NotFound, ToolError

from .conftest import PREFIX, cgroup_mounts, remove_cgroup, run
from .daemons import Containerd, SharedCgroups, have
from .nethelpers import addrs, delete_links, in_ctr, make_bridge, routes

pytestmark = pytest.mark.system

BIN = Path(sys.executable).parent
OCTET = int(PREFIX[-2:], 16)
NET = f"10.219.{OCTET}"
BRIDGE = f"{PREFIX}C"


@dataclass
class Kt:
    daemon: Containerd
    id: str

    @property
    def pid(self) -> int:
        for line in self.daemon.ctr("tasks", "ls").stdout.splitlines()[1:]:
            parts = line.split()
            if parts and parts[0] == self.id:
                return int(parts[1])
        raise AssertionError(f"{self.id} has no task")

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.daemon.ctr("tasks", "exec", "--exec-id", secrets.token_hex(4), self.id,
                               "/bin/sh", "-c", script, check=check)

    def restart(self) -> None:
        """Kill and delete the task (poststop), start a new one (create: the wrapper)."""
        self.daemon.ctr("tasks", "delete", "--force", self.id)
        self.daemon.ctr("tasks", "start", "-d", "--null-io", self.id)


@dataclass
class Env:
    daemon: Containerd
    state_dir: str
    image: str
    made: list[str] = field(default_factory=list)

    def container(self, suffix: str, *, wrapped: bool, start: bool = True) -> Kt:
        cid = f"{PREFIX}-{suffix}"
        binary = ["--runc-binary", str(BIN / "syscontainer-runc")] if wrapped else []
        # runc's state under the test's own directory, not /run/containerd/runc
        self.daemon.ctr("run", "-d", "--null-io", "--runc-root", f"{self.daemon.run_dir}/runc",
                        *binary, self.image, cid, "/bin/sleep", "1000000")
        self.made.append(cid)
        kt = Kt(self.daemon, cid)
        if not start:
            self.daemon.ctr("tasks", "delete", "--force", cid)
        return kt

    def tool(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONTAINERD_")}
        proc = run([sys.executable, "-m", "syscontainer_tools", *args],
                   env={**env, **self.daemon.env, "SYSCONTAINER_ENGINE": "containerd",
                        "SYSCONTAINER_STATE_DIR": self.state_dir}, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
        return proc


@pytest.fixture(scope="module")
def ctd_env(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path) -> Iterator[Env]:
    missing = have("containerd", "ctr", "containerd-shim-runc-v2", "runc")
    if missing:
        pytest.skip(f"{missing} is not installed (Debian: containerd)")
    top = tmp_path_factory.mktemp("containerd")
    state_dir = str(top / "state")
    proc = run([str(BIN / "syscontainer-tools"), "install-hooks", "--engine", "containerd",
                "--dest", str(top), "--bindir", str(BIN), "--no-lxcfs", "--log-dir", str(top),
                "--hook-state-dir", state_dir])
    assert "BinaryName" in proc.stdout
    daemon = Containerd(top / "d", f"/run/{PREFIX}-containerd")
    try:
        daemon.start(env={"SYSCONTAINER_RUNC_CONFIG": str(top / "runc.json")})
        env = Env(daemon, state_dir, daemon.import_image(rootfs_template))
        make_bridge(BRIDGE, f"{NET}.1/24")
        yield env
    finally:
        delete_links(BRIDGE)
        daemon.stop()


def test_found_by_id_and_prefix_in_the_default_namespaces(ctd_env: Env,
                                                          monkeypatch: pytest.MonkeyPatch):
    k = ctd_env.container("kt-find", wrapped=False)
    monkeypatch.setenv("CONTAINERD_ADDRESS", ctd_env.daemon.sock)
    monkeypatch.delenv("CONTAINERD_NAMESPACE", raising=False)
    c = find(k.id, Engine.CONTAINERD)
    assert (c.id, c.engine, c.running, c.pid) == (k.id, "containerd", True, k.pid)
    assert find(k.id[:len(PREFIX) + 5], Engine.CONTAINERD).id == k.id
    assert find(k.id, Engine.AUTO).engine == "containerd"
    # the bundle is the task's, under this daemon's own state directory
    assert c.bundle == f"{ctd_env.daemon.run_dir}/state/io.containerd.runtime.v2.task/default/{k.id}"
    assert c.spec["process"]["args"] == ["/bin/sleep", "1000000"]
    monkeypatch.setenv("CONTAINERD_NAMESPACE", "k8s.io")
    with pytest.raises(NotFound):
        find(k.id, Engine.CONTAINERD)
    monkeypatch.setenv("CONTAINERD_ADDRESS", f"/run/{PREFIX}-no-containerd.sock")
    with pytest.raises(ToolError, match="not listening"):
        find(k.id, Engine.CONTAINERD)


def _add_all(env: Env, k: Kt, loop, share: Path) -> None:
    env.tool("add-device", k.id, f"{loop.path}:/dev/{PREFIX}disk")
    env.tool("add-path", k.id, f"{share}:/mnt/share")
    env.tool("add-nic", k.id, "--type", "veth", "--name", f"{PREFIX}ct:eth1",
             "--ip", f"{NET}.10/24", "--bridge", BRIDGE)
    env.tool("add-route", k.id, f'[{{"dest":"10.220.{OCTET}.0/24","gw":"{NET}.1"}}]')


def _check_all(k: Kt, loop) -> None:
    # read through the init's root (its mount namespace) from the host: ctr's
    # exec output is not what is tested here; exec is used for exit statuses
    root = f"/proc/{k.pid}/root"
    st = os.stat(f"{root}/dev/{PREFIX}disk")
    assert stat.S_ISBLK(st.st_mode)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == loop.majmin
    assert k.sh(f"dd if=/dev/{PREFIX}disk of=/dev/null bs=512 count=1").returncode == 0
    assert Path(f"{root}/mnt/share/f").read_text() == "from host\n"
    with in_ctr(k) as ipr:  # type: ignore[arg-type]
        assert addrs(ipr, "eth1") == {f"{NET}.10/24"}
        assert (f"10.220.{OCTET}.0/24", f"{NET}.1", "eth1") in routes(ipr, socket.AF_INET)


def test_live_changes_come_back_after_restart_through_the_wrapper(ctd_env: Env, make_loop,
                                                                  tmp_path):
    k = ctd_env.container("kt-wrap", wrapped=True)
    loop = make_loop()
    share = tmp_path / "share"
    share.mkdir()
    (share / "f").write_text("from host\n")
    _add_all(ctd_env, k, loop, share)
    _check_all(k, loop)
    old = k.pid
    k.restart()
    assert k.pid != old
    _check_all(k, loop)
    cfg = json.loads(Path(f"{ctd_env.daemon.run_dir}/state/io.containerd.runtime.v2.task/"
                          f"default/{k.id}/config.json").read_text())
    assert wiring.hooked_stages(cfg) == {"prestart", "poststop"}


def test_stopped_container_says_whether_its_runtime_will_apply(ctd_env: Env, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    (share / "f").write_text("from host\n")
    plain = ctd_env.container("kt-plain", wrapped=False, start=False)
    out = ctd_env.tool("add-path", plain.id, f"{share}:/mnt/share")
    assert "NOT applied when it starts" in out.stderr and "--runc-binary" in out.stderr
    wired = ctd_env.container("kt-wired", wrapped=True, start=False)
    out = ctd_env.tool("add-path", wired.id, f"{share}:/mnt/share")
    assert "the change is saved and applied when it starts" in out.stderr
    ctd_env.daemon.ctr("tasks", "start", "-d", "--null-io", wired.id)
    assert Path(f"/proc/{wired.pid}/root/mnt/share/f").read_text() == "from host\n"


def test_daemon_cgroups_made_during_a_test_are_removed_and_older_ones_kept():
    """What the daemons' teardown does with the fixed-name cgroups dockerd
    and containerd make (``docker``, ``default``): shown here on names of the
    session, in every hierarchy of this host."""
    new, old = f"{PREFIX}-cgnew", f"{PREFIX}-cgold"
    mounts = cgroup_mounts()
    try:
        for m in mounts:
            os.mkdir(f"{m}/{old}")
        shared = SharedCgroups((new, old))
        assert shared.before == {old}
        for m in mounts:
            os.makedirs(f"{m}/{new}/ctr1")
            os.mkdir(f"{m}/{old}/ctr2")
        shared.tidy()
        for m in mounts:
            assert not os.path.exists(f"{m}/{new}")
            assert os.path.isdir(f"{m}/{old}")   # not ours to remove
    finally:
        remove_cgroup(f"/{new}")
        remove_cgroup(f"/{old}")
