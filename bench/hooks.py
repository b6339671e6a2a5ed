#!/usr/bin/env python3
"""prestart hook time: nothing saved, and 10 devices + 10 paths + 2 NICs + 5 routes.

Run as root:  python bench/hooks.py [-n RUNS]

Two runc containers (busybox rootfs, private ``runc --root``) call
``syscontainer-hooks --state prestart`` through a tiny timing shim (a shell
script that takes the time around the hook, with the OCI state passed
through on stdin).  One has nothing saved; the other has 10 loop devices,
10 host directories, 2 veth NICs on a bridge and 5 routes saved, so each
restart re-creates all of them in fresh namespaces.  Each container is
restarted RUNS times (runc kill, delete, run).  The floor is
``python -c pass`` with the same interpreter, measured in the same run; the
issue's targets are the nothing-saved prestart within 1.5x of that floor and
the full one within 8x.  With ``perf`` installed the hook's CPU time
(task-clock) is printed too: on a shared machine it is the steadier figure.
Everything is made under a temp dir or named sctbh*, and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ensure_bytecode, make_bundle, run, start

BIN = Path(sys.executable).parent
PREFIX = f"sctbh{os.getpid() % 10000}"
PERF = shutil.which("perf")
NO_BYTECODE = "--no-bytecode" in sys.argv


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.root = str(work / "runc")
        self.state = str(work / "state")
        self.env = dict(os.environ, SYSCONTAINER_ENGINE="runc", SYSCONTAINER_RUNTIME_ROOT=self.root,
                        SYSCONTAINER_STATE_DIR=self.state,
                        SYSCONTAINER_UDEV_RULES_DIR=str(work / "udev"))
        self.loops: list[str] = []
        self.links: list[str] = []
        self.ids: list[str] = []

    def shim(self, times: Path, profile: Path | None = None) -> Path:
        path = self.work / f"shim-{times.stem}"
        # --no-bytecode: the package's __pycache__ is gone and the hook writes none
        nocache = "export PYTHONDONTWRITEBYTECODE=1\n" if NO_BYTECODE else ""
        # the profile is of CPU time (bench/cpuprofile.py): waits for a core do not count
        hook = (f'{sys.executable} {Path(__file__).parent / "cpuprofile.py"} {profile}.$$ '
                'syscontainer_tools.hooks' if profile else str(BIN / "syscontainer-hooks"))
        if PERF and not profile:  # the hook's CPU time (task-clock, ms) as well
            hook = f"{PERF} stat -x, -e task-clock -o {times}.cpu --append -- {hook}"
        path.write_text(
            "#!/bin/sh\n"
            f"{nocache}"
            "t0=$(date +%s%N)\n"
            f'{hook} "$@"\n'
            "rc=$?\n"
            f'echo $(( $(date +%s%N) - t0 )) >> {times}\n'
            "exit $rc\n")
        path.chmod(0o755)
        return path

    def container(self, name: str, times: Path, profile: Path | None = None) -> str:
        cid = f"{PREFIX}-{name}"
        shim = str(self.shim(times, profile))
        args = ["--state-dir", self.state]
        hooks = {"prestart": [{"path": shim, "args": [shim, "--state", "prestart", *args]}],
                 "poststop": [{"path": str(BIN / "syscontainer-hooks"),
                               "args": ["syscontainer-hooks", "--state", "poststop", *args]}]}
        make_bundle(self.work / cid, ("sh", "sleep", "ls", "ip", "cat"), hooks)
        self.ids.append(cid)
        self.start(cid)
        return cid

    def start(self, cid: str) -> None:
        start(self.root, cid, self.work / cid)

    def stop(self, cid: str) -> None:
        run(["runc", "--root", self.root, "kill", cid, "KILL"], check=False)
        for _ in range(200):
            st = run(["runc", "--root", self.root, "state", cid], check=False)
            if st.returncode != 0 or json.loads(st.stdout)["status"] == "stopped":
                break
            time.sleep(0.02)
        run(["runc", "--root", self.root, "delete", "--force", cid], check=False)

    def tool(self, *args: str) -> None:
        run([str(BIN / "syscontainer-tools"), *args], env=self.env)

    def fill(self, cid: str) -> None:
        """10 devices + 10 paths + 2 veth NICs + 5 routes, saved and live."""
        for i in range(10):
            img = self.work / f"disk{i}.img"
            with open(img, "wb") as f:
                f.truncate(1 << 20)
            self.loops.append(run(["losetup", "-f", "--show", str(img)]).stdout.strip())
        self.tool("add-device", cid, *(f"{d}:/dev/bench{i}" for i, d in enumerate(self.loops)))
        dirs = []
        for i in range(10):
            (self.work / f"share{i}").mkdir()
            dirs.append(f"{self.work}/share{i}:/mnt/share{i}")
        self.tool("add-path", cid, *dirs)
        bridge = f"{PREFIX}br"
        run(["ip", "link", "add", bridge, "type", "bridge"])
        self.links.append(bridge)
        run(["ip", "link", "set", bridge, "up"])
        for i in (1, 2):
            host = f"{PREFIX}v{i}"
            self.links.append(host)
            self.tool("add-nic", "--type", "veth", "--name", f"{host}:eth{i}", "--ip",
                      f"10.239.{i}.2/24", "--bridge", bridge, cid)
        routes = [{"dest": f"10.238.{i}.0/24", "gw": "10.239.1.1", "dev": "eth1"}
                  for i in range(5)]
        self.tool("add-route", cid, json.dumps(routes))

    def cleanup(self) -> None:
        steps = ([lambda c=cid: self.stop(c) for cid in self.ids]
                 + [lambda x=link: run(["ip", "link", "del", x], check=False)
                    for link in self.links]
                 + [lambda x=loop: run(["losetup", "-d", x], check=False)
                    for loop in self.loops])
        for step in steps:  # each is tried, whatever the others did
            try:
                step()
            except Exception as err:  # noqa: BLE001
                print(f"cleanup: {err}", file=sys.stderr)


def drop_bytecode() -> None:
    """Remove the package's cached bytecode (as a package installed
    without it would be); the hook's shim keeps it from writing any."""
    root = Path(__file__).resolve().parent.parent / "syscontainer_tools"
    for cache in root.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    print("bytecode: none cached for syscontainer_tools, none written by the hook")


