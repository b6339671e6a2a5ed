"""What the benchmarks share: running commands, timing them, a runc container."""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def ensure_bytecode() -> None:
    """Compile the packages' bytecode, as an installed package has it (the
    wheel's and the RPM's install do; a checkout run with
    PYTHONDONTWRITEBYTECODE=1 would otherwise compile every changed module
    at every start-up and time that instead)."""
    import compileall

    for package in ("syscontainer_tools", "lxcfs_toolkit"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    print("bytecode: compiled (as installed packages have it)")


def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(argv, check=kw.pop("check", True), stdin=subprocess.DEVNULL, **kw)


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds one run of ``argv`` took; a failure ends the benchmark."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return elapsed


def rounds(runs: int, *steps: Callable[[], T]) -> list[list[T]]:
    """What each step returns (its seconds, say) in each of ``runs`` rounds,
    after one warm-up round."""
    times: list[list[T]] = [[] for _ in steps]
    for i in range(runs + 1):          # round 0 warms up
        took = [step() for step in steps]
        if i:
            for out, t in zip(times, took):
                out.append(t)
    return times


def timed_cpu(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``argv``; CPU is the user + system
    time of it and the children it waited for.  On a shared machine CPU time
    is the steadier measure: wall time also counts the waits for a core."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(argv, env)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def both(*runs: tuple[float, float]) -> tuple[float, float]:
    """The summed (wall, CPU) of several ``timed_cpu`` runs."""
    return sum(r[0] for r in runs), sum(r[1] for r in runs)


def spread(values: list[float]) -> str:
    """``median (min .. max)`` in ms."""
    return (f"{statistics.median(values) * 1000:7.1f} ms "
            f"({min(values) * 1000:.1f} .. {max(values) * 1000:.1f})")


def cpu_line(cli: list[float], ref: list[float]) -> str:
    """CPU times of the CLI and the reference, and the ratio of their best."""
    return (f"CPU (user+sys) CLI: {spread(cli)}; reference: {spread(ref)}; "
            f"ratio of the best: {min(cli) / max(min(ref), 1e-3):.2f}")


def summary(label: str, times: list[float]) -> str:
    """``label median X ms (min Y, max Z)``."""
    return (f"{label} median {statistics.median(times) * 1000:7.1f} ms "
            f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})")


def ratio(label: str, times: list[float], base: list[float]) -> str:
    """The round-by-round ratio of ``times`` to ``base``: median, min, max."""
    ratios = [a / b for a, b in zip(times, base)]
    return (f"ratio {label}: median {statistics.median(ratios):.2f} "
            f"(pairwise min {min(ratios):.2f}, max {max(ratios):.2f})")


def make_bundle(bundle: Path, applets: tuple[str, ...] = ("sh", "sleep"),
                hooks: dict[str, Any] | None = None) -> None:
    """A busybox rootfs and a runc config.json running ``sleep``."""
    rootfs = bundle / "rootfs"
    for d in ("bin", "dev", "proc", "sys", "etc", "tmp", "mnt"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", rootfs / "bin" / "busybox")
    for applet in applets:
        (rootfs / "bin" / applet).symlink_to("busybox")
    run(["runc", "spec", "--bundle", str(bundle)])
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"].update(terminal=False, args=["/bin/sleep", "1000000"])
    cfg["root"]["readonly"] = False
    if hooks:
        cfg["hooks"] = hooks
    (bundle / "config.json").write_text(json.dumps(cfg))


def start(root: str, cid: str, bundle: Path) -> int:
    """runc run -d (its stdio to a log: a pipe would never see EOF); the init's pid."""
    log = bundle.parent / f"{cid}.runc.log"
    with open(log, "w") as out:
        proc = subprocess.run(["runc", "--root", root, "run", "-d", cid], cwd=bundle,
                              stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"runc run {cid}: {log.read_text()}")
    return int(json.loads(run(["runc", "--root", root, "state", cid]).stdout)["pid"])


def make_container(work: Path, root: str, cid: str,
                   applets: tuple[str, ...] = ("sh", "sleep")) -> int:
    bundle = work / "bundle"
    make_bundle(bundle, applets)
    return start(root, cid, bundle)


def rmdir_cgroup(d: Path, root: Path) -> None:
    """Move what is left in cgroup ``d`` to ``root`` and remove ``d``."""
    for _ in range(50):
        try:
            for pid in (d / "cgroup.procs").read_text().split():
                with suppress(OSError):
                    (root / "cgroup.procs").write_text(pid)
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    print(f"could not remove cgroup {d}", file=sys.stderr)


def start_lxcfs(stack: ExitStack, kind: str, mnt: str, extra: list[str], *,
                cwd: str | Path = ROOT) -> subprocess.Popen[bytes]:
    """The C lxcfs (``kind`` "c", with ``extra`` flags such as -l) or the
    Python one run from ``cwd`` (any other kind, with ``extra`` arguments)
    serving at ``mnt``: up once its proc/meminfo shows, stopped and
    unmounted when ``stack`` closes."""
    cmd = (["lxcfs", "-f", *extra, "-p", mnt + ".pid", mnt] if kind == "c"
           else [sys.executable, "-m", "lxcfs_toolkit.server", *extra, mnt])
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stack.callback(_stop_lxcfs, proc, mnt)
    for _ in range(200):
        if os.path.exists(f"{mnt}/proc/meminfo"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"{kind} lxcfs did not come up at {mnt}")


def _stop_lxcfs(proc: subprocess.Popen[bytes], mnt: str) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    subprocess.run(["umount", "-l", mnt], stderr=subprocess.DEVNULL, check=False)
