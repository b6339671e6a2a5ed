#!/usr/bin/env python3
"""Time ``lxcfs-toolkit remount all`` after an lxcfs restart (run as root).

Starts an lxcfs daemon (C ``lxcfs`` by default, ``--daemon python`` for
this project's) on a private directory under /run, N busybox runc
containers with lxcfs-hook as their prestart hook, kills the daemon with
SIGKILL (every container's lxcfs mounts go stale), runs ``prestart``,
starts the daemon again, and times ``remount all`` as a user would run it
(a fresh ``python -m lxcfs_toolkit.cli`` process: start-up, container
listing, one forked child per container).  Then checks that every
container reads its memory limit again, and times a second ``remount all``
that finds every mount live and changes nothing.  Everything it made is
removed at the end.

    sudo .venv/bin/python bench/remount.py [-n 20] [--runs 3] [--daemon c|python]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lxcfs_toolkit import viewmounts  # noqa: E402
from syscontainer_tools import mountinfo, syscalls  # noqa: E402
from tests.system.conftest import Ctr, make_rootfs, write_config  # noqa: E402

MEMORY = 256 << 20


def toolkit(directory: str, root: str, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = dict(os.environ, LXCFS_DIR=directory, SYSCONTAINER_ENGINE="runc",
               SYSCONTAINER_RUNTIME_ROOT=root)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lxcfs_toolkit.cli", *args], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc


def start_daemon(kind: str, directory: str, log: Path,
                 python: str) -> subprocess.Popen[bytes]:
    argv = (["lxcfs", "-f", directory] if kind == "c"
            else [python, "-m", "lxcfs_toolkit.server", directory])
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                cwd=log.parent, start_new_session=True)
    viewmounts.wait_daemon(directory, 15)
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--containers", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3, help="kill/restart/remount rounds")
    parser.add_argument("--daemon", choices=("c", "python"), default="c")
    parser.add_argument("--python", default=os.environ.get("LXCFS_SERVER_PYTHON", sys.executable),
                        help="interpreter that runs lxcfs_toolkit.server (--daemon python)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/remount.py needs root", file=sys.stderr)
        return 2

    prefix = "lxbench" + secrets.token_hex(3)
    work = Path(tempfile.mkdtemp(prefix=prefix))
    runc_root = f"/run/{prefix}-runc"
    parent = f"/run/{prefix}-lxcfs"
    directory = f"{parent}/lxcfs"
    hook = Path(sys.executable).parent / "lxcfs-hook"
    ctrs: list[Ctr] = []
    daemon: subprocess.Popen[bytes] | None = None
    try:
        template = work / "rootfs"
        make_rootfs(template)
        _, proc = toolkit(directory, runc_root, "prestart")
        assert proc.returncode == 0, proc.stderr
        daemon = start_daemon(args.daemon, directory, work / "daemon.log", args.python)
        t0 = time.perf_counter()
        for i in range(args.containers):
            bundle = work / f"c{i}"
            bundle.mkdir()
            shutil.copytree(template, bundle / "rootfs", symlinks=True)
            write_config(bundle, memory=MEMORY, hooks={"prestart": [{
                "path": str(hook), "args": ["lxcfs-hook", "--lxcfs-dir", directory]}]})
            ctr = Ctr(f"{prefix}-{i}", bundle, runc_root)
            ctrs.append(ctr)
            ctr.start()
        print(f"{args.containers} containers started with lxcfs-hook in "
              f"{time.perf_counter() - t0:.2f} s ({args.daemon} lxcfs)")

        stale_times, live_times = [], []
        for _ in range(args.runs):
            daemon.kill()
            daemon.wait()
            _, proc = toolkit(directory, runc_root, "prestart")
            assert proc.returncode == 0, proc.stderr
            daemon = start_daemon(args.daemon, directory, work / "daemon.log", args.python)
            elapsed, proc = toolkit(directory, runc_root, "remount", "all")
            assert proc.returncode == 0, proc.stderr
            assert len(proc.stdout.splitlines()) == args.containers, proc.stdout
            stale_times.append(elapsed)
            for ctr in ctrs:
                out = ctr.exec("head", "-n", "1", "/proc/meminfo").stdout
                assert int(out.split()[1]) == MEMORY >> 10, (ctr.id, out)
            elapsed, proc = toolkit(directory, runc_root, "remount", "all")
            assert proc.returncode == 0, proc.stderr
            live_times.append(elapsed)
        elapsed, _ = toolkit(directory, runc_root, "--help")
        print(f"remount all, {args.containers} containers with stale mounts: "
              f"total {statistics.median(stale_times):.3f} s (median of {args.runs}; "
              f"runs {', '.join(f'{t:.3f}' for t in stale_times)})")
        print(f"remount all, {args.containers} containers all live (nothing to do): "
              f"total {statistics.median(live_times):.3f} s")
        print(f"lxcfs-toolkit --help (interpreter start-up and imports): {elapsed:.3f} s")
        return 0
    finally:
        for ctr in ctrs:
            with contextlib.suppress(Exception):
                ctr.stop()
        if daemon is not None:
            daemon.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.wait(10)
        for _ in range(8):
            top = mountinfo.top_mount(mountinfo.read(), directory)
            if top is None or not top.fstype.startswith("fuse"):
                break
            syscalls.umount(directory, syscalls.MNT_DETACH)
        with contextlib.suppress(OSError):
            if mountinfo.top_mount(mountinfo.read(), parent):
                syscalls.umount(parent, syscalls.MNT_DETACH)
        shutil.rmtree(parent, ignore_errors=True)
        shutil.rmtree(runc_root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
