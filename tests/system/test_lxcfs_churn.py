"""Bursts of concurrent readers do not grow the Python lxcfs daemon.

Under libfuse 2 (the daemon's loop before lxcfs_toolkit/fuseloop.py) bursts
of concurrent requests kept creating and ending worker threads, and each
ended worker left its pinned Python thread state behind: megabytes a second
with 50 busy containers (bench/lxcfs_fleet.py).  The own loop keeps a fixed
set of long-lived workers; this test keeps it honest: 100 bursts of 100
simultaneous reads go through one daemon and its RSS must stay put.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_lxcfs_daemon import _skip_unless_ready, python_daemon

pytestmark = pytest.mark.system


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[object]:
    _skip_unless_ready()
    d = python_daemon(tmp_path / "mnt", tmp_path / "log")
    try:
        d.wait_up()
        yield d
    finally:
        d.stop()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def bursts(path: str, count: int, width: int) -> int:
    barrier = threading.Barrier(width)
    reads = [0] * width

    def one(i: int) -> None:
        for _ in range(count):
            barrier.wait()
            fd = os.open(path, os.O_RDONLY)
            while os.read(fd, 65536):
                pass
            os.close(fd)
            reads[i] += 1

    threads = [threading.Thread(target=one, args=(i,)) for i in range(width)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(reads)


def test_worker_churn_keeps_rss_flat(daemon) -> None:
    path = f"{daemon.mnt}/proc/meminfo"
    pid = daemon.proc.pid
    assert bursts(path, 20, 100) == 2000  # warm up: the allocator's high-water mark
    before = rss_kib(pid)
    assert bursts(path, 100, 100) == 10000
    grown = rss_kib(pid) - before
    assert grown < 4 * 1024, f"daemon RSS grew by {grown} KiB over 100 bursts"
    assert daemon.proc.poll() is None
