#!/usr/bin/env python3
"""Scale of one container: add, list, restart (prestart) and remove at 1x, 2x, 4x.

Run as root:  .venv/bin/python bench/scale.py [--devices 50 --paths 32 --nics 2 --routes 12]

The base counts default to a quarter of issue 16's container (200 devices,
128 paths, 8 NICs, 50 routes), so 4x is that container.  For each factor a
fresh runc container (busybox rootfs, private ``runc --root``) gets, through
the real CLI, factor x base char devices (host nodes made here), host
directories, veth NICs on a bridge and routes; then the four ``list-*``
commands run; then the container is restarted (runc kill, delete, run: the
prestart hook re-creates everything, timed by a shim around it); then every
item is removed.  Printed per phase and factor: wall time and the CPU time of
the processes it ran, and the 4x/1x ratio of each (linear is 4; quadratic
would be 16).  Everything is named sctbs* or made under a temp dir, and
removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import ensure_bytecode, make_bundle, run, start

BIN = Path(sys.executable).parent
PREFIX = f"sctbs{os.getpid() % 10000}"


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class Box:
    def __init__(self, work: Path, factor: int) -> None:
        self.work = work / f"x{factor}"
        self.work.mkdir()
        self.root = str(self.work / "runc")
        self.cid = f"{PREFIX}-x{factor}"
        self.env = dict(os.environ, SYSCONTAINER_ENGINE="runc", SYSCONTAINER_RUNTIME_ROOT=self.root,
                        SYSCONTAINER_STATE_DIR=str(self.work / "state"),
                        SYSCONTAINER_UDEV_RULES_DIR=str(self.work / "udev"))
        self.times = self.work / "prestart.times"
        shim = self.work / "shim"
        shim.write_text("#!/bin/sh\nt0=$(date +%s%N)\n"
                        f'{BIN / "syscontainer-hooks"} "$@"\nrc=$?\n'
                        f"echo $(( $(date +%s%N) - t0 )) >> {self.times}\nexit $rc\n")
        shim.chmod(0o755)
        args = ["--state-dir", self.env["SYSCONTAINER_STATE_DIR"]]
        hooks = {"prestart": [{"path": str(shim), "args": [str(shim), "--state", "prestart", *args]}],
                 "poststop": [{"path": str(BIN / "syscontainer-hooks"),
                               "args": ["syscontainer-hooks", "--state", "poststop", *args]}]}
        self.bundle = self.work / "bundle"
        make_bundle(self.bundle, ("sh", "sleep", "ls", "ip"), hooks)
        self.links: list[str] = []

    def tool(self, *args: str) -> None:
        run([str(BIN / "syscontainer-tools"), *args], env=self.env)

    def start(self) -> None:
        start(self.root, self.cid, self.bundle)

    def stop(self) -> None:
        run(["runc", "--root", self.root, "kill", self.cid, "KILL"], check=False)
        for _ in range(200):
            st = run(["runc", "--root", self.root, "state", self.cid], check=False)
            if st.returncode != 0 or json.loads(st.stdout)["status"] == "stopped":
                break
            time.sleep(0.02)
        run(["runc", "--root", self.root, "delete", "--force", self.cid], check=False)


def phase(name: str, out: dict[str, tuple[float, float]], fn) -> None:  # type: ignore[no-untyped-def]
    c0, t0 = children_cpu(), time.perf_counter()
    fn()
    out[name] = (time.perf_counter() - t0, children_cpu() - c0)


def one(work: Path, factor: int, base: argparse.Namespace) -> dict[str, tuple[float, float]]:
    box = Box(work, factor)
    nd, np_, nn, nr = (factor * base.devices, factor * base.paths, factor * base.nics,
                       factor * base.routes)
    devs = []
    for i in range(nd):
        node = box.work / f"dev{i}"
        os.mknod(node, 0o600 | 0o020000, os.makedev(1, 3))  # a char node like /dev/null
        devs.append(f"{node}:/dev/s{i}")
    paths = []
    for i in range(np_):
        (box.work / f"share{i}").mkdir()
        paths.append(f"{box.work}/share{i}:/mnt/s{i}")
    bridge = f"{PREFIX}b{factor}"
    run(["ip", "link", "add", bridge, "type", "bridge"])
    box.links.append(bridge)
    run(["ip", "link", "set", bridge, "up"])
    nics = [(f"{PREFIX}{factor}v{i}", f"eth{i + 1}", f"10.{200 + factor}.{i}.2/24")
            for i in range(nn)]
    routes = [{"dest": f"10.{100 + factor}.{i // 250}.{i % 250}/32", "gw": f"10.{200 + factor}.0.1",
               "dev": "eth1"} for i in range(nr)]
    out: dict[str, tuple[float, float]] = {}
    try:
        box.start()

        def add() -> None:
            box.tool("add-device", box.cid, *devs)
            box.tool("add-path", box.cid, *paths)
            for host, inside, ip in nics:
                box.tool("add-nic", "--type", "veth", "--name", f"{host}:{inside}", "--ip", ip,
                         "--bridge", bridge, box.cid)
                box.links.append(host)
            if routes:
                box.tool("add-route", box.cid, json.dumps(routes))

        def lists() -> None:
            for what in ("device", "path", "nic", "route"):
                box.tool(f"list-{what}", box.cid)

        def restart() -> None:
            box.stop()
            box.start()

        def remove() -> None:
            if routes:
                box.tool("remove-route", box.cid, json.dumps(routes))
            for host, inside, _ in nics:
                box.tool("remove-nic", "--type", "veth", "--name", f"{host}:{inside}", box.cid)
            box.tool("remove-path", box.cid, *paths)
            box.tool("remove-device", box.cid, *devs)

        phase("add", out, add)
        phase("list", out, lists)
        phase("restart", out, restart)
        hook = int(box.times.read_text().split()[-1]) / 1e9
        check = run(["runc", "--root", box.root, "exec", box.cid, "sh", "-c",
                     f"ls /dev/s{nd - 1} && ls -d /mnt/s{np_ - 1} && ip -o link | grep -c eth"]).stdout
        assert check.strip().endswith(str(nn)), check
        out["prestart hook"] = (hook, float("nan"))
        phase("remove", out, remove)
    finally:
        box.stop()
        for link in box.links:
            run(["ip", "link", "del", link], check=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--paths", type=int, default=32)
    ap.add_argument("--nics", type=int, default=2)
    ap.add_argument("--routes", type=int, default=12)
    ap.add_argument("--factors", default="1,2,4")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    ensure_bytecode()
    factors = [int(f) for f in args.factors.split(",")]
    work = Path(tempfile.mkdtemp(prefix="sct-bench-scale-"))
    try:
        res = {f: one(work, f, args) for f in factors}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"base: {args.devices} devices, {args.paths} paths, {args.nics} NICs, "
          f"{args.routes} routes; seconds wall / CPU of the processes run")
    print(f"{'phase':<14}" + "".join(f"{f'{f}x wall':>10}{f'{f}x cpu':>9}" for f in factors)
          + f"{'wall ' + str(factors[-1]) + 'x/1x':>14}")
    for name in res[factors[0]]:
        row = "".join(f"{res[f][name][0]:>10.2f}{res[f][name][1]:>9.2f}" for f in factors)
        ratio = res[factors[-1]][name][0] / max(1e-9, res[factors[0]][name][0])
        print(f"{name:<14}{row}{ratio:>14.2f}")
    print(f"(linear: {factors[-1] / factors[0]:g}; quadratic: {(factors[-1] / factors[0]) ** 2:g})")


if __name__ == "__main__":
    main()
