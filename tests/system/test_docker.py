"""Docker for real: a private dockerd (Debian's docker.io) started by the test,
a busybox image imported from the test rootfs, and containers run with plain
runc and with the runtime wrapper ``syscontainer-runc`` registered in the
daemon.json that ``install-hooks --engine docker`` writes.

Skipped where docker.io is not installed (the VM lane runs it where it is:
cgroup v2 there, v1 here).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from syscontainer_tools import wiring
from syscontainer_tools.engines import Engine, find
from syscontainer_tools.errors import NotFound

from .conftest import PREFIX, run
from .daemons import Dockerd, have, tail
from .nethelpers import addrs, delete_links, in_ctr, make_bridge, routes
from .test_lxcfs_hook import Daemon as Lxcfs
from .test_lxcfs_hook import toolkit

pytestmark = pytest.mark.system

BIN = Path(sys.executable).parent
OCTET = int(PREFIX[-2:], 16)
NET = f"10.217.{OCTET}"
BRIDGE = f"{PREFIX}D"
WRAPPED = ["--runtime", "syscontainer-runc"]


def apparmor_without_parser() -> bool:
    """The kernel has AppArmor on but ``apparmor_parser`` is not installed:
    then dockerd refuses to start any container ("AppArmor enabled on system
    but the docker-default profile could not be loaded").  That is the VM
    lane's guest: Debian's kernel (AppArmor on) under this machine's root
    file system, which has no apparmor package (a Debian host with its
    stock kernel has it: linux-image Recommends it)."""
    try:
        enabled = Path("/sys/module/apparmor/parameters/enabled").read_text().startswith("Y")
    except OSError:
        return False
    return enabled and shutil.which("apparmor_parser") is None


# containers unconfined only where dockerd could not confine them at all
SECURITY = ["--security-opt", "apparmor=unconfined"] if apparmor_without_parser() else []


@dataclass
class Dk:
    """A docker container made by a test."""

    daemon: Dockerd
    name: str
    id: str

    @property
    def pid(self) -> int:
        return int(self.daemon.docker("inspect", "-f", "{{.State.Pid}}", self.id).stdout)

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.daemon.docker("exec", self.id, "/bin/sh", "-c", script, check=check)


@dataclass
class Env:
    daemon: Dockerd
    state_dir: str
    lxcfs_dir: str
    made: list[str]

    def container(self, suffix: str, *args: str, start: bool = True) -> Dk:
        name = f"{PREFIX}-{suffix}"
        verb = "run" if start else "create"
        proc = self.daemon.docker(verb, *(["-d"] if start else []), "--name", name,
                                  "--network", "none", *SECURITY, *args, self.image,
                                  "/bin/sleep", "1000000", check=False)
        if proc.returncode != 0:
            # what the container itself wrote, and how docker saw it end
            logs = self.daemon.docker("logs", name, check=False)
            state = self.daemon.docker("inspect", "-f", "{{json .State}}", name, check=False)
            raise AssertionError(
                f"docker {verb} {name} exited {proc.returncode}: {proc.stderr.strip()}\n"
                f"container stdout: {logs.stdout.strip()}\ncontainer stderr: {logs.stderr.strip()}\n"
                f"state: {state.stdout.strip() or state.stderr.strip()}\n"
                f"--- dockerd.log (end):\n{tail(self.daemon.log)}\n"
                f"--- containerd.log (end):\n{tail(self.daemon.containerd.log)}")
        cid = proc.stdout.strip()
        self.made.append(cid)
        return Dk(self.daemon, name, cid)

    image = ""

    def tool(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        proc = run([sys.executable, "-m", "syscontainer_tools", *args],
                   env={**base, **(self.daemon.env if env is None else env),
                        "SYSCONTAINER_ENGINE": "docker",
                        "SYSCONTAINER_STATE_DIR": self.state_dir}, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
        return proc


@pytest.fixture(scope="module")
def docker_env(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path) -> Iterator[Env]:
    missing = have("dockerd", "docker", "containerd", "containerd-shim-runc-v2", "runc")
    if missing:
        pytest.skip(f"{missing} is not installed (Debian: docker.io)")
    top = tmp_path_factory.mktemp("dockerd")
    state_dir = str(top / "state")
    lxcfs_parent = f"/run/{PREFIX}-dklxcfs"
    lxcfs_dir = f"{lxcfs_parent}/lxcfs"
    # the daemon.json install-hooks writes (runtimes: syscontainer-runc)
    conf = top / "conf"
    proc = run([str(BIN / "syscontainer-tools"), "install-hooks", "--engine", "docker",
                "--dest", str(conf), "--bindir", str(BIN), "--no-lxcfs", "--log-dir",
                str(top), "--hook-state-dir", state_dir, "--lxcfs-dir", lxcfs_dir])
    assert "Install docker runtime syscontainer-runc" in proc.stdout
    daemon = Dockerd(top / "d", f"/run/{PREFIX}-dockerd",
                     json.loads((conf / "daemon.json").read_text()))
    lxcfs = Lxcfs("python", lxcfs_dir, top)
    try:
        assert toolkit(lxcfs_dir, "prestart").returncode == 0
        lxcfs.start()
        daemon.start()
        env = Env(daemon, state_dir, lxcfs_dir, [])
        env.image = daemon.import_image(rootfs_template)
        make_bridge(BRIDGE, f"{NET}.1/24")
        yield env
    finally:
        delete_links(BRIDGE)
        daemon.stop()
        lxcfs.stop()
        run(["umount", "-l", lxcfs_parent], check=False)
        run(["rm", "-rf", lxcfs_parent], check=False)


def test_found_by_name_id_and_prefix_through_a_private_daemon(docker_env: Env,
                                                              monkeypatch: pytest.MonkeyPatch):
    c = docker_env.container("dk-find")
    for k, v in docker_env.daemon.env.items():
        monkeypatch.setenv(k, v)
    found = find(c.name, Engine.DOCKER)
    assert (found.id, found.name, found.engine, found.running) == (c.id, c.name, "docker", True)
    assert find(c.id, Engine.DOCKER).id == c.id
    assert find(c.id[:10], Engine.DOCKER).id == c.id
    assert find(c.name, Engine.AUTO).engine == "docker"
    # the OCI spec comes from where this daemon keeps it (its --exec-root), not a fixed path
    assert found.bundle and found.bundle.startswith(docker_env.daemon.run_dir + "/")
    assert found.spec["process"]["args"] == ["/bin/sleep", "1000000"]
    assert found.runtime == "runc"
    # the daemon runs on this host's cgroup version (v1 here, v2 in the VM
    # lane) with its default driver: cgroupfs, systemd on v2 under systemd
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    driver = "systemd" if v2 and os.path.isdir("/run/systemd/system") else "cgroupfs"
    info = docker_env.daemon.docker("info", "-f", "{{.CgroupVersion}} {{.CgroupDriver}}")
    assert info.stdout.split() == ["2" if v2 else "1", driver]
    with pytest.raises(NotFound):
        find(f"{PREFIX}-nope", Engine.DOCKER)


def test_docker_context_and_config_reach_the_docker_cli(docker_env: Env):
    """A daemon chosen by DOCKER_CONTEXT (in DOCKER_CONFIG) is found: the clean
    subprocess environment passes both through."""
    c = docker_env.container("dk-ctx")
    d = docker_env.daemon
    ctx = f"{PREFIX}-ctx"
    d.docker("context", "create", ctx, "--docker", f"host={d.host}")
    env = {"DOCKER_CONTEXT": ctx, "DOCKER_CONFIG": d.env["DOCKER_CONFIG"]}
    out = docker_env.tool("list-path", c.name, "--format", "json", env=env)
    assert json.loads(out.stdout) == []
    # without them the (absent) default daemon is asked, and it fails
    bad = docker_env.tool("list-path", c.name, check=False,
                          env={"DOCKER_HOST": f"unix:///run/{PREFIX}-none.sock"})
    assert bad.returncode == 1 and bad.stderr.startswith("Failed to")


def _device_majmin(c: Dk, path: str) -> str:
    out = c.sh(f"stat -c '%t:%T' {path}").stdout.strip()
    major, minor = out.split(":")
    return f"{int(major, 16)}:{int(minor, 16)}"


def _add_all(env: Env, c: Dk, loop: Any, share: Path, tag: str) -> None:
    env.tool("add-device", c.name, f"{loop.path}:/dev/{PREFIX}disk")
    env.tool("add-path", c.name, f"{share}:/mnt/share")
    env.tool("add-nic", c.name, "--type", "veth", "--name", f"{PREFIX}{tag}:eth1",
             "--ip", f"{NET}.{10 + len(tag)}/24", "--bridge", BRIDGE)
    env.tool("add-route", c.name, f'[{{"dest":"10.218.{OCTET}.0/24","gw":"{NET}.1"}}]')


def _check_all(c: Dk, loop: Any, tag: str) -> None:
    assert _device_majmin(c, f"/dev/{PREFIX}disk") == "{}:{}".format(*loop.majmin)
    # the devices cgroup lets the container read it
    assert c.sh(f"dd if=/dev/{PREFIX}disk of=/dev/null bs=512 count=1").returncode == 0
    assert c.sh("cat /mnt/share/f").stdout == "from host\n"
    with in_ctr(c) as ipr:  # type: ignore[arg-type]
        assert addrs(ipr, "eth1") == {f"{NET}.{10 + len(tag)}/24"}
        assert (f"10.218.{OCTET}.0/24", f"{NET}.1", "eth1") in routes(ipr, socket.AF_INET)


def test_live_device_path_nic_route_with_plain_runc(docker_env: Env, make_loop, tmp_path):
    c = docker_env.container("dk-live")
    loop = make_loop()
    share = tmp_path / "share"
    share.mkdir()
    (share / "f").write_text("from host\n")
    _add_all(docker_env, c, loop, share, "l")
    _check_all(c, loop, "l")
    docker_env.tool("remove-route", c.name, f'[{{"dest":"10.218.{OCTET}.0/24","gw":"{NET}.1"}}]')
    docker_env.tool("remove-nic", c.name, "--type", "veth", "--name", f"{PREFIX}l:eth1")
    docker_env.tool("remove-path", c.name, f"{share}:/mnt/share")
    docker_env.tool("remove-device", c.name, f"{loop.path}:/dev/{PREFIX}disk")
    assert c.sh(f"test -e /dev/{PREFIX}disk", check=False).returncode == 1
    assert c.sh("test -e /mnt/share/f", check=False).returncode == 1
    with in_ctr(c) as ipr:  # type: ignore[arg-type]
        assert not ipr.link_lookup(ifname="eth1")


def test_everything_comes_back_after_docker_restart_through_the_wrapper(
        docker_env: Env, make_loop, tmp_path, monkeypatch):
    c = docker_env.container("dk-wrap", *WRAPPED, "-m", "64m", "-e", "SYSCONTAINER_LXCFS=1")
    loop = make_loop()
    share = tmp_path / "share"
    share.mkdir()
    (share / "f").write_text("from host\n")
    _add_all(docker_env, c, loop, share, "w")
    _check_all(c, loop, "w")
    assert c.sh("head -1 /proc/meminfo").stdout.split()[1] == "65536"
    docker_env.daemon.docker("restart", "-t", "0", c.id)
    # all of it is back in the new container (new pid, new netns, new /dev)
    _check_all(c, loop, "w")
    assert c.sh("head -1 /proc/meminfo").stdout.split()[1] == "65536"
    # and the bundle docker's runtime got carries the hooks the wrapper added
    for k, v in docker_env.daemon.env.items():
        monkeypatch.setenv(k, v)
    found = find(c.id, Engine.DOCKER)
    assert found.bundle and wiring.runs_poststop(found)
    cfg = json.loads(Path(found.bundle, "config.json").read_text())
    assert {"prestart", "poststop"} <= wiring.hooked_stages(cfg)
    prestart = [h["args"][0] for h in cfg["hooks"]["prestart"]]
    assert prestart[-2:] == ["syscontainer-hooks", "lxcfs-hook"]   # after docker's own


def test_stopped_container_says_whether_its_engine_will_apply(docker_env: Env, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    (share / "f").write_text("from host\n")
    plain = docker_env.container("dk-plain", start=False)
    out = docker_env.tool("add-path", plain.name, f"{share}:/mnt/share")
    assert "NOT applied when it starts" in out.stderr
    assert "docker run --runtime syscontainer-runc" in out.stderr
    wrapped = docker_env.container("dk-wired", *WRAPPED, start=False)
    out = docker_env.tool("add-path", wrapped.name, f"{share}:/mnt/share")
    assert "the change is saved and applied when it starts" in out.stderr
    docker_env.daemon.docker("start", wrapped.id)
    assert wrapped.sh("cat /mnt/share/f").stdout == "from host\n"
    # the plain one, started, indeed does not have it
    docker_env.daemon.docker("start", plain.id)
    assert plain.sh("test -e /mnt/share/f", check=False).returncode == 1
