#!/usr/bin/env python3
"""Container lookup: runc's own state files against ``runc list`` + ``runc state``.

Run as root:  .venv/bin/python bench/lookup.py [-n RUNS] [--others 20]

Makes one runc container (busybox rootfs, private ``runc --root``) and
OTHERS more in the same root, then times ``engines.find()`` by a unique id
prefix, in this process, both ways in turn: as every command now does it
(reading ``<root>/<id>/state.json``) and as it did before (spawning
``runc list`` and ``runc state``).  Prints the medians and their ratio, and
checks both give the same container record.  Everything is named sctbl*
or made under a temp dir, and removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import make_bundle, run, start

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from syscontainer_tools.engines import Engine, find, runc  # noqa: E402

PREFIX = f"sctbl{os.getpid() % 10000}"


def timed_find(ref: str, root: str, runs: int) -> tuple[float, object]:
    out, found = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        found = find(ref, Engine.RUNC, root)
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out), found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=20)
    ap.add_argument("--others", type=int, default=20, help="more containers in the same root")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    work = Path(tempfile.mkdtemp(prefix="sct-bench-lookup-"))
    root = str(work / "runc")
    ids = [f"{PREFIX}-target"] + [f"{PREFIX}-o{i}" for i in range(args.others)]
    try:
        bundle = work / "bundle"
        make_bundle(bundle)
        for cid in ids:
            start(root, cid, bundle)
        ref = ids[0][:-2]  # a unique prefix: the listing is matched, then one state read
        timed_find(ref, root, 2)  # warm caches
        files, new = [], []
        cli, old = [], []
        list_local, state = runc.list_local, runc.state
        for _ in range(args.runs):
            ms, new = timed_find(ref, root, 1)
            files.append(ms)
            runc.list_local = lambda engine, runtime_root: None  # type: ignore[assignment]
            runc.state = runc.cli_state  # type: ignore[assignment]
            try:
                ms, old = timed_find(ref, root, 1)
                cli.append(ms)
            finally:
                runc.list_local, runc.state = list_local, state  # type: ignore[assignment]
        assert new == old, (new, old)
        f, c = statistics.median(files), statistics.median(cli)
        print(f"find() by id prefix among {len(ids)} runc containers, {args.runs} runs each:")
        print(f"  state files (now)          median {f:8.2f} ms")
        print(f"  runc list + runc state     median {c:8.2f} ms")
        print(f"  ratio files/CLI {f / c:.3f} ({c / f:.0f}x faster); same record: yes")
    finally:
        for cid in ids:
            run(["runc", "--root", root, "delete", "--force", cid], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
