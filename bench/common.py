"""What the benchmarks share: running commands, timing them, a runc container."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any


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


def timed_cpu(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``argv``; CPU is the user + system
    time of it and the children it waited for.  On a shared machine CPU time
    is the steadier measure: wall time also counts the waits for a core."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(argv, env)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def spread(values: list[float]) -> str:
    """``median (min .. max)`` in ms."""
    import statistics

    return (f"{statistics.median(values) * 1000:7.1f} ms "
            f"({min(values) * 1000:.1f} .. {max(values) * 1000:.1f})")


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
