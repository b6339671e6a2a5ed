"""Load averages computed on demand, and the CPU-affinity governor's decisions."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lxcfs_toolkit import affinity
from lxcfs_toolkit.affinity import AffinityGovernor
from lxcfs_toolkit.loadavg import LoadTracker, count_states


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _task(proc: Path, tid: int, state: str) -> None:
    (proc / str(tid)).mkdir(parents=True)
    (proc / str(tid) / "stat").write_text(f"{tid} (odd ) name) {state} 1 1 1\n")


def test_count_states_reads_state_after_comm(tmp_path: Path) -> None:
    for tid, state in ((10, "R"), (11, "D"), (12, "S"), (13, "R")):
        _task(tmp_path, tid, state)
    assert count_states([10, 11, 12, 13, 99], str(tmp_path)) == (2, 1, 13)


def test_load_tracker_decays_towards_current_count(tmp_path: Path) -> None:
    _task(tmp_path, 1, "R")
    _task(tmp_path, 2, "S")
    clock = Clock()
    tracker = LoadTracker(clock)
    first = tracker.sample("cg", [1, 2], str(tmp_path))
    assert (first.avg1, first.avg5, first.avg15, first.running, first.total, first.last_pid) == (1, 1, 1, 1, 2, 2)
    (tmp_path / "1" / "stat").write_text("1 (x) S 1\n")
    clock.now = 60.0
    later = tracker.sample("cg", [1, 2], str(tmp_path))
    assert later.avg1 == pytest.approx(math.exp(-1))
    assert later.avg5 == pytest.approx(math.exp(-60 / 300))
    assert later.avg1 < later.avg5 < later.avg15 < 1
    other = tracker.sample("other-cg", [2], str(tmp_path))
    assert other.avg1 == 0.0  # a different cgroup has its own averages


def test_governor_pins_only_for_fast_interleaved_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[bool] = []
    clock = Clock()
    gov = AffinityGovernor(clock)
    gov.enabled = True
    monkeypatch.setattr(gov, "_apply", lambda pin: (applied.append(pin), setattr(gov, "pinned", pin)))

    def burst(pids: list[int], seconds: float) -> None:
        for pid in pids:
            clock.now += seconds / len(pids)
            gov.note_open(pid)

    burst([7] * 2000, 0.25)  # one fast reader: never pinned
    assert applied == []
    burst([1, 2, 3, 4] * 500, 0.25)  # 8,000 opens/s from 4 interleaved readers
    assert applied == [True]
    burst([1, 2, 3, 4] * 10, affinity.WINDOW * 2)  # slowed down: unpinned again
    burst([1] * 64, affinity.WINDOW * 2)
    assert applied[-1] is False
