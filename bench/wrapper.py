#!/usr/bin/env python3
"""Per-call overhead of the runtime wrapper syscontainer-runc against plain runc.

Run as root:  python bench/wrapper.py [-n RUNS]

One busybox runc container (private ``runc --root``).  Timed, RUNS times
each, alternating so both see the same machine load:

* ``state ID`` -- what engines call most; the wrapper passes it straight on
  (its cost is the interpreter start-up and the exec);
* a whole lifecycle ``create`` + ``start`` + ``kill`` + ``delete`` of a
  second container, where ``create`` also writes the hooks into the bundle's
  config.json.  The hooks themselves are not timed here: the hooks are
  stand-ins that run ``true`` (bench/hooks.py times syscontainer-hooks).

Prints medians, the difference per call and the ratio.  Everything is made
under a temp dir and named sctbw*, and removed at the end.
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

from common import make_bundle, run, start

BIN = Path(sys.executable).parent
PREFIX = f"sctbw{os.getpid() % 10000}"


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``argv``: the CPU time (user + system
    of the process and what it executed) hardly depends on other load."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.read().decode().strip()}")
    proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime


def lifecycle(runtime: list[str], root: str, cid: str, bundle: Path) -> float:
    t0 = time.perf_counter()
    with open(bundle.parent / f"{cid}.log", "w") as out:
        subprocess.run([*runtime, "--root", root, "create", "--bundle", str(bundle), cid],
                       stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=True)
    run([*runtime, "--root", root, "start", cid])
    run([*runtime, "--root", root, "kill", cid, "KILL"])
    for _ in range(200):
        if json.loads(run([*runtime, "--root", root, "state", cid]).stdout)["status"] == "stopped":
            break
        time.sleep(0.005)
    run([*runtime, "--root", root, "delete", cid])
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", "--runs", type=int, default=30)
    args = p.parse_args()
    runc = shutil.which("runc") or "runc"
    work = Path(tempfile.mkdtemp(prefix="sctbw"))
    hooks = work / "hooks"          # stand-ins: the hooks' own time is bench/hooks.py's
    hooks.mkdir()
    for name in ("syscontainer-hooks", "lxcfs-hook"):
        (hooks / name).symlink_to(shutil.which("true") or "/bin/true")
    wrapper = [str(BIN / "syscontainer-runc"), f"--sc-runtime={runc}", "--sc-log-dir=",
               f"--sc-bindir={hooks}"]
    root = str(work / "runc")
    cid = f"{PREFIX}-state"
    try:
        make_bundle(work / "b1")
        start(root, cid, work / "b1")
        make_bundle(work / "b2")
        state = {"runc": [], "wrapper": []}
        cycle = {"runc": [], "wrapper": []}
        for _ in range(args.runs):
            state["runc"].append(timed([runc, "--root", root, "state", cid]))
            state["wrapper"].append(timed([*wrapper, "--root", root, "state", cid]))
        for i in range(max(3, args.runs // 5)):
            cycle["runc"].append(lifecycle([runc], root, f"{PREFIX}-c{i}", work / "b2"))
            cycle["wrapper"].append(lifecycle(wrapper, root, f"{PREFIX}-w{i}", work / "b2"))
        floor = [timed([sys.executable, "-c", "pass"]) for _ in range(args.runs)]

        def ms(values: list, i: int | None = None) -> float:
            return statistics.median(v if i is None else v[i] for v in values) * 1000

        print(f"{'call (median)':<34}{'runc ms':>9}{'wrapper ms':>12}{'+ms':>8}{'ratio':>7}")
        for label, i in (("wall", 0), ("CPU", 1)):
            a, b = ms(state["runc"], i), ms(state["wrapper"], i)
            print(f"{'state, ' + label:<34}{a:>9.1f}{b:>12.1f}{b - a:>8.1f}{b / a:>7.2f}")
        a, b = ms(cycle["runc"]), ms(cycle["wrapper"])
        print(f"{'create+start+kill+delete, wall':<34}{a:>9.1f}{b:>12.1f}{b - a:>8.1f}"
              f"{b / a:>7.2f}")
        print(f"(python -c pass, same interpreter: {ms(floor, 0):.1f} ms wall, "
              f"{ms(floor, 1):.1f} ms CPU)")
    finally:
        subprocess.run([runc, "--root", root, "delete", "--force", cid], capture_output=True,
                       check=False)
        for entry in os.listdir(root) if os.path.isdir(root) else []:
            subprocess.run([runc, "--root", root, "delete", "--force", entry],
                           capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
