#!/usr/bin/env python3
"""add-device + remove-device through the real CLI vs. a plain shell script.

Run as root:  python bench/cli.py [-n RUNS]

Makes its own runc container (busybox rootfs, private ``runc --root``), a
loop device and a state directory, all removed at the end.  Each round times

* CLI:   ``syscontainer-tools add-device C LOOP:/dev/bench`` then
         ``remove-device C LOOP:/dev/bench`` (two processes, as a user runs them)
* shell: ``nsenter -t PID -m mknod /dev/bench b MAJ MIN`` + ``echo "b MAJ:MIN rwm" >
         devices.allow``, then ``nsenter ... rm`` + ``devices.deny`` (one sh -c each)

and prints the medians and their ratio.  It also checks that ``--help`` loads
none of pyroute2, pyudev, fusepy and prints how long ``--help`` takes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import (
    both,
    cpu_line,
    ensure_bytecode,
    make_container,
    ratio,
    rounds,
    run,
    summary,
    timed_cpu,
)

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pyroute2", "pyudev", "fuse")


def help_check(python: str) -> tuple[float, float]:
    proc = run([python, "-X", "importtime", "-m", "syscontainer_tools", "--help"],
               cwd=REPO)
    loaded = [line.split("|")[-1].strip() for line in proc.stderr.splitlines()
              if "|" in line]
    heavy = sorted({m for m in loaded if m.split(".")[0] in HEAVY})
    if heavy:
        print(f"--help imports heavy modules: {', '.join(heavy)}")
    else:
        print("--help imports none of pyroute2, pyudev, fusepy: ok")
    times = [timed_cpu([python, "-m", "syscontainer_tools", "--help"]) for _ in range(7)]
    return statistics.median(t[0] for t in times), min(t[1] for t in times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=15)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    ensure_bytecode()

    help_time, help_cpu = help_check(args.python)
    work = Path(tempfile.mkdtemp(prefix="sct-bench-"))
    root = str(work / "runc-root")
    cid = f"sctbench{os.getpid()}"
    loop = None
    try:
        pid = make_container(work, root, cid, ("sh", "sleep", "ls", "mknod", "rm"))
        backing = work / "disk.img"
        with open(backing, "wb") as f:
            f.truncate(8 << 20)
        loop = run(["losetup", "-f", "--show", str(backing)]).stdout.strip()
        st = os.stat(loop)
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        cg = None
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, ctls, path = line.split(":", 2)
            if "devices" in ctls.split(","):
                cg = f"/sys/fs/cgroup/devices{path}"
        if cg is None:
            raise SystemExit("no v1 devices cgroup: the shell baseline needs one")

        env = dict(os.environ, SYSCONTAINER_ENGINE="runc", SYSCONTAINER_RUNTIME_ROOT=root,
                   SYSCONTAINER_STATE_DIR=str(work / "state"),
                   SYSCONTAINER_UDEV_RULES_DIR=str(work / "udev"))
        # the console script next to the interpreter, as a user runs it (not python -m,
        # whose runpy costs start-up a user never pays)
        script = Path(args.python).parent / "syscontainer-tools"
        cli = [str(script)] if script.exists() else [args.python, "-m", "syscontainer_tools"]
        add = [*cli, "add-device", cid, f"{loop}:/dev/bench"]
        rm = [*cli, "remove-device", cid, f"{loop}:/dev/bench"]
        sh_add = ["sh", "-c", f"nsenter -t {pid} -m mknod /dev/bench b {major} {minor} && "
                  f"echo 'b {major}:{minor} rwm' > {cg}/devices.allow"]
        sh_rm = ["sh", "-c", f"nsenter -t {pid} -m rm /dev/bench && "
                 f"echo 'b {major}:{minor} rwm' > {cg}/devices.deny"]

        cli_runs, sh_runs = rounds(args.runs,
                                   lambda: both(timed_cpu(add, env), timed_cpu(rm, env)),
                                   lambda: both(timed_cpu(sh_add), timed_cpu(sh_rm)))
        cli_times, sh_times = [r[0] for r in cli_runs], [r[0] for r in sh_runs]
        print(f"runs: {args.runs} (after 1 warm-up), container {cid}, device {loop}")
        print(summary("CLI add-device + remove-device:", cli_times))
        print(summary("shell mknod/allow + rm/deny:   ", sh_times))
        print(ratio("CLI/shell", cli_times, sh_times))
        print(cpu_line([r[1] for r in cli_runs], [r[1] for r in sh_runs]))
        typer_runs = [timed_cpu([args.python, "-c", "import typer"]) for _ in range(7)]
        floor = statistics.median(t[0] for t in typer_runs)
        floor_cpu = min(t[1] for t in typer_runs)
        print(f"syscontainer-tools --help: median {help_time * 1000:.1f} ms; "
              f"'python -c \"import typer\"' alone: {floor * 1000:.1f} ms; ratio "
              f"{help_time / floor:.2f} (target <= 2); best CPU {help_cpu * 1000:.1f} vs "
              f"{floor_cpu * 1000:.1f} ms: {help_cpu / floor_cpu:.2f}")
    finally:
        subprocess.run(["runc", "--root", root, "delete", "--force", cid],
                       stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if loop:
            subprocess.run(["losetup", "-d", loop], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
