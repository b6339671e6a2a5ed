"""Whose cgroups decide what a reader sees: C lxcfs's rule.

A reader in the daemon's own pid namespace is answered with its own
cgroups. A reader in another pid namespace (a container) is answered with
the cgroups of that namespace's init, found once per namespace and cached;
the cached init is checked through a pidfd on every use (one syscall) and
looked up again when it has exited.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass

from lxcfs_toolkit.heldgil import readlink
from lxcfs_toolkit.kernfile import read_text

log = logging.getLogger(__name__)


class ReaderGone(Exception):
    """The reading process exited before its view could be chosen."""


@dataclass
class _Init:
    pid: int
    pidfd: int | None
    proc: str = "/proc"

    def alive(self) -> bool:
        if self.pidfd is None:
            return os.path.exists(f"{self.proc}/{self.pid}")
        try:
            signal.pidfd_send_signal(self.pidfd, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True  # EPERM: it exists
        return True

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _status(proc: str, pid: int) -> tuple[int | None, list[str]]:
    """(PPid, NSpid fields) from /proc/PID/status."""
    text = read_text(f"{proc}/{pid}/status") or ""
    ppid, nspid = None, []
    for line in text.splitlines():
        if line.startswith("PPid:"):
            ppid = int(line.split()[1])
        elif line.startswith("NSpid:"):
            nspid = line.split()[1:]
    return ppid, nspid


class PidNamespaces:
    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self.own = readlink(f"{proc}/self/ns/pid".encode())
        self._inits: dict[bytes, _Init] = {}
        self._lock = threading.Lock()

    def namespace(self, pid: int) -> bytes:
        ns = readlink(f"{self.proc}/{pid}/ns/pid".encode())
        if ns is None:
            raise ReaderGone(pid)
        return ns

    def view_pid(self, pid: int) -> tuple[int, int | None]:
        """(pid whose cgroups to use, init pid or None when sharing the daemon's namespace)."""
        ns = self.namespace(pid)
        if ns == self.own:
            return pid, None
        init = self._inits.get(ns)
        if init is not None and init.alive():
            return init.pid, init.pid
        found = self._find_init(ns, pid)
        if found is None:
            log.debug("no init found for %s (reader %d); using the reader", ns, pid)
            return pid, pid
        pidfd: int | None = None
        if self.proc == "/proc":  # a pidfd names a real process, not one of a test tree
            try:
                pidfd = os.pidfd_open(found)
            except OSError:
                pidfd = None
        with self._lock:
            old = self._inits.pop(ns, None)
            self._inits[ns] = _Init(found, pidfd, self.proc)
        if old is not None:
            old.close()
        return found, found

    def _find_init(self, ns: bytes, pid: int) -> int | None:
        # Usually the reader descends from its namespace's init: walk up.
        cur: int | None = pid
        while cur and cur > 1:
            ppid, nspid = _status(self.proc, cur)
            if nspid and nspid[-1] == "1":
                return cur
            if ppid is None or self._ns_of(ppid) != ns:
                break
            cur = ppid
        # Entered with setns (exec into a container): scan /proc.
        for name in os.listdir(self.proc):
            if name.isdigit() and self._ns_of(int(name)) == ns:
                _, nspid = _status(self.proc, int(name))
                if nspid and nspid[-1] == "1":
                    return int(name)
        return None

    def _ns_of(self, pid: int) -> bytes | None:
        return readlink(f"{self.proc}/{pid}/ns/pid".encode())
