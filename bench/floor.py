#!/usr/bin/env python3
"""What start-up alone costs a command and the prestart hook: the floors
under bench/cli.py's, bench/net.py's and bench/hooks.py's ratios.

Run:  .venv/bin/python bench/floor.py [-n RUNS]

For each path (add-device / remove-device, add-nic / remove-nic, a prestart
re-creating devices, paths, NICs and routes) it imports, in a fresh
interpreter, the package modules that path imports -- and does nothing
else -- and prints the CPU time (user + sys, best of RUNS) of:

* ``python -c pass``;
* the standard-library modules those package modules pull in, imported
  alone (the floor no code of ours can go under while it uses them);
* the package modules themselves (adds our module bodies: class
  creations, mostly frozen dataclasses, and regex compiles).

Compare with the command's whole CPU time in bench/cli.py or bench/net.py:
the difference is the work (finding the container, the namespace fork,
the netlink and cgroup calls, the state file).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

from common import ensure_bytecode

PATHS = {
    "add/remove-device": ["syscontainer_tools.quickcli", "syscontainer_tools.commands",
                          "syscontainer_tools.resources.device", "syscontainer_tools.api",
                          "syscontainer_tools.engines.runc", "syscontainer_tools.engines.runstate",
                          "syscontainer_tools.resources.blockdev"],
    "add/remove-nic": ["syscontainer_tools.quickcli", "syscontainer_tools.commands",
                       "syscontainer_tools.resources.nic", "syscontainer_tools.api",
                       "syscontainer_tools.engines.runc", "syscontainer_tools.engines.runstate",
                       "syscontainer_tools.rtnl"],
    "prestart (devices, paths, NICs, routes)": [
        "syscontainer_tools.hooks", "syscontainer_tools.api", "syscontainer_tools.container",
        "syscontainer_tools.resources.device", "syscontainer_tools.resources.path",
        "syscontainer_tools.resources.nic", "syscontainer_tools.resources.route",
        "syscontainer_tools.rtnl"],
}


def cpu(argv: list[str], runs: int) -> float:
    """Best CPU seconds (user + sys) of ``runs`` runs of ``argv``."""
    best = float("inf")
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return best


def stdlib_of(modules: list[str]) -> list[str]:
    """The modules beyond ``python -c pass``'s that importing ``modules`` loads, not ours."""
    probe = ("import sys, json; before = set(sys.modules)\n"
             f"for m in {modules!r}: __import__(m)\n"
             "print(json.dumps(sorted(set(sys.modules) - before)))")
    base = ("import sys, json; print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True,
                                       capture_output=True, text=True).stdout)
    at_start = set(json.loads(subprocess.run([sys.executable, "-c", base], check=True,
                                             capture_output=True, text=True).stdout))
    return [m for m in loaded if not m.startswith(("syscontainer_tools", "lxcfs_toolkit"))
            and m not in at_start and not m.startswith("org.")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=15)
    args = ap.parse_args()
    ensure_bytecode()
    py = sys.executable
    floor = cpu([py, "-c", "pass"], args.runs)
    print(f"python -c pass: {floor * 1000:.1f} ms CPU (best of {args.runs})")
    for name, modules in PATHS.items():
        std = stdlib_of(modules)
        t_std = cpu([py, "-c", "\n".join(f"import {m}" for m in std) or "pass"], args.runs)
        t_all = cpu([py, "-c", "\n".join(f"import {m}" for m in modules)], args.runs)
        print(f"{name}: stdlib modules it needs ({len(std)}) {t_std * 1000:.1f} ms = "
              f"{t_std / floor:.2f}x pass; with ours {t_all * 1000:.1f} ms = "
              f"{t_all / floor:.2f}x pass")
        print(f"    stdlib: {' '.join(m for m in std if not m.startswith('_'))}")


if __name__ == "__main__":
    main()
