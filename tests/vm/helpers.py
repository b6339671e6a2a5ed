"""Small helpers of the guest-only tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.system.waits import scaled
from tests.vm.conftest import DISK, TIME_SCALE

HOOKS = str(Path(sys.executable).parent / "syscontainer-hooks")


def wait_for(cond: Callable[[], Any], what: str, seconds: float = 10) -> Any:
    """Poll ``cond`` until it is true; the wait scales with the guest's speed."""
    deadline = time.monotonic() + scaled(seconds)
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def hooks_for(state_dir: str, *extra: str) -> dict[str, Any]:
    def entry(stage: str) -> dict[str, Any]:
        return {"path": HOOKS, "args": ["syscontainer-hooks", "--state", stage,
                                        "--state-dir", state_dir, *extra],
                "timeout": int(60 * TIME_SCALE)}

    return {"prestart": [entry("prestart")], "poststop": [entry("poststop")]}


def disk() -> tuple[str, list[str]]:
    """The lane's virtio-blk disk and its partitions (a real DOS table)."""
    assert DISK, "the lane attaches a virtio disk (SYSCONTAINER_VM_DISK)"
    name = os.path.basename(DISK)
    parts = sorted(f"/dev/{p.name}" for p in Path(f"/sys/block/{name}").glob(f"{name}[0-9]*"))
    return DISK, parts


def record(state_dir: str, cid: str) -> dict[str, Any]:
    return json.loads((Path(state_dir) / cid / "state.json").read_text())


def sh(cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd!r} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc
