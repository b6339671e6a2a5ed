"""The one value every command and hook works on: a found container."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from . import syscalls
from .errors import ToolError
from .log import get_logger
from .quickjson import loads as json_loads  # json.loads without importing json
from .textenum import TextEnum

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

log = get_logger(__name__)


class Engine(TextEnum):
    """The engine (or bare runtime) a container is found through; ``engines``
    lists and inspects each (``engines.module_of``)."""

    AUTO = "auto"
    ISULA = "isula"
    DOCKER = "docker"
    PODMAN = "podman"
    CONTAINERD = "containerd"
    RUNC = "runc"
    CRUN = "crun"

    @property
    def binary(self) -> str:
        return "ctr" if self is Engine.CONTAINERD else self.value

    @classmethod
    def parse(cls, value: str) -> Engine:
        try:
            return cls(value.lower())
        except ValueError:
            choices = ", ".join(e.value for e in cls)
            raise ToolError(f"unknown engine {value!r}: one of {choices}") from None


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    engine: Engine | None       # None when built from the OCI state a hook is given
    status: str                 # running, created, stopped, paused, ...
    pid: int                    # init's pid on the host, 0 when not running
    bundle: str | None = None
    rootfs: str | None = None
    spec: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    pid_start: int | None = None  # /proc/PID/stat start time of ``pid`` when it was looked up
    runtime_root: str | None = None
    runtime: str | None = None    # the OCI runtime program the engine starts it with, if known

    @property
    def running(self) -> bool:
        """Whether there is a live init to apply changes to (runc's
        ``created`` counts: prestart hooks run then)."""
        return self.pid > 0 and self.status in ("running", "created", "creating", "paused")

    @property
    def env(self) -> dict[str, str]:
        out = {}
        for item in self.spec.get("process", {}).get("env", []) or []:
            key, _, value = str(item).partition("=")
            out[key] = value
        return out

    @classmethod
    def from_oci_state(cls, state: dict[str, Any]) -> Container:
        """Build from the OCI state a runtime passes to a hook on stdin."""
        try:
            cid = str(state["id"])
            pid = int(state.get("pid") or 0)
            bundle = str(state["bundle"])
        except (KeyError, TypeError, ValueError) as err:
            raise ToolError(f"OCI state lacks a valid field: {err}") from None
        spec = load_spec(bundle)
        rootfs = spec.get("root", {}).get("path", "rootfs")
        return cls(id=cid, name=str(state.get("annotations", {}).get("name", cid) or cid),
                   engine=None, status=str(state.get("status", "created")), pid=pid,
                   bundle=bundle, rootfs=os.path.join(bundle, rootfs), spec=spec,
                   pid_start=start_time_or_none(pid))

    @contextlib.contextmanager
    def init_process(self) -> Iterator[int]:
        """Yield a pidfd of the container's init, checked to be that process.

        The pidfd pins the process: a pid that died and was reused can never
        be entered through it.  The check compares the process's start time
        with the one seen when the container was looked up."""
        if not self.running:
            raise ToolError(f"container {self.id} is not running")
        try:
            pidfd = syscalls.pidfd_open(self.pid)
        except OSError:
            raise ToolError(f"container {self.id}: its init (pid {self.pid}) is gone") from None
        try:
            if self.pid_start is not None and start_time_or_none(self.pid) != self.pid_start:
                raise ToolError(f"container {self.id}: pid {self.pid} no longer belongs to it")
            yield pidfd
        finally:
            os.close(pidfd)

    def host_ids(self, uid: int = 0, gid: int = 0) -> tuple[int, int]:
        """The host uid/gid that ``uid``/``gid`` inside the container map to."""
        if not self.running:
            return (_map_spec(self.spec.get("linux", {}).get("uidMappings"), uid),
                    _map_spec(self.spec.get("linux", {}).get("gidMappings"), gid))
        return (_map_file(f"/proc/{self.pid}/uid_map", uid),
                _map_file(f"/proc/{self.pid}/gid_map", gid))


def load_spec(bundle: str) -> dict[str, Any]:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            spec = json_loads(f.read())
    except FileNotFoundError:
        raise ToolError(f"bundle {bundle} has no config.json") from None
    except ValueError as err:
        raise ToolError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(spec, dict):
        raise ToolError(f"{path} is not a JSON object")
    return spec


def start_time_or_none(pid: int) -> int | None:
    if pid <= 0:
        return None
    try:
        return syscalls.proc_start_time(pid)
    except (OSError, ValueError, IndexError):
        return None


def _map_file(path: str, ident: int) -> int:
    try:
        with open(path, encoding="ascii") as f:
            rows = [tuple(int(x) for x in line.split()) for line in f if line.strip()]
    except OSError:
        return ident
    return _lookup(rows, ident)


def _map_spec(mappings: Any, ident: int) -> int:
    if not mappings:
        return ident
    rows = [(int(m["containerID"]), int(m["hostID"]), int(m["size"])) for m in mappings]
    return _lookup(rows, ident)


def _lookup(rows: Sequence[tuple[int, ...]], ident: int) -> int:
    for inside, outside, count in rows:
        if inside <= ident < inside + count:
            return outside + ident - inside
    raise ToolError(f"id {ident} is not mapped in the container's user namespace")
