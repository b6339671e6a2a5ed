"""Fixtures for system tests: real runc containers, loop devices, the CLI.

Everything a test makes carries the session prefix ``sct<hex>`` and is torn
down by a finalizer, also when the test fails.  runc runs with its own
``--root`` so no container of the host is ever seen or touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from syscontainer_tools import cgroup

from .waits import polls

pytestmark = pytest.mark.system

PREFIX = "sct" + secrets.token_hex(3)
REPO = Path(__file__).resolve().parents[2]
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
APPLETS = ("sh", "ls", "cat", "sleep", "dd", "mount", "umount", "ip", "free", "nproc", "stat",
           "echo", "test", "mkdir", "rm", "touch", "readlink", "head", "grep", "ping", "ifconfig",
           "route", "true", "wc", "hostname", "uptime", "top", "ps", "df")


def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    if "input" not in kw:
        kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(argv, check=kw.pop("check", True), **kw)


def copy_libs(binary: str, rootfs: Path) -> None:
    """The loader and libraries of a dynamically linked ``binary``, at their
    paths under ``rootfs`` (openEuler's busybox is dynamic; Debian's
    busybox-static and Fedora's busybox are not: ldd fails, nothing to do)."""
    proc = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return
    for line in proc.stdout.splitlines():
        path = next((w for w in line.split() if w.startswith("/")), None)
        if path:
            target = rootfs / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def make_rootfs(dest: Path) -> None:
    for d in ("bin", "dev", "proc", "sys", "etc", "tmp", "root", "run", "var", "mnt"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    copy_libs(BUSYBOX, dest)
    for applet in APPLETS:
        (dest / "bin" / applet).symlink_to("busybox")
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\n")


@dataclass
class Ctr:
    """One runc container made by a test."""

    id: str
    bundle: Path
    root: str
    runtime: str = "runc"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rootfs(self) -> Path:
        return self.bundle / "rootfs"

    def runc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([self.runtime, "--root", self.root, *args], check=check)

    def start(self) -> None:
        # run -d hands its stdio to the container: a pipe would never reach EOF
        log = self.bundle / "runc-run.log"
        with open(log, "w") as out:
            proc = subprocess.run([self.runtime, "--root", self.root, "run", "-d", self.id],
                                  cwd=self.bundle, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=out, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"runc run {self.id} failed: {log.read_text()}")

    def state(self) -> dict[str, Any]:
        return json.loads(self.runc("state", self.id).stdout)

    @property
    def pid(self) -> int:
        return int(self.state()["pid"])

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.runc("exec", self.id, *cmd, check=check)

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.exec("/bin/sh", "-c", script, check=check)

    def stop(self) -> None:
        """Kill and delete (runs poststop hooks); the bundle stays for a restart."""
        self.runc("kill", self.id, "KILL", check=False)
        for _ in polls(5):
            st = self.runc("state", self.id, check=False)
            if st.returncode != 0 or json.loads(st.stdout)["status"] == "stopped":
                break
            time.sleep(0.05)
        self.runc("delete", "--force", self.id, check=False)

    def restart(self) -> None:
        self.stop()
        self.start()


def limits_unsupported() -> str | None:
    """Why runc cannot set a memory or cpuset limit on this host, if it cannot.

    On a hybrid layout runc's v1 manager sets each limit in its v1 hierarchy;
    Debian 13's kernel (6.12) has no v1 memory or cpuset controller
    (CONFIG_MEMCG_V1, CONFIG_CPUSETS_V1 off), so on that layout runc fails the
    start ("cannot set cpuset limit: container could not join or create
    cgroup").  Such a host runs pure v2, where runc sets both.
    """
    v1 = cgroup.host_mounts().v1
    missing = [c for c in ("memory", "cpuset") if v1 and c not in v1]
    if missing:
        return f"runc cannot set memory or cpuset limits on this layout: no v1 {' or '.join(missing)}"
    return None


def write_config(bundle: Path, *, memory: int | None = None, cpus: str | None = None,
                 netns: bool = True, hooks: dict[str, Any] | None = None,
                 env: list[str] | None = None, args: list[str] | None = None) -> None:
    run(["runc", "spec", "--bundle", str(bundle)])
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args or ["/bin/sleep", "1000000"]
    cfg["process"]["env"] = cfg["process"].get("env", []) + (env or [])
    cfg["root"]["readonly"] = False
    cfg["hostname"] = bundle.name
    res = cfg["linux"].setdefault("resources", {})
    if (memory or cpus) and (why := limits_unsupported()):
        pytest.skip(why)
    if memory:
        res["memory"] = {"limit": memory}
    if cpus:
        res["cpu"] = {"cpus": cpus}
    if not netns:
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                      if n["type"] != "network"]
    if hooks:
        cfg["hooks"] = hooks
    (bundle / "config.json").write_text(json.dumps(cfg, indent=1))


# --- the host before and after the session ---------------------------------------

# podman's cgroupfs parent for every podman container of the session: podman
# puts the container's and conmon's cgroups under it (else under a shared
# libpod_parent/ that podman never removes), and the session removes it
PODMAN_CGROUP_PARENT = f"/{PREFIX}-podman"
# host directories the tools make when they first need them (netns pins, udev
# rules); the session removes those it made, once empty
TOOL_DIRS = ("/run/syscontainer-tools/netns", "/run/syscontainer-tools", "/run/udev/rules.d",
             "/run/netns")
# where a leftover would show: every cgroup hierarchy's top and its libpod_parent/
RUN_DIRS = ("/run", "/run/syscontainer-tools", "/run/syscontainer-tools/netns",
            "/run/udev/rules.d", "/run/netns", "/var/lib/syscontainer-tools")
# names another tool or another pytest session may make meanwhile (the host is
# shared): only names this session could have made count as leftovers
_OURS = ("libpod_parent", "conmon", "libpod-", "syscontainer-tools", "netns", "rules.d",
         "99-syscontainer-tools-", "scdemo")
# fixed names the engine daemons the tests start make (tests/system/daemons.py):
# dockerd's cgroupfs parent and plugin directory /run/docker, containerd's
# per-namespace cgroups and /run/containerd; new ones are leftovers too
DAEMON_NAMES = ("docker", "default", "k8s.io", "containerd")


def cgroup_mounts() -> list[str]:
    """Mount points of every cgroup hierarchy (v1 and v2)."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            if right.split()[0] in ("cgroup", "cgroup2"):
                points.append(left.split()[4])
    return points


def remove_cgroup(path: str) -> None:
    """rmdir cgroup ``path`` (absolute in the hierarchy) and all below it, in
    every hierarchy; a cgroup with tasks stays (and shows as a leftover)."""
    for mnt in cgroup_mounts():
        top = Path(mnt) / path.lstrip("/")
        if not top.is_dir():
            continue
        dirs = [Path(d) for d, _, _ in os.walk(top)]
        for d in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()


def host_entries() -> set[str]:
    entries: set[str] = set()
    for mnt in cgroup_mounts():
        for sub in (mnt, os.path.join(mnt, "libpod_parent")):
            with contextlib.suppress(OSError):
                entries.update(e.path for e in os.scandir(sub) if e.is_dir(follow_symlinks=False))
    for d in RUN_DIRS:
        with contextlib.suppress(OSError):
            entries.update(e.path for e in os.scandir(d))
    return entries


def leftovers(before: set[str], after: set[str]) -> list[str]:
    """Entries new since ``before`` that this session could have made."""
    return sorted(e for e in after - before
                  if PREFIX in e or os.path.basename(e).startswith(_OURS)
                  or os.path.basename(e) in DAEMON_NAMES)


@pytest.fixture(scope="session", autouse=True)
def host_left_clean() -> Iterator[None]:
    """Fails the session if it leaves a cgroup, a /run entry or a rule behind."""
    before = host_entries()
    made = [d for d in TOOL_DIRS if not os.path.lexists(d)]
    yield
    remove_cgroup(PODMAN_CGROUP_PARENT)
    for d in made:  # deepest first
        with contextlib.suppress(OSError):
            os.rmdir(d)
    left = leftovers(before, host_entries())
    assert not left, f"the tests left these behind on the host: {left}"


@pytest.fixture(scope="session")
def runtime_root() -> Iterator[str]:
    root = f"/run/{PREFIX}-runc"
    os.makedirs(root, exist_ok=True)
    yield root
    out = run(["runc", "--root", root, "list", "-q"], check=False).stdout.split()
    for cid in out:
        run(["runc", "--root", root, "delete", "--force", cid], check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("rootfs-template")
    make_rootfs(dest)
    return dest


@pytest.fixture
def make_container(runtime_root: str, rootfs_template: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    made: list[Ctr] = []

    def factory(name: str | None = None, *, start: bool = True, **config: Any) -> Ctr:
        cid = f"{PREFIX}-{name or secrets.token_hex(3)}"
        bundle = tmp_path_factory.mktemp(cid)
        shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
        write_config(bundle, **config)
        ctr = Ctr(cid, bundle, runtime_root)
        made.append(ctr)
        if start:
            ctr.start()
        return ctr

    yield factory
    for ctr in made:
        ctr.stop()


@pytest.fixture(autouse=True)
def udev_rules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Udev rules the tools write for whole disks go to the test's own
    directory, never to the host's /run/udev/rules.d."""
    d = tmp_path / "udev-rules"
    monkeypatch.setenv("SYSCONTAINER_UDEV_RULES_DIR", str(d))
    return d


@pytest.fixture
def state_dir(tmp_path: Path) -> str:
    d = tmp_path / "state"
    d.mkdir()
    return str(d)


@pytest.fixture
def tool(runtime_root: str, state_dir: str) -> Any:
    """Run the real CLI as a subprocess, against the test's runc root and state dir."""

    def call(*args: str, check: bool | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, SYSCONTAINER_ENGINE="runc",
                   SYSCONTAINER_RUNTIME_ROOT=runtime_root, SYSCONTAINER_STATE_DIR=state_dir)
        proc = run([sys.executable, "-m", "syscontainer_tools", *args], env=env, check=False)
        if check is True and proc.returncode != 0:
            raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
        return proc

    return call


@dataclass
class Loop:
    path: str
    backing: Path
    partitions: list[str]

    @property
    def majmin(self) -> tuple[int, int]:
        st = os.stat(self.path)
        return os.major(st.st_rdev), os.minor(st.st_rdev)


@pytest.fixture
def make_loop(tmp_path: Path) -> Iterator[Any]:
    """Loop devices over sparse files; ``partitions=N`` adds N partitions (partx -a)."""
    made: list[Loop] = []

    def factory(size_mb: int = 16, partitions: int = 0) -> Loop:
        backing = tmp_path / f"{PREFIX}-disk{len(made)}.img"
        with open(backing, "wb") as f:
            f.truncate(size_mb << 20)
        if partitions:
            step = (size_mb - 2) // partitions
            table = "label: gpt\n" + "".join(f"size={step}MiB\n" for _ in range(partitions))
            run(["sfdisk", "-q", str(backing)], input=table)
        dev = run(["losetup", "-f", "--show", str(backing)]).stdout.strip()
        loop = Loop(dev, backing, [])
        made.append(loop)
        if partitions:
            run(["partx", "-a", dev])
            loop.partitions = [f"{dev}p{i}" for i in range(1, partitions + 1)]
            for p in loop.partitions:
                for _ in polls(2.5):
                    if os.path.exists(p):
                        break
                    time.sleep(0.05)
        return loop

    yield factory
    for loop in made:
        with contextlib.suppress(Exception):
            if loop.partitions:
                run(["partx", "-d", loop.path], check=False)
            run(["losetup", "-d", loop.path], check=False)
