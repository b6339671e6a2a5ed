"""Keeping a FUSE connection alive across daemon restarts.

The kernel keeps a FUSE mount's connection alive while any process holds
its /dev/fuse descriptor; requests that arrive while no daemon reads them
wait in the kernel's queue (the reader blocks, it gets no error).  Three
holders pass the descriptor on, tried by ``serve`` in this order:

* systemd's file-descriptor store (``FileDescriptorStoreMax=``): the daemon
  sends ``FDSTORE=1`` with the descriptor; systemd keeps it while the unit
  restarts -- also after a SIGKILL -- and hands it back in ``LISTEN_FDS``;
* the running daemon's control socket ``<RUN_DIR>/<key>.sock``: a new
  ``serve`` asks for the descriptor (SCM_RIGHTS), starts answering, says
  ``serving``, and the old daemon finishes the requests it is on and exits
  without unmounting;
* a *keeper*: without systemd a small process (``python -m
  lxcfs_toolkit.handover keep``) holds the descriptor and gives it to the
  next ``serve`` after the daemon died (SIGKILL).  It ends when the
  connection ends (unmount) or a daemon stopping for good tells it to.

``<RUN_DIR>/<key>.json`` records the connection's protocol minor (there is
no second INIT) and the mount's device number.
"""

from __future__ import annotations

import array
import contextlib
import errno
import hashlib
import json
import logging
import os
import select
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

RUN_DIR = os.environ.get("LXCFS_TOOLKIT_RUN_DIR", "/run/lxcfs-toolkit")
FDNAME = "lxcfs-fuse"
SD_LISTEN_FDS_START = 3


def key(mountpoint: str) -> str:
    return hashlib.sha256(os.fsencode(mountpoint)).hexdigest()[:16]


def paths(mountpoint: str) -> tuple[str, str, str]:
    """(daemon socket, keeper socket, state file) for ``mountpoint``."""
    base = os.path.join(RUN_DIR, key(mountpoint))
    return base + ".sock", base + ".keeper", base + ".json"


@dataclass(frozen=True)
class Connection:
    fd: int
    minor: int | None
    source: str          # "systemd", "daemon", "keeper"
    old_pid: int = 0


def write_state(mountpoint: str, minor: int, dev: int) -> None:
    os.makedirs(RUN_DIR, mode=0o755, exist_ok=True)
    path = paths(mountpoint)[2]
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump({"version": 1, "mountpoint": mountpoint, "minor": minor, "dev": dev}, f)
    os.replace(tmp, path)


def read_state(mountpoint: str) -> dict[str, int]:
    try:
        with open(paths(mountpoint)[2]) as f:
            data = json.load(f)
        return data if isinstance(data, dict) and data.get("mountpoint") == mountpoint else {}
    except (OSError, ValueError):
        return {}


def remove_state(mountpoint: str) -> None:
    for path in paths(mountpoint)[2:]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


# --- the unix-socket protocol: one line request, one JSON line + fd back ----------------

def _ask(path: str, request: bytes, timeout: float = 5.0) -> tuple[socket.socket, dict[str, int], int]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(request + b"\n")
        fds = array.array("i")
        msg, anc, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        if not fds:
            raise ConnectionError(f"{path}: no descriptor in the answer")
        info = json.loads(msg.decode() or "{}")
        return sock, info, fds[0]
    except BaseException:
        sock.close()
        raise


