"""Private container daemons for the engine tests: a dockerd and a containerd
from Debian's docker.io and containerd packages, started and stopped by the
tests themselves.

Each runs with its own sockets, state and data directories (all named with
the session PREFIX), touches no network of the host (dockerd: no bridge, no
iptables, no IP forwarding or masquerading) and never talks to a daemon that
was already running.  The one shared place is containerd's shim socket
directory, /run/containerd/s, where each shim makes a socket named by a hash
of its own daemon's address and removes it when it exits (the directories
there that a test's daemon made are removed again when they are empty).
dockerd's trust key goes to the test's directory, not /etc/docker.
Stopping removes every container, the daemon, its mounts and its
directories.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

from syscontainer_tools import syscalls

from .conftest import PREFIX, cgroup_mounts, remove_cgroup, run
from .waits import scaled

IMAGE = f"docker.io/library/{PREFIX}-busybox:1"
# where containerd's shims and ctr put things whatever the daemon's own state dir
SHARED = ("/run/containerd", "/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc")


# where dockerd puts its plugin sockets whatever its --exec-root
DOCKER_SHARED = ("/run/docker", "/run/docker/plugins")


class SharedDirs:
    """Remembers which of the shared directories ``dirs`` existed; ``tidy()``
    removes the others again if they are empty."""

    def __init__(self, dirs: tuple[str, ...] = SHARED) -> None:
        self.dirs = dirs
        self.before = {d for d in dirs if os.path.exists(d)}

    def tidy(self) -> None:
        for d in sorted(set(self.dirs) - self.before, key=len, reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(d)


class SharedCgroups:
    """Remembers which of the top-level cgroups ``names`` existed in any
    hierarchy before a daemon started (dockerd's cgroupfs parent ``docker``,
    containerd's per-namespace ``default``, ...: fixed names, not the
    session's); ``tidy()`` removes the others again, with everything below
    them that is empty.  One another daemon is using (tasks in it) stays."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.before = {name for name in names
                       if any(os.path.isdir(os.path.join(m, name)) for m in cgroup_mounts())}

    def tidy(self) -> None:
        for name in self.names:
            if name not in self.before:
                remove_cgroup(f"/{name}")


def have(*programs: str) -> str | None:
    """The first of ``programs`` that is missing, or None."""
    return next((p for p in programs if not shutil.which(p)), None)


