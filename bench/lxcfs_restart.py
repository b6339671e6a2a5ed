"""Readers in 20 containers while the lxcfs daemon is reloaded, restarted, upgraded, killed.

Run as root:  .venv/bin/python bench/lxcfs_restart.py [--containers 20] [--seconds 6]

For each daemon -- this project's Python lxcfs and C lxcfs 5.0.3
(/usr/bin/lxcfs) -- the bench makes its own lxcfs directory under /run
(``lxcfs-toolkit prestart``), starts N runc containers (busybox, 256 MiB
memory limit) wired with lxcfs-hook, and runs one reader per container: a
host process that joins the container's cgroups and mount namespace, then
loops: open-read-close /proc/meminfo, and re-read (pread at 0) one
/proc/stat it keeps open (a failed kept file is reopened, as a restarted
``top`` would).  Two seconds into each case the daemon is:

  (a) reload   Python: SIGUSR1 (view code reloaded in place);  C: SIGUSR1 (liblxcfs reload)
  (b) restart  Python: a new ``serve`` takes the connection over;
               C: SIGTERM, prestart, start again, ``remount all`` (what its unit + our tools do)
  (c) upgrade  Python: a second copy of the package (on PYTHONPATH) takes over;
               C: as (b) (a package upgrade restarts it)
  (d) SIGKILL  then started again 1 s later (systemd's RestartSec=1);
               Python: resumes the connection its keeper held;
               C: prestart, start, ``remount all``

Printed per case and daemon: reads, errors (meminfo + kept stat), longest
stall (longest time between two successful reads of one reader), and
whether every reader ended with the view (256 MiB MemTotal).  Everything is
removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEMORY = 256 << 20
PREFIX = "sctbench" + secrets.token_hex(2)


def reader(pid: int, seconds: float) -> None:
    """One reader: join container ``pid``'s cgroups and mount namespace, then loop."""
    from lxcfs_toolkit.cgroupreader import Hierarchies, pruned_membership

    hier = Hierarchies.discover()
    member = pruned_membership(Path(f"/proc/{pid}/cgroup").read_text())
    dirs = [mount + member.v1[c] for c, mount in hier.v1.items() if c in member.v1]
    if hier.v2 and member.v2:
        dirs.append(hier.v2 + member.v2)
    for d in set(dirs):
        with contextlib.suppress(OSError):
            Path(d, "cgroup.procs").write_text(str(os.getpid()))
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
    if libc.setns(fd, 0x00020000) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)
    os.chdir("/")
    kept = os.open("/proc/stat", os.O_RDONLY)
    print("ready", flush=True)
    sys.stdin.readline()
    reads = errors = 0
    clock = time.monotonic
    start = last_ok = clock()
    stall = 0.0
    end = start + seconds
    total = 0
    while clock() < end:
        ok = True
        try:
            f = os.open("/proc/meminfo", os.O_RDONLY)
            try:
                data = os.read(f, 65536)
            finally:
                os.close(f)
            total = int(data.split(b"\n", 1)[0].split()[1])
            reads += 1
        except OSError:
            errors += 1
            ok = False
        try:
            os.pread(kept, 65536, 0)
            reads += 1
        except OSError:
            errors += 1
            ok = False
            with contextlib.suppress(OSError):
                os.close(kept)
            try:
                kept = os.open("/proc/stat", os.O_RDONLY)
            except OSError:
                kept = os.open("/dev/null", os.O_RDONLY)
        now = clock()
        if ok:
            stall = max(stall, now - last_ok)
            last_ok = now
        else:
            time.sleep(0.005)
    stall = max(stall, clock() - last_ok)
    print(json.dumps({"reads": reads, "errors": errors, "stall": stall, "memtotal": total}))


class Daemon:
    def __init__(self, kind: str, directory: str, tmp: Path) -> None:
        self.kind, self.directory, self.tmp = kind, directory, tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.n = 0

    def start(self, pkg: Path | None = None) -> None:
        self.n += 1
        log = open(self.tmp / f"{self.kind}-{self.n}.log", "wb")  # noqa: SIM115
        env = dict(os.environ)
        if self.kind == "c":
            argv = ["lxcfs", "-f", "-p", str(self.tmp / "c.pid"), self.directory]
        else:
            argv = [sys.executable, "-m", "lxcfs_toolkit.server", self.directory]
            if pkg is not None:
                env["PYTHONPATH"] = str(pkg)
        self.proc = subprocess.Popen(argv, cwd=pkg or ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True)
        log.close()
        from lxcfs_toolkit import viewmounts

        deadline = time.monotonic() + 20
        while True:
            try:
                dev = viewmounts.daemon(self.directory).dev
                if self.kind == "c" or self._log_says("serving lxcfs"):
                    return
            except viewmounts.NotAnswering:
                dev = 0
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} lxcfs did not come up ({dev})")
            time.sleep(0.02)

    def _log_says(self, text: str) -> bool:
        return text in (self.tmp / f"{self.kind}-{self.n}.log").read_text(errors="replace")

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def toolkit(directory: str, root: str, *args: str) -> None:
    env = dict(os.environ, LXCFS_DIR=directory, SYSCONTAINER_ENGINE="runc",
               SYSCONTAINER_RUNTIME_ROOT=root)
    subprocess.run([sys.executable, "-m", "lxcfs_toolkit.cli", *args], env=env, cwd=ROOT,
                   stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=300)


