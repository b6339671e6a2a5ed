#!/usr/bin/env python3
"""add-nic + remove-nic (veth on a bridge) through the real CLI vs. a shell
script of ``ip link`` / ``ip netns`` commands; then 8 NICs + 50 routes.

Run as root:  python bench/net.py [-n RUNS]

Makes its own runc container (busybox rootfs, private ``runc --root``, own
network namespace), a Linux bridge with an address in 10.219.0.0/16 and a
state directory, all removed at the end.  Each round times

* CLI:   ``syscontainer-tools add-nic --type veth --name eth1 --ip … --bridge BR C``
         then ``remove-nic --name eth1 C`` (two processes, as a user runs them)
* shell: one ``sh -c`` doing ``ip link add H type veth peer name eth1 netns NS``,
         ``ip -n NS addr add``, ``ip -n NS link set up``, ``ip link set H master BR up``;
         one ``sh -c`` doing ``ip link del H`` (NS = ``ip netns attach`` of the container)
* library: the same add + remove in-process (``nic.add_nic`` / ``nic.remove_nic``),
         to show what is Python start-up and what is netlink work

and prints the medians and their ratio.  Then it times adding 8 veth NICs
(8 add-nic calls) and 50 routes (one add-route call with 50 routes) to one
container, and removing them again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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
    timed,
    timed_cpu,
)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_bridge(name: str) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="bridge")
        index = ipr.link_lookup(ifname=name)[0]
        ipr.addr("add", index=index, address="10.219.0.1", prefixlen=16)
        ipr.link("set", index=index, state="up")


def delete_links(*names: str) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        for name in names:
            for index in ipr.link_lookup(ifname=name):
                with contextlib.suppress(Exception):  # best-effort cleanup
                    ipr.link("del", index=index)


def library_round(cid: str, root: str, state_dir: str, bridge: str) -> float:
    from syscontainer_tools.engines import Engine, find
    from syscontainer_tools.resources import nic
    from syscontainer_tools.resources.state import StateStore

    t0 = time.perf_counter()
    container = find(cid, Engine.RUNC, root)
    store = StateStore(state_dir)
    spec = nic.Nic.parse(type="veth", name="eth1", ip="10.219.1.2/16", bridge=bridge)
    with store.transaction(cid) as record:
        nic.add_nic(container, record, spec, ref=cid, store=store)
    with store.transaction(cid) as record:
        nic.remove_nic(container, record, nic.NicName("", "eth1"), ref=cid)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=15)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    ensure_bytecode()

    tag = f"{os.getpid() % 100000:05d}"
    work = Path(tempfile.mkdtemp(prefix="sct-netbench-"))
    root = str(work / "runc-root")
    cid, bridge, nsname, shell_host = f"sctnb{tag}", f"sctnb{tag}br", f"sctnb{tag}", f"sctnb{tag}h"
    state_dir = str(work / "state")
    try:
        pid = make_container(work, root, cid)
        make_bridge(bridge)
        run(["ip", "netns", "attach", nsname, str(pid)])
        env = dict(os.environ, SYSCONTAINER_ENGINE="runc", SYSCONTAINER_RUNTIME_ROOT=root,
                   SYSCONTAINER_STATE_DIR=state_dir, PYTHONPATH=str(REPO))
        # the console script next to the interpreter, as a user runs it (not python -m,
        # whose runpy costs start-up a user never pays)
        script = Path(args.python).parent / "syscontainer-tools"
        cli = [str(script)] if script.exists() else [args.python, "-m", "syscontainer_tools"]
        add = [*cli, "add-nic", "--type", "veth", "--name", "eth1", "--ip", "10.219.1.2/16",
               "--bridge", bridge, cid]
        rm = [*cli, "remove-nic", "--name", "eth1", cid]
        sh_add = ["sh", "-c",
                  f"ip link add {shell_host} type veth peer name eth1 netns {nsname} && "
                  f"ip -n {nsname} addr add 10.219.1.2/16 dev eth1 && "
                  f"ip -n {nsname} link set eth1 up && "
                  f"ip link set {shell_host} master {bridge} up"]
        sh_rm = ["sh", "-c", f"ip link del {shell_host}"]

        cli_runs, sh_runs, lib_times = rounds(
            args.runs, lambda: both(timed_cpu(add, env), timed_cpu(rm, env)),
            lambda: both(timed_cpu(sh_add), timed_cpu(sh_rm)),
            lambda: library_round(cid, root, state_dir, bridge))
        cli_times, sh_times = [r[0] for r in cli_runs], [r[0] for r in sh_runs]
        print(f"runs: {args.runs} (after 1 warm-up), container {cid}, bridge {bridge}")
        print(summary("CLI add-nic + remove-nic (veth):  ", cli_times))
        print(summary("shell ip link / ip netns:         ", sh_times))
        print(f"library add_nic + remove_nic:      median "
              f"{statistics.median(lib_times) * 1000:7.1f} ms (in-process, no start-up)")
        print(ratio("CLI/shell", cli_times, sh_times))
        print(cpu_line([r[1] for r in cli_runs], [r[1] for r in sh_runs]))

        # 8 NICs + 50 routes on one container
        t0 = time.perf_counter()
        for i in range(8):
            timed([*cli, "add-nic", "--type", "veth", "--name", f"eth{i + 1}",
                   "--ip", f"10.219.{10 + i}.2/16" if i == 0 else f"10.{220 + i}.0.2/24",
                   "--bridge", bridge, cid], env)
        t_nics = time.perf_counter() - t0
        rules = [{"dest": f"10.{100 + i // 8}.{i % 8}.0/24",
                  "gw": "10.219.0.1" if i % 2 else "", "dev": "" if i % 2 else f"eth{1 + i % 8}"}
                 for i in range(50)]
        t0 = time.perf_counter()
        timed([*cli, "add-route", cid, json.dumps(rules)], env)
        t_routes = time.perf_counter() - t0
        t0 = time.perf_counter()
        timed([*cli, "remove-route", cid, json.dumps(rules)], env)
        for i in range(8):
            timed([*cli, "remove-nic", "--name", f"eth{i + 1}", cid], env)
        t_clean = time.perf_counter() - t0
        print(f"8 add-nic calls: {t_nics * 1000:.0f} ms; add-route with 50 routes: "
              f"{t_routes * 1000:.0f} ms; total {(t_nics + t_routes) * 1000:.0f} ms")
        print(f"removing them again (1 remove-route + 8 remove-nic): {t_clean * 1000:.0f} ms")
    finally:
        subprocess.run(["ip", "netns", "delete", nsname], capture_output=True, check=False)
        subprocess.run(["runc", "--root", root, "delete", "--force", cid],
                       stdin=subprocess.DEVNULL, capture_output=True, check=False)
        delete_links(bridge, shell_host)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