def rootfs_tar(rootfs: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(str(entry), arcname=entry.name)
    return buf.getvalue()


def docker_archive(rootfs: Path, dest: Path, ref: str = IMAGE) -> Path:
    """A one-layer image of ``rootfs`` in the docker-archive format that
    ``ctr images import`` (and ``docker load``) read."""
    layer = rootfs_tar(rootfs)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ref],
                            "Layers": ["layer/layer.tar"]}]).encode()
    with tarfile.open(dest, "w") as tar:
        for name, data in (("layer/layer.tar", layer), (config_name, config),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def tail(log: Path, chars: int = 3000) -> str:
    """The end of a daemon's log, for a failure message."""
    try:
        text = log.read_text(errors="replace")
    except OSError as e:
        return f"(no log: {e})"
    return text[-chars:]


def checked(proc: subprocess.CompletedProcess[str], *logs: Path) -> subprocess.CompletedProcess[str]:
    """``proc`` if it succeeded; else an AssertionError with its command,
    status, stdout and stderr and the end of each daemon log in ``logs``
    (a CalledProcessError shows none of them)."""
    if proc.returncode == 0:
        return proc
    parts = [f"{' '.join(map(str, proc.args))} exited {proc.returncode}",
             f"stdout: {proc.stdout.strip()}", f"stderr: {proc.stderr.strip()}"]
    parts += [f"--- {log.name} (end):\n{tail(log)}" for log in logs]
    raise AssertionError("\n".join(parts))


def wait_for(path: str, proc: subprocess.Popen[bytes], log: Path, what: str,
             timeout: float = 60) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come up: {tail(log)}")
        time.sleep(0.1)


def unmount_under(*dirs: str) -> None:
    """Lazily unmount everything mounted below ``dirs`` (deepest first)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
    for point in sorted(points, key=len, reverse=True):
        if any(point == d or point.startswith(d.rstrip("/") + "/") for d in dirs):
            with contextlib.suppress(OSError):
                syscalls.umount(point, syscalls.MNT_DETACH)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(scaled(30))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(scaled(10))


class Dockerd:
    """``dockerd`` with its own data root, exec root, socket and pidfile, on a
    containerd of its own started first (``--containerd``): dockerd gives the
    containerd it would start itself a fixed time to come up, which a guest
    under emulation does not meet."""

    def __init__(self, top: Path, run_dir: str, daemon_json: dict[str, object]) -> None:
        top.mkdir(parents=True, exist_ok=True)
        self.top = top                       # data (disk)
        self.run_dir = run_dir               # exec root and sockets (/run)
        self.sock = f"{run_dir}/docker.sock"
        self.host = f"unix://{self.sock}"
        self.log = top / "dockerd.log"
        self.config = top / "daemon.json"
        self.config.write_text(json.dumps({"deprecated-key-path": str(top / "key.json"),
                                           **daemon_json}))
        self.proc: subprocess.Popen[bytes] | None = None
        self.shared = SharedDirs(DOCKER_SHARED)
        self.cgroups = SharedCgroups(("docker",))
        self.containerd = Containerd(top / "containerd", f"{run_dir}/containerd")

    @property
    def env(self) -> dict[str, str]:
        # a config dir of our own: no context or credentials of the host's user
        return {"DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.top / "cli")}

    def start(self) -> None:
        os.makedirs(self.run_dir, exist_ok=True)
        (self.top / "cli").mkdir(exist_ok=True)
        self.containerd.start()
        argv = ["dockerd", "--containerd", self.containerd.sock,
                "--config-file", str(self.config), "--data-root",
                str(self.top / "data"), "--exec-root", f"{self.run_dir}/exec",
                "-H", self.host, "--pidfile", f"{self.run_dir}/docker.pid",
                "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false",
                "--ip-masq=false", "--userland-proxy=false"]
        out = open(self.log, "ab")  # noqa: SIM115 - the daemon keeps it
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     start_new_session=True)
        out.close()
        wait_for(self.sock, self.proc, self.log, "dockerd")
        deadline = time.monotonic() + scaled(60)
        while self.docker("info", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"dockerd does not answer: {tail(self.log)}")
            time.sleep(0.2)

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The docker CLI on this daemon; a failure (with ``check``) shows
        its stderr and the ends of dockerd's and containerd's logs."""
        proc = run(["docker", *args], env=dict(os.environ, **self.env), check=False)
        return checked(proc, self.log, self.containerd.log) if check else proc

    def import_image(self, rootfs: Path) -> str:
        tar = self.top / "rootfs.tar"
        tar.write_bytes(rootfs_tar(rootfs))
        self.docker("import", str(tar), IMAGE)
        return IMAGE

    def stop(self) -> None:
        if self.proc is not None:
            ids = self.docker("ps", "-aq", "--no-trunc", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
            stop_process(self.proc)
            self.proc = None
        self.containerd.stop()
        unmount_under(self.run_dir, str(self.top))
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.top, ignore_errors=True)
        self.shared.tidy()
        self.cgroups.tidy()


class Containerd:
    """``containerd`` with its own root, state, sockets and config (the CRI
    plugin, which would set up CNI networking, is disabled)."""

    def __init__(self, top: Path, run_dir: str) -> None:
        top.mkdir(parents=True, exist_ok=True)
        self.top = top
        self.run_dir = run_dir
        self.sock = f"{run_dir}/containerd.sock"
        self.log = top / "containerd.log"
        self.config = top / "config.toml"
        self.config.write_text(
            f'version = 2\nroot = "{top}/root"\nstate = "{run_dir}/state"\n'
            f'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt"]\n'
            f'[grpc]\n  address = "{self.sock}"\n'
            f'[ttrpc]\n  address = "{self.sock}.ttrpc"\n')
        self.proc: subprocess.Popen[bytes] | None = None
        self.shared = SharedDirs()
        # ctr run puts a container's cgroup at /<namespace>/<id>
        self.cgroups = SharedCgroups(("default", "k8s.io"))
        self.namespace = "default"      # a private daemon: its default namespace is ours

    @property
    def env(self) -> dict[str, str]:
        return {"CONTAINERD_ADDRESS": self.sock}

    def start(self, env: dict[str, str] | None = None) -> None:
        """``env``: extra environment of the daemon (its shims and runtimes inherit it)."""
        os.makedirs(self.run_dir, exist_ok=True)
        out = open(self.log, "ab")  # noqa: SIM115 - the daemon keeps it
        self.proc = subprocess.Popen(["containerd", "--config", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     env=dict(os.environ, **(env or {})),
                                     start_new_session=True)
        out.close()
        wait_for(self.sock, self.proc, self.log, "containerd")

    def ctr(self, *args: str, check: bool = True,
            namespace: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = run(["ctr", "--address", self.sock, "-n", namespace or self.namespace, *args],
                   check=False)
        return checked(proc, self.log) if check else proc

    def import_image(self, rootfs: Path, namespace: str | None = None) -> str:
        archive = docker_archive(rootfs, self.top / "image.tar")
        self.ctr("images", "import", str(archive), namespace=namespace)
        return IMAGE

    def remove(self, cid: str, namespace: str | None = None) -> None:
        self.ctr("tasks", "delete", "--force", cid, check=False, namespace=namespace)
        self.ctr("containers", "delete", cid, check=False, namespace=namespace)

    def stop(self) -> None:
        if self.proc is not None:
            namespaces = self.ctr("namespaces", "ls", "-q", check=False).stdout.split()
            for ns in namespaces:
                for cid in self.ctr("containers", "ls", "-q", check=False,
                                    namespace=ns).stdout.split():
                    self.remove(cid, namespace=ns)
            stop_process(self.proc)
            self.proc = None
        unmount_under(self.run_dir, str(self.top))
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.top, ignore_errors=True)
        self.shared.tidy()
        self.cgroups.tidy()