def _send_fd(conn: socket.socket, info: dict[str, int], fd: int) -> None:
    conn.sendmsg([json.dumps(info).encode()],
                 [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def take_from_daemon(mountpoint: str) -> tuple[socket.socket, Connection] | None:
    """Ask the running daemon for the connection; None when none answers.

    The caller says ``serving`` on the returned socket once it answers
    requests (``confirm``); the old daemon then retires."""
    try:
        sock, info, fd = _ask(paths(mountpoint)[0], b"takeover")
    except (OSError, ValueError) as err:
        log.debug("no daemon to take over from: %s", err)
        return None
    return sock, Connection(fd, info.get("minor"), "daemon", int(info.get("pid", 0)))


def confirm(sock: socket.socket, timeout: float = 15.0) -> None:
    """Tell the old daemon we serve; wait until it has stopped answering."""
    try:
        sock.settimeout(timeout)
        sock.sendall(b"serving\n")
        sock.recv(64)   # "retired", or EOF when it exited
    except OSError as err:
        log.warning("the old daemon did not confirm it retired: %s", err)
    finally:
        sock.close()


def take_from_keeper(mountpoint: str) -> Connection | None:
    try:
        sock, info, fd = _ask(paths(mountpoint)[1], b"fd")
    except (OSError, ValueError) as err:
        log.debug("no keeper holds the connection: %s", err)
        return None
    sock.close()
    return Connection(fd, info.get("minor"), "keeper")


def daemon_running(mountpoint: str) -> bool:
    """Whether a daemon listens on ``mountpoint``'s control socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(paths(mountpoint)[0])
        except OSError:
            return False
    return True


def stop_keeper(mountpoint: str) -> None:
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        s.connect(paths(mountpoint)[1])
        s.sendall(b"quit\n")
        s.recv(16)


def listen(path: str) -> socket.socket:
    """A listening socket at ``path``, replacing whatever is there atomically."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.bind(tmp)
    os.chmod(tmp, 0o600)
    sock.listen(4)
    ino = os.stat(tmp).st_ino
    os.replace(tmp, path)
    _inodes[sock.fileno()] = ino
    return sock


_inodes: dict[int, int] = {}


def unlink_if_ours(sock: socket.socket, path: str) -> None:
    """Remove the socket file only if it is still ours (not a successor's)."""
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == _inodes.pop(sock.fileno(), -1):
            os.unlink(path)


class ControlServer:
    """The daemon's side: hand the connection to a successor, then retire.

    ``retire()`` is called on the accepting thread after the successor said
    ``serving``; it must stop the session's workers and return."""

    def __init__(self, path: str, fd: int, info: Callable[[], dict[str, int]],
                 retire: Callable[[], None]) -> None:
        self.path = path
        self.sock = listen(path)
        self.fd, self.info, self.retire = fd, info, retire
        self.retired = threading.Event()
        self._thread = threading.Thread(target=self._run, name="handover", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(30.0)
                    request = conn.recv(64).strip()
                    if request != b"takeover":
                        continue
                    _send_fd(conn, {**self.info(), "pid": os.getpid()}, self.fd)
                    if conn.recv(64).strip() != b"serving":
                        log.warning("a new daemon took the connection but did not start")
                        continue
                    log.info("a new daemon serves the mount: retiring")
                    self.retired.set()   # before retire() wakes the main thread
                    self.retire()
                    with contextlib.suppress(OSError):
                        conn.sendall(b"retired\n")
                    return
                except OSError as err:
                    log.warning("handover failed: %s", err)

    def close(self) -> None:
        unlink_if_ours(self.sock, self.path)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


# --- systemd --------------------------------------------------------------------------

def sd_notify(message: str, fds: list[int] | None = None) -> bool:
    """Send ``message`` (and descriptors) to $NOTIFY_SOCKET; False without systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        try:
            s.sendmsg([message.encode()], anc, 0, addr)
        except OSError as err:
            log.warning("sd_notify %r failed: %s", message.split("\n")[0], err)
            return False
    return True


def from_systemd() -> int | None:
    """The stored /dev/fuse descriptor systemd passes back (LISTEN_FDS), or None."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    count = int(os.environ.get("LISTEN_FDS", "0") or 0)
    names = (os.environ.get("LISTEN_FDNAMES") or "").split(":")
    found = None
    for i in range(count):
        fd = SD_LISTEN_FDS_START + i
        if i < len(names) and names[i] == FDNAME and found is None:
            found = fd
        else:
            with contextlib.suppress(OSError):
                os.close(fd)
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(var, None)
    return found


def connection_alive(fd: int) -> bool:
    """Whether the FUSE connection behind ``fd`` is still up (poll says POLLERR once aborted)."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return not any(ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, ev in p.poll(0))


# --- the keeper -------------------------------------------------------------------------

def spawn_keeper(mountpoint: str, fd: int) -> int:
    """Start the keeper holding ``fd`` (its own session: outlives the daemon)."""
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, "-m", "lxcfs_toolkit.handover", "keep", mountpoint, str(fd)],
        pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        start_new_session=True, close_fds=True)
    return proc.pid


KEEP_SECONDS = 60.0   # how long the keeper waits for a new daemon after the last one died


def attach(mountpoint: str) -> socket.socket | None:
    """A daemon's connection to the keeper: when it breaks (the daemon died)
    and no other daemon is attached, the keeper waits ``KEEP_SECONDS`` for
    one, then gives up the connection (readers then get ENOTCONN, as before)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(paths(mountpoint)[1])
        s.sendall(b"attach\n")
    except OSError:
        s.close()
        return None
    return s


def _mounted_dev(mountpoint: str) -> int | None:
    from syscontainer_tools import mountinfo

    try:
        top = mountinfo.top_mount(mountinfo.read(), mountpoint)
    except OSError:
        return None
    return top.dev if top is not None and top.fstype == "fuse.lxcfs" else None


def keep(mountpoint: str, fd: int, keep_seconds: float = KEEP_SECONDS) -> int:
    """The keeper's loop: hold ``fd``; hand it out.  It ends when the
    connection ends, when a daemon stopping for good says ``quit``, when the
    mount point no longer shows this connection (detached: no daemon could
    find it), or ``keep_seconds`` after the last attached daemon died."""
    import time

    sock = listen(paths(mountpoint)[1])
    dev = _mounted_dev(mountpoint)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    poller.register(fd, 0)   # only POLLERR/POLLHUP: the connection ended
    attached: dict[int, socket.socket] = {}
    orphaned_at: float | None = time.monotonic()   # a daemon killed before it attached counts
    try:
        while True:
            events = poller.poll(1000)
            if dev is not None and _mounted_dev(mountpoint) != dev:
                return 0
            if attached:
                orphaned_at = None
            elif orphaned_at is not None and time.monotonic() - orphaned_at > keep_seconds:
                print(f"lxcfs keeper: no daemon for {keep_seconds:g} s: giving up {mountpoint}",
                      file=sys.stderr)
                return 0
            for ready, ev in events:
                if ready == fd:
                    if ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                        return 0
                    continue
                if ready in attached:    # a daemon's attach connection: EOF = it died
                    poller.unregister(ready)
                    attached.pop(ready).close()
                    if not attached:
                        orphaned_at = time.monotonic()
                    continue
                conn, _ = sock.accept()
                conn.settimeout(5.0)
                try:
                    request = conn.recv(64).strip()
                    if request == b"attach":
                        attached[conn.fileno()] = conn
                        poller.register(conn.fileno(), select.POLLIN)
                        continue
                    if request == b"quit":
                        conn.sendall(b"bye\n")
                        return 0
                    if request == b"fd":
                        _send_fd(conn, read_state(mountpoint), fd)
                except OSError as err:
                    if err.errno != errno.EPIPE:
                        print(f"lxcfs keeper: {err}", file=sys.stderr)
                conn.close()
    finally:
        unlink_if_ours(sock, paths(mountpoint)[1])
        sock.close()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "keep":
        sys.exit(keep(sys.argv[2], int(sys.argv[3])))
    print("usage: python -m lxcfs_toolkit.handover keep MOUNTPOINT FD", file=sys.stderr)
    sys.exit(2)
