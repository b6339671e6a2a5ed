"""Keep the daemon's threads on one CPU while several readers hammer it.

Only one thread runs Python at a time (the GIL). With one reader that is
no problem: requests arrive one after another and the scheduler runs the
worker next to the reader. With several concurrent readers, libfuse workers
queue for the GIL, and when they sit on different CPUs every hand-over is a
cross-CPU wake-up; those hand-overs, not our code, then bound throughput
(measured here: ~9,500 reads/s spread over 2 CPUs, ~17,000 on one). Pinned
to one CPU, the hand-over happens when the running worker blocks.

Pinning costs a cross-CPU wake-up per request for a lone reader on another
CPU, so the governor pins only while opens arrive fast (> ``PIN_RATE``/s)
from interleaved callers (more than ``PIN_SWITCH`` of consecutive opens come
from a different pid than the one before), and unpins when that stops.
Decisions are taken at most every ``WINDOW`` seconds.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

WINDOW = 0.2
PIN_RATE, UNPIN_RATE = 2000.0, 1000.0
PIN_SWITCH, UNPIN_SWITCH = 0.3, 0.1


class AffinityGovernor:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.allowed = frozenset(os.sched_getaffinity(0))
        self.cpu = max(self.allowed)  # CPU 0 tends to take more interrupts
        self.enabled = len(self.allowed) > 1
        self.pinned = False
        self._tids: set[int] = set()
        self._lock = threading.Lock()
        self._window_end = clock() + WINDOW
        self._opens = self._switches = self._last_pid = 0

    def register_thread(self) -> None:
        """Called once on each FUSE worker (and the main thread)."""
        tid = threading.get_native_id()
        with self._lock:
            self._tids.add(tid)
            if self.pinned:
                self._set(tid, {self.cpu})

    def note_open(self, pid: int) -> None:
        self._opens += 1
        if pid != self._last_pid:
            self._switches += 1
            self._last_pid = pid
        if self._opens & 31 == 0 and self.enabled:
            now = self._clock()
            if now >= self._window_end:
                self._decide(now)

    def _decide(self, now: float) -> None:
        span = now - self._window_end + WINDOW
        rate = self._opens / span if span > 0 else 0.0
        switching = self._switches / self._opens if self._opens else 0.0
        self._window_end = now + WINDOW
        self._opens = self._switches = 0
        if not self.pinned and rate > PIN_RATE and switching > PIN_SWITCH:
            self._apply(True)
        elif self.pinned and (rate < UNPIN_RATE or switching < UNPIN_SWITCH):
            self._apply(False)

    def _apply(self, pin: bool) -> None:
        mask = {self.cpu} if pin else set(self.allowed)
        with self._lock:
            self.pinned = pin
            for tid in list(self._tids):
                if not self._set(tid, mask):
                    self._tids.discard(tid)
        log.debug("daemon threads %s", f"pinned to CPU {self.cpu}" if pin else "unpinned")

    @staticmethod
    def _set(tid: int, mask: set[int]) -> bool:
        try:
            os.sched_setaffinity(tid, mask)
        except OSError:
            return False  # the thread has exited
        return True