def package_copy(tmp: Path) -> Path:
    pkg = tmp / "pkg-upgrade"
    for name in ("lxcfs_toolkit", "syscontainer_tools"):
        shutil.copytree(ROOT / name, pkg / name, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def run_case(kind: str, case: str, dmn: Daemon, pids: list[int], seconds: float,
             directory: str, root: str, tmp: Path) -> dict[str, float]:
    procs = [subprocess.Popen([sys.executable, __file__, "--reader", str(pid), str(seconds)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for pid in pids]
    for p in procs:
        assert p.stdout is not None
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("a reader did not start")
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    time.sleep(2)
    t0 = time.monotonic()
    if case == "reload":
        dmn.send(signal.SIGUSR1)
    elif kind == "python" and case in ("restart", "upgrade"):
        old = dmn.proc
        dmn.start(package_copy(tmp) if case == "upgrade" else None)
        assert old is not None
        old.wait(30)
    elif case in ("restart", "upgrade"):
        dmn.stop()
        toolkit(directory, root, "prestart")
        dmn.start()
        toolkit(directory, root, "remount", "all")
    elif case == "sigkill":
        dmn.stop(signal.SIGKILL)
        time.sleep(1)
        if kind == "c":
            toolkit(directory, root, "prestart")
        dmn.start()
        if kind == "c":
            toolkit(directory, root, "remount", "all")
    took = time.monotonic() - t0
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    return {"reads": sum(r["reads"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "stall": max(r["stall"] for r in results),
            "healed": sum(1 for r in results if r["memtotal"] == MEMORY >> 10),
            "readers": len(results), "action": took}


def start_containers(kind: str, n: int, directory: str, root: str, tmp: Path) -> list[str]:
    from tests.system.conftest import make_rootfs, write_config

    template = tmp / "rootfs"
    if not template.exists():
        make_rootfs(template)
    hook = tmp / "lxcfs-hook"
    if not hook.exists():
        hook.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                        "from lxcfs_toolkit.hook import main\nsys.exit(main())\n")
        hook.chmod(0o755)
    ids = []
    for i in range(n):
        cid = f"{PREFIX}-{kind}{i}"
        bundle = tmp / cid
        bundle.mkdir()
        shutil.copytree(template, bundle / "rootfs", symlinks=True)
        write_config(bundle, memory=MEMORY, hooks={"prestart": [{
            "path": str(hook), "args": ["lxcfs-hook", "--lxcfs-dir", directory]}]})
        subprocess.run(["runc", "--root", root, "run", "-d", cid], cwd=bundle,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True, timeout=60)
        ids.append(cid)
    return ids


def container_pid(root: str, cid: str) -> int:
    out = subprocess.run(["runc", "--root", root, "state", cid], capture_output=True, text=True,
                         check=True)
    return int(json.loads(out.stdout)["pid"])


def bench(kind: str, n: int, seconds: float, tmp: Path) -> list[tuple[str, dict[str, float]]]:
    from syscontainer_tools import mountinfo, syscalls

    parent = f"/run/{PREFIX}-{kind}"
    directory = f"{parent}/lxcfs"
    root = f"/run/{PREFIX}-runc-{kind}"
    os.makedirs(root, exist_ok=True)
    dmn = Daemon(kind, directory, tmp)
    ids: list[str] = []
    out = []
    try:
        toolkit(directory, root, "prestart")
        dmn.start()
        ids = start_containers(kind, n, directory, root, tmp)
        pids = [container_pid(root, cid) for cid in ids]
        for case in ("reload", "restart", "upgrade", "sigkill"):
            out.append((case, run_case(kind, case, dmn, pids, seconds, directory, root, tmp)))
    finally:
        for cid in ids:
            subprocess.run(["runc", "--root", root, "delete", "--force", cid],
                           capture_output=True, check=False)
        dmn.stop()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"lxcfs_toolkit.handover" in cmd and os.fsencode(directory) in cmd:
                    os.kill(int(pid), signal.SIGKILL)
        for path in (directory, parent):
            for _ in range(8):
                top = mountinfo.top_mount(mountinfo.read(), path)
                if top is None:
                    break
                with contextlib.suppress(OSError):
                    syscalls.umount(path, syscalls.MNT_DETACH)
        shutil.rmtree(parent, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--daemons", default="python,c")
    parser.add_argument("--reader", nargs=2)
    args = parser.parse_args()
    if args.reader:
        reader(int(args.reader[0]), float(args.reader[1]))
        return 0
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-") as tmpdir:
        for kind in args.daemons.split(","):
            if kind == "c" and not shutil.which("lxcfs"):
                print("C lxcfs not installed: skipped", file=sys.stderr)
                continue
            sub = Path(tmpdir, kind)
            sub.mkdir()
            for case, r in bench(kind, args.containers, args.seconds, sub):
                rows.append((case, kind, r))
    print(f"{args.containers} containers, {args.seconds:g} s per case, event at 2 s")
    print(f"{'case':8} {'daemon':7} {'reads':>8} {'errors':>7} {'longest stall':>14} "
          f"{'view at end':>12} {'action took':>12}")
    for case, kind, r in rows:
        print(f"{case:8} {kind:7} {int(r['reads']):8d} {int(r['errors']):7d} "
              f"{r['stall'] * 1000:11.0f} ms {int(r['healed']):5d}/{int(r['readers']):<6d}"
              f"{r['action'] * 1000:9.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
