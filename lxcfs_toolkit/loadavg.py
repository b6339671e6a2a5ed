"""Per-container load averages, computed when someone reads /proc/loadavg.

C lxcfs (with -l) runs a thread that walks every cgroup every 5 seconds. Here
nothing runs in the background: each render counts the cgroup's runnable
(R) and uninterruptible (D) threads and folds that count into exponentially
decaying 1/5/15-minute averages, decayed by the time since the previous
render of the same cgroup. The first read of a cgroup reports the current
count; the averages are as smooth as the reads are frequent (the FUSE
layer's 100 ms cache bounds the sampling rate). Cgroups not read for 15
minutes are forgotten.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from lxcfs_toolkit import kernfile
from lxcfs_toolkit.heldgil import read_small
from lxcfs_toolkit.views.inputs import Load

WINDOWS = (60.0, 300.0, 900.0)
FORGET_AFTER = 900.0
KEEP_TASKS = 64   # a cgroup with up to this many threads: their stat files stay open


def count_states(tids: Collection[int], proc: str = "/proc",
                 reader: int = 0) -> tuple[int, int, int]:
    """(running, uninterruptible, last tid seen alive) among the given threads.

    ``reader`` (the thread reading /proc/loadavg, blocked in D on the FUSE
    request right now) is not counted: an idle container would otherwise
    always show a load of 1. The stat files of a small cgroup's threads stay
    open (``kernfile.held``: a dead thread's file fails and is looked up anew)."""
    running = blocked = last = 0
    keep = len(tids) <= KEEP_TASKS
    for tid in tids:
        if tid == reader:
            last = max(last, tid)
            continue
        path = f"{proc}/{tid}/stat"
        data = kernfile.held.read(path) if keep else read_small(path.encode())
        if not data:
            continue
        end = data.rfind(b")")
        state = data[end + 2 : end + 3]
        if state == b"R":
            running += 1
        elif state == b"D":
            blocked += 1
        last = max(last, tid)
    return running, blocked, last


@dataclass
class _Averages:
    when: float
    values: list[float]


class LoadTracker:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, _Averages] = {}
        self._last_sweep = clock()

    def sample(self, key: str, tids: list[int], proc: str = "/proc", reader: int = 0) -> Load:
        running, blocked, last = count_states(tids, proc, reader)
        active = running + blocked
        now = self._clock()
        with self._lock:
            avg = self._state.get(key)
            if avg is None:
                avg = self._state[key] = _Averages(now, [float(active)] * len(WINDOWS))
            else:
                dt = max(0.0, now - avg.when)
                for i, window in enumerate(WINDOWS):
                    decay = math.exp(-dt / window)
                    avg.values[i] = avg.values[i] * decay + active * (1.0 - decay)
                avg.when = now
            values = list(avg.values)
            if now - self._last_sweep > FORGET_AFTER:
                self._last_sweep = now
                for k in [k for k, a in self._state.items() if now - a.when > FORGET_AFTER]:
                    del self._state[k]
        return Load(values[0], values[1], values[2], running, len(tids), last)