def floor(runs: int, cpu: list[float] | None = None) -> list[float]:
    """Wall ms of ``python -c pass``; its CPU ms appended to ``cpu``."""
    import resource

    out = []
    for i in range(runs + 1):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter_ns()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        out.append((time.perf_counter_ns() - t0) / 1e6)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None and i:
            cpu.append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
    return out[1:]


def perf_ms(path: Path) -> list[float]:
    """The task-clock values (ms) perf stat appended to ``path``."""
    if not path.exists():
        return []
    return [float(line.split(",")[0]) for line in path.read_text().splitlines()
            if "task-clock" in line]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=10)
    ap.add_argument("--no-bytecode", action="store_true",
                    help="time the hook without cached bytecode of the package (removed "
                         "first, none written; compiled again at the end)")
    ap.add_argument("--profile", action="store_true",
                    help="run the full container's prestart under cProfile (not timed "
                         "fairly then) and print where its time goes")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    if args.no_bytecode:
        drop_bytecode()
    else:
        ensure_bytecode()
    work = Path(tempfile.mkdtemp(prefix="sct-bench-hooks-"))
    bench = Bench(work)
    try:
        empty_t, full_t = work / "empty.times", work / "full.times"
        empty = bench.container("empty", empty_t)
        prof = work / "prestart.prof" if args.profile else None
        full = bench.container("full", full_t, prof)
        bench.fill(full)
        for path in (empty_t, full_t):
            path.write_text("")
        for path in (empty_t, full_t):
            Path(f"{path}.cpu").unlink(missing_ok=True)
        base: list[float] = []
        base_cpu: list[float] = []
        for _ in range(args.runs):
            for cid in (empty, full):
                bench.stop(cid)
                bench.start(cid)
            base += floor(1, base_cpu)
        # the full container really got everything back
        check = run(["runc", "--root", bench.root, "exec", full, "sh", "-c",
                     "ls /dev/bench9 && ls -d /mnt/share9 && ip route | grep -c 10.238"]).stdout
        assert check.strip().endswith("5"), check
        empty_ms = [int(x) / 1e6 for x in empty_t.read_text().split()]
        full_ms = [int(x) / 1e6 for x in full_t.read_text().split()]
        fl = statistics.median(base)
        e, f = statistics.median(empty_ms), statistics.median(full_ms)
        print(f"python -c pass (floor)          median {fl:7.1f} ms  ({len(base)} runs)")
        print(f"prestart, nothing saved         median {e:7.1f} ms  ratio {e / fl:.2f}x "
              "the floor (target <= 1.5x)")
        print(f"prestart, 10 dev+10 path+2 NIC+5 route  median {f:7.1f} ms  "
              f"ratio {f / fl:.2f}x the floor (target <= 8x)")
        e_cpu, f_cpu = perf_ms(Path(f"{empty_t}.cpu")), perf_ms(Path(f"{full_t}.cpu"))
        if e_cpu and f_cpu:
            fc = min(base_cpu)
            print(f"CPU (best of each): floor {fc:.1f} ms; nothing saved {min(e_cpu):.1f} ms "
                  f"= {min(e_cpu) / fc:.2f}x; full {min(f_cpu):.1f} ms = {min(f_cpu) / fc:.2f}x "
                  f"(medians {statistics.median(base_cpu):.1f} / {statistics.median(e_cpu):.1f}"
                  f" / {statistics.median(f_cpu):.1f} ms)")
        if prof is not None:
            import pstats

            runs = sorted(work.glob("prestart.prof.*"))
            stats = pstats.Stats(str(runs[0]))
            for extra in runs[1:]:
                stats.add(str(extra))
            print(f"\nwhere the full prestart's CPU time goes ({len(runs)} runs, cProfile):")
            stats.sort_stats("cumulative").print_stats(60)
    finally:
        bench.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        if args.no_bytecode:
            ensure_bytecode()


if __name__ == "__main__":
    main()
