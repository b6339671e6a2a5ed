#!/usr/bin/env python3
"""lxcfs serving a fleet: the Python lxcfs against C lxcfs -l, same run, same containers.

Run as root:  .venv/bin/python bench/lxcfs_fleet.py [--containers 50] [--rate 10]
                  [--seconds 10] [--many 250] [--soak 600]

Both daemons are mounted on fresh temp dirs (C lxcfs with ``-l``: per-container
loadavg).  A "container" here is what lxcfs sees of one: a process in its own
pid namespace (it is that namespace's init) sitting in its own memory
(256 MiB limit), cpu (50 % CFS quota), cpuacct and cpuset cgroups made for
the run.  Its reader is that init itself, monitoring-style: RATE rounds a
second, each round open-read-close of /proc/meminfo, /proc/stat and
/proc/loadavg, rounds evenly spaced and the containers' phases spread.

1. fleet: CONTAINERS readers, SECONDS against each daemon, C and Python in
   turn twice (against drift).  Printed per daemon: reads, the daemon's CPU
   time (utime + stime from /proc/PID/stat) per 1000 reads and its user
   share, and the p99 of one open-read-close over all reads; then the
   Python/C ratio of CPU per 1000 reads (issue 16's target: <= 0.5) and of
   p99 (target <= 1), and the load average.  ``--variant ARGS`` adds a
   second Python daemon (``LXCFS_FLEET_VARIANT_PATH=DIR``: run from that
   checkout) for a before/after comparison under the same load.
2. loadavg at scale (run first): one probe container reads /proc/loadavg in
   a loop while 5, then MANY containers exist (each has read its loadavg once from
   both daemons, so both track it).  Printed per daemon: mean and p99 of a
   read, daemon CPU per 1000 reads, and the daemon's idle CPU per second
   (C lxcfs -l walks every tracked cgroup in a thread) with MANY/5 ratios
   (target: a read costs the same).
3. soak: the fleet reads both daemons for SOAK seconds; each daemon's RSS
   (VmRSS) is printed at the start, every quarter and at the end.
   ``--soak 600`` is the 10-minute record; keep it short in any CI use.

Everything is named sctfleet<hex> or made under a temp dir, and removed at
the end, also on failure.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from common import rmdir_cgroup, start_lxcfs

ROOT = Path(__file__).resolve().parent.parent
TAG = f"sctfleet{secrets.token_hex(3)}"
FILES = ("meminfo", "stat", "loadavg")
CLONE_NEWPID = 0x20000000
TICK = os.sysconf("SC_CLK_TCK")


# --- one container: its init is the reader ------------------------------------

def reader(dirs: list[str]) -> None:
    """Join the cgroups, unshare the pid namespace, fork its init, serve commands.

    Commands on stdin, one a line: ``go MOUNT[,MOUNT] SECONDS RATE FILES`` →
    one JSON line ``{"n": reads, "lat": [us, ...]}``; ``loop MOUNT SECONDS
    FILE`` reads as fast as it can; ``quit``."""
    for d in dirs:
        Path(d, "cgroup.procs").write_text(str(os.getpid()))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWPID) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWPID)")
    child = os.fork()
    if child:
        _, status = os.waitpid(child, 0)
        os._exit(os.waitstatus_to_exitcode(status) if status else 0)
    assert os.getpid() == 1
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    clock = time.perf_counter_ns
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "quit":
            break
        lat: list[int] = []
        if cmd == "go":
            mounts, seconds, rate = args[0].split(","), float(args[1]), float(args[2])
            paths = [f"{m}/proc/{f}" for m in mounts for f in args[3].split(",")]
            period = 1e9 / rate
            start = clock() + int(random.random() * period)  # spread the fleet's phases
            deadline = start + int(seconds * 1e9)
            k = 0
            while True:
                due = start + int(k * period)
                now = clock()
                if now > due + period:  # fell behind: skip rounds, as a monitor would
                    k = int((now - start) / period) + 1
                    due = start + int(k * period)
                if due >= deadline:
                    break
                if due > now:
                    time.sleep((due - now) / 1e9)
                for p in paths:
                    t0 = clock()
                    fd = os.open(p, os.O_RDONLY)
                    while os.read(fd, 65536):
                        pass
                    os.close(fd)
                    lat.append((clock() - t0) // 1000)
                k += 1
        elif cmd == "loop":
            path, seconds = f"{args[0]}/proc/{args[2]}", float(args[1])
            deadline = clock() + int(seconds * 1e9)
            t0 = clock()
            while t0 < deadline:
                fd = os.open(path, os.O_RDONLY)
                while os.read(fd, 65536):
                    pass
                os.close(fd)
                t = clock()
                lat.append((t - t0) // 1000)
                t0 = t
        out.write(json.dumps({"n": len(lat), "lat": lat}) + "\n")
        out.flush()
    os._exit(0)


class Fleet:
    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack
        sys.path.insert(0, str(ROOT))
        from lxcfs_toolkit.cgroupreader import Hierarchies

        self.mounts = dict(Hierarchies.discover().v1)
        self.ncpu = len(os.sched_getaffinity(0))
        self.count = 0
        self.readers: list[subprocess.Popen[str]] = []
        self.idle: list[tuple[subprocess.Popen[bytes], list[str]]] = []

    def cgroups(self) -> list[str]:
        i = self.count
        self.count += 1
        dirs = []
        for ctrl in ("memory", "cpu", "cpuacct", "cpuset"):
            d = Path(self.mounts[ctrl], f"{TAG}-{i}")
            d.mkdir()
            self.stack.callback(rmdir_cgroup, d, Path(self.mounts[ctrl]))
            if ctrl == "memory":
                (d / "memory.limit_in_bytes").write_text(str(256 << 20))
            elif ctrl == "cpu":
                (d / "cpu.cfs_quota_us").write_text("50000")
            elif ctrl == "cpuset":
                (d / "cpuset.mems").write_text(Path(self.mounts[ctrl], "cpuset.mems").read_text())
                (d / "cpuset.cpus").write_text(str(i % self.ncpu))
            dirs.append(str(d))
        return dirs

    def add_readers(self, n: int) -> None:
        new = []
        for _ in range(n):
            p = subprocess.Popen([sys.executable, __file__, "--reader", *self.cgroups()],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.stack.callback(_end, p)
            new.append(p)
        for p in new:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise SystemExit("a reader did not start")
        self.readers += new

    def add_idle(self, n: int, mounts: list[str]) -> None:
        """Sleeping containers that have each read their loadavg once from every daemon."""
        touch = " ".join(f"{m}/proc/loadavg" for m in mounts)
        new = []
        for _ in range(n):
            dirs = self.cgroups()
            script = ('for d; do echo $$ > "$d/cgroup.procs"; done; exec unshare --pid --fork '
                      f'--kill-child sh -c "cat {touch} >/dev/null; echo ok; exec sleep 1000000"')
            p = subprocess.Popen(["sh", "-c", script, "sh", *dirs], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE)
            self.stack.callback(_end, p)
            new.append((p, dirs))
        for p, _ in new:
            assert p.stdout is not None
            if p.stdout.readline().strip() != b"ok":
                raise SystemExit("an idle container did not start")
        self.idle += new

    def remove_idle(self) -> None:
        # unshare --fork ignores SIGTERM: SIGKILL it, its child follows (--kill-child)
        for p, _ in self.idle:
            p.kill()
        for p, dirs in self.idle:
            p.wait()
            for d in dirs:
                rmdir_cgroup(Path(d), Path(d).parent)
        self.idle = []

    def command(self, procs: list[subprocess.Popen[str]], line: str) -> list[dict]:
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(line + "\n")
            p.stdin.flush()
        out = []
        for p in procs:
            assert p.stdout is not None
            out.append(json.loads(p.stdout.readline()))
        return out


def _end(p: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if p.poll() is None:
        try:
            if p.stdin is not None and p.args[2] == "--reader":  # type: ignore[index]
                p.stdin.write("quit\n")
                p.stdin.flush()
                p.wait(2)
                return
        except (OSError, subprocess.TimeoutExpired, IndexError, TypeError):
            pass
        if p.args[0] == "sh":  # type: ignore[index]  # an idle container: unshare ignores TERM
            p.kill()
        else:
            p.terminate()
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# --- the daemons ------------------------------------------------------------------

class Daemon:
    def __init__(self, stack: ExitStack, kind: str, mnt: str, extra: list[str]) -> None:
        self.kind, self.mnt = kind, mnt
        os.mkdir(mnt)
        cwd = os.environ.get("LXCFS_FLEET_VARIANT_PATH", ROOT) if kind == "variant" else ROOT
        self.proc = start_lxcfs(stack, kind, mnt, extra, cwd=cwd)

    def cpu(self) -> float:
        """utime + stime of the daemon, seconds."""
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """(utime, stime) of the daemon, seconds."""
        data = Path(f"/proc/{self.proc.pid}/stat").read_bytes()
        fields = data[data.rindex(b")") + 2:].split()
        return int(fields[11]) / TICK, int(fields[12]) / TICK

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


def p99(values: list[int]) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return float(values[min(len(values) - 1, int(len(values) * 0.99))])


# --- the three measurements ---------------------------------------------------------

def fleet(fl: Fleet, daemons: dict[str, Daemon], seconds: float, rate: float) -> None:
    acc = {k: {"n": 0, "cpu": 0.0, "user": 0.0, "lat": []} for k in daemons}  # type: ignore[var-annotated]
    load0 = os.getloadavg()[0]
    for kind in [*daemons, *daemons]:   # each in turn, twice (against drift)
        d = daemons[kind]
        u0, s0 = d.cpu_split()
        res = fl.command(fl.readers, f"go {d.mnt} {seconds / 2} {rate} {','.join(FILES)}")
        u1, s1 = d.cpu_split()
        acc[kind]["cpu"] += (u1 - u0) + (s1 - s0)
        acc[kind]["user"] += u1 - u0
        for r in res:
            acc[kind]["n"] += r["n"]
            acc[kind]["lat"] += r["lat"]
    print(f"\n1. fleet: {len(fl.readers)} containers, {rate:g} rounds/s of "
          f"{'+'.join(FILES)}, {seconds:g} s per daemon")
    print(f"   {'daemon':<8} {'reads':>7} {'reads/s':>8} {'CPU s':>7} {'CPU ms/1000 reads':>18} "
          f"{'user %':>7} {'p50 us':>7} {'p99 us':>7}")
    for kind in daemons:
        a = acc[kind]
        per = 1000 * a["cpu"] / max(1, a["n"]) * 1000
        user = 100 * a["user"] / max(1e-9, a["cpu"])
        print(f"   {kind:<8} {a['n']:>7} {a['n'] / seconds:>8.0f} {a['cpu']:>7.2f} {per:>18.1f} "
              f"{user:>7.0f} {statistics.median(a['lat']):>7.0f} {p99(a['lat']):>7.0f}")
    for kind in daemons:
        if kind == "c":
            continue
        cpu_ratio = (acc[kind]["cpu"] / max(1, acc[kind]["n"])) / max(1e-9, acc["c"]["cpu"] / acc["c"]["n"])
        lat_ratio = p99(acc[kind]["lat"]) / max(1.0, p99(acc["c"]["lat"]))
        print(f"   {kind}/c: CPU per 1000 reads {cpu_ratio:.2f}x (target <= 0.5), "
              f"p99 {lat_ratio:.2f}x (target <= 1)")
    print(f"   load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


def loadavg_probe(fl: Fleet, daemons: dict[str, Daemon], seconds: float) -> dict[str, tuple]:
    probe = fl.readers[:1]
    out = {}
    for kind in daemons:
        d = daemons[kind]
        c0, t0 = d.cpu(), time.monotonic()
        time.sleep(seconds / 2)
        idle = (d.cpu() - c0) / (time.monotonic() - t0)
        c0 = d.cpu()
        r = fl.command(probe, f"loop {d.mnt} {seconds / 2} loadavg")[0]
        cpu = d.cpu() - c0
        out[kind] = (statistics.mean(r["lat"]), p99(r["lat"]), 1e6 * cpu / max(1, r["n"]), idle)
    return out


def scale(fl: Fleet, daemons: dict[str, Daemon], many: int, seconds: float) -> None:
    """Reader 0 is the probe; idle containers make up 5, then MANY containers."""
    mounts = [d.mnt for d in daemons.values()]
    few = 5
    fl.add_idle(few - len(fl.readers), mounts)
    small = loadavg_probe(fl, daemons, seconds)
    fl.add_idle(many - few, mounts)
    big = loadavg_probe(fl, daemons, seconds)
    print(f"\n2. loadavg: one container reading /proc/loadavg in a loop, {seconds / 2:g} s, "
          f"with {few} and with {many} containers")
    print(f"   {'daemon':<8} {'containers':>10} {'mean us':>8} {'p99 us':>7} "
          f"{'CPU us/read':>12} {'idle CPU %':>11}")
    for kind in daemons:
        for n, res in ((few, small), (many, big)):
            m, p, cpu, idle = res[kind]
            print(f"   {kind:<8} {n:>10} {m:>8.1f} {p:>7.0f} {cpu:>12.1f} {100 * idle:>11.2f}")
        print(f"   {kind:<8} {many}/{few}: mean read {big[kind][0] / small[kind][0]:.2f}x, "
              f"CPU per read {big[kind][2] / max(1e-9, small[kind][2]):.2f}x (target ~1)")
    fl.remove_idle()


def soak(fl: Fleet, daemons: dict[str, Daemon], seconds: float, rate: float) -> None:
    mounts = ",".join(d.mnt for d in daemons.values())
    print(f"\n3. soak: {len(fl.readers)} containers reading both daemons, {rate:g} rounds/s, "
          f"{seconds:g} s; RSS in KiB")
    print(f"   {'t s':>6} " + " ".join(f"{k + ' RSS':>12}" for k in daemons))
    rss = {k: [d.rss_kib()] for k, d in daemons.items()}
    print(f"   {0:>6.0f} " + " ".join(f"{v[-1]:>12}" for v in rss.values()), flush=True)
    quarter = seconds / 4
    for q in range(1, 5):
        fl.command(fl.readers, f"go {mounts} {quarter} {rate} {','.join(FILES)}")
        for k, d in daemons.items():
            rss[k].append(d.rss_kib())
        print(f"   {q * quarter:>6.0f} " + " ".join(f"{v[-1]:>12}" for v in rss.values()),
              flush=True)
    for k, v in rss.items():
        print(f"   {k}: start {v[0]} KiB, end {v[-1]} KiB ({(v[-1] - v[0]) / v[0] * 100:+.1f} %)")


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                .splitlines() if ln.startswith("model name")), "?")
    return f"{os.cpu_count()} cores, {cpu}, kernel {os.uname().release}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=50)
    ap.add_argument("--rate", type=float, default=10.0, help="rounds per second per container")
    ap.add_argument("--seconds", type=float, default=10.0, help="fleet seconds per daemon")
    ap.add_argument("--many", type=int, default=250)
    ap.add_argument("--probe-seconds", type=float, default=6.0)
    ap.add_argument("--soak", type=float, default=60.0, help="soak seconds (600 for the record)")
    ap.add_argument("--server-args", default="", help="options for the Python daemon")
    ap.add_argument("--variant", help="also run a second Python daemon with these options "
                    "(A/B in the same run); LXCFS_FLEET_VARIANT_PATH in the environment "
                    "runs it from another checkout (python -m from there)")
    ap.add_argument("--reader", nargs="+")
    args = ap.parse_args()
    if args.reader:
        reader(args.reader)
        return 0
    if os.geteuid() != 0:
        raise SystemExit("run as root (cgroups, namespaces, mounts)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # clean up on the way out
    signal.signal(signal.SIGHUP, lambda *_: sys.exit("hung up"))
    ver = subprocess.run(["/usr/bin/lxcfs", "--version"], capture_output=True, text=True)
    print(f"machine: {machine()}; C lxcfs {(ver.stdout + ver.stderr).strip() or '?'} -l")
    with ExitStack() as stack:
        tmp = tempfile.mkdtemp(prefix=f"{TAG}-")
        stack.callback(shutil.rmtree, tmp, True)
        daemons = {"python": Daemon(stack, "python", f"{tmp}/py", args.server_args.split())}
        if args.variant is not None:   # a second Python daemon, for A/B runs in one load
            daemons["variant"] = Daemon(stack, "variant", f"{tmp}/py2", args.variant.split())
        daemons["c"] = Daemon(stack, "c", f"{tmp}/c", ["-l"])
        fl = Fleet(stack)
        fl.add_readers(1)
        if args.many > 0:
            scale(fl, daemons, args.many, args.probe_seconds)
        fl.add_readers(args.containers - 1)
        fl.command(fl.readers, f"go {','.join(d.mnt for d in daemons.values())} 0.5 10 "
                   f"{','.join(FILES)}")  # warm both
        fleet(fl, daemons, args.seconds, args.rate)
        if args.soak > 0:
            soak(fl, daemons, args.soak, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
