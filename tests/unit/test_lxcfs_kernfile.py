"""kernfile.OpenFiles: pseudo files kept open and re-read with pread."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lxcfs_toolkit.kernfile import OpenFiles, kernel_pseudo_fs


def test_only_procfs_and_cgroupfs_are_kept(tmp_path: Path) -> None:
    fd = os.open("/proc/self/stat", os.O_RDONLY)
    try:
        assert kernel_pseudo_fs(fd)
    finally:
        os.close(fd)
    (tmp_path / "f").write_text("x")
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        assert not kernel_pseudo_fs(fd)
    finally:
        os.close(fd)
    files = OpenFiles()
    assert files.read(str(tmp_path / "f")) == b"x"
    assert len(files) == 0            # a removed temp file would keep its content: never kept
    (tmp_path / "f").unlink()
    assert files.read(str(tmp_path / "f")) is None
    assert (files.read("/proc/meminfo") or b"").startswith(b"MemTotal:")
    assert len(files) == 1
    files.close()


def test_a_dead_process_file_is_not_answered_from_the_kept_one() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    files = OpenFiles()
    try:
        path = f"/proc/{child.pid}/status"
        for _ in range(2):
            assert f"Pid:\t{child.pid}\n".encode() in (files.read(path) or b"")
        assert len(files) == 1
    finally:
        child.kill()
        child.wait()
    assert files.read(path) is None   # ESRCH on the kept file, ENOENT on reopening
    assert len(files) == 0
    files.close()


def test_rereads_see_new_content_and_the_least_recently_read_goes_first(tmp_path: Path) -> None:
    files = OpenFiles(limit=2, keepable=lambda fd: True)
    paths = [tmp_path / name for name in "abc"]
    for i, p in enumerate(paths[:2]):
        p.write_text(f"v{i}\n")
        assert files.read(str(p)) == f"v{i}\n".encode()
    files.read(str(paths[0]))          # a is now newer than b
    paths[2].write_text("v2\n")
    assert files.read(str(paths[2])) == b"v2\n"
    assert len(files) == 2
    assert set(files._fds) == {str(paths[0]), str(paths[2])}   # b went
    paths[2].write_text("a much longer new content\n")   # same inode: pread sees it
    assert files.read_text(str(paths[2])) == "a much longer new content\n"
    big = "y" * 200_000
    paths[1].write_text(big)                              # longer than one pread chunk
    assert files.read_text(str(paths[1])) == big
    files.close()
    assert len(files) == 0
    assert files.read(str(paths[0])) == b"v0\n"
    assert len(files) == 0            # closed for good: nothing is kept any more


def test_kept_files_stay_within_half_the_fd_limit(tmp_path: Path) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    files = OpenFiles(limit=1000, keepable=lambda fd: True)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        for i in range(100):
            (tmp_path / str(i)).write_text(str(i))
            assert files.read(str(tmp_path / str(i))) == str(i).encode()
        assert len(files) == 32
    finally:
        files.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_files_not_read_for_the_idle_time_are_closed(tmp_path: Path) -> None:
    now = [100.0]
    files = OpenFiles(keepable=lambda fd: True, idle=30.0, clock=lambda: now[0])
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a\n")
    b.write_text("b\n")
    files.read(str(a))
    now[0] += 20
    files.read(str(b))
    assert len(files) == 2
    now[0] += 15                      # a unread for 35 s, b for 15 s
    held = dict(files._fds)
    assert files.read(str(b)) == b"b\n"
    assert set(files._fds) == {str(b)}
    fd_a = held[str(a)][0]
    try:
        os.fstat(fd_a)
        raise AssertionError("the idle file's descriptor is still open")
    except OSError:
        pass
    assert files.read(str(a)) == b"a\n"    # read again: opened anew
    assert len(files) == 2
    files.close()


def test_concurrent_readers_never_share_or_leak_a_descriptor(tmp_path: Path) -> None:
    """No lock on the read path: threads reading the same and different files while
    the limit keeps closing the oldest must each get their own file's content,
    and closing leaves no descriptor behind."""
    import sys
    import threading

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    paths = []
    for i in range(12):
        p = tmp_path / f"f{i}"
        p.write_text(f"content of {i}\n" * (i + 1))
        paths.append(p)
    before = open_fds()
    files = OpenFiles(limit=5, keepable=lambda fd: True)
    wrong: list[str] = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)   # switch threads as often as possible
    try:
        def worker(seed: int) -> None:
            for n in range(1500):
                i = (seed * 7 + n) % len(paths)
                if files.read(str(paths[i])) != paths[i].read_bytes():
                    wrong.append(str(paths[i]))
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []
    assert len(files) <= 5 + len(threads)   # racing opens may each add one before evicting
    files.close()
    assert open_fds() == before
