"""Saved per-container resources: versioned JSON, locked, written atomically.

Layout under the state directory (default /var/lib/syscontainer-tools)::

    <state-dir>/<container-id>/state.json   the record
    <state-dir>/<container-id>/lock         flock(2) target, never removed

A command holds the container's exclusive lock for its whole run, so two
commands on one container serialise and both land.  The record is written to
a temporary file in the same directory, fsynced and renamed over the old one:
a kill -9 at any point leaves either the old or the new record, never a torn
one.  Readers (the hooks) take the shared lock.

The record holds typed models (``resources/*spec.py``, ``qos.py``); each
owns its saved form through ``to_record()``/``from_record()``.  Older schema
versions are lifted on read by ``MIGRATIONS`` (schema 1 saved NICs under
list-nic's column names) and written back in the current one with the next
change.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from ..errors import ToolError
from ..quickjson import loads as json_loads  # json.loads without importing json

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover - the models are imported when a record is read
    from typing import Any

    from .devspec import Device
    from .nicspec import Nic
    from .pathspec import PathSpec
    from .qos import QosSpec
    from .routespec import RouteSpec

SCHEMA_VERSION = 2
DEFAULT_STATE_DIR = "/var/lib/syscontainer-tools"
SECTIONS = ("devices", "qos", "paths", "nics", "routes")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}\Z")  # \Z: "$" also takes "id\n"


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 saved NICs under list-nic's column names (``CtrNicName``, an
    eth's ``Host``); schema 2 has a model of its own for them."""
    from .nicspec import migrate_v1 as _nic_v1

    nics = data.get("nics", [])
    if isinstance(nics, list):
        data["nics"] = [_nic_v1(i) if isinstance(i, Mapping) else i for i in nics]
    return data


# version -> the function that lifts a record of that version by one
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


@dataclass
class Record:
    """One container's saved resources, as typed models.

    The record itself is what a command changes under the lock; the models
    in it are frozen, so a change replaces an entry (or the list)."""

    container_id: str
    devices: list[Device] = field(default_factory=list)
    qos: list[QosSpec] = field(default_factory=list)
    paths: list[PathSpec] = field(default_factory=list)
    nics: list[Nic] = field(default_factory=list)
    routes: list[RouteSpec] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.devices or self.qos or self.paths or self.nics or self.routes)

    def to_json(self) -> dict[str, Any]:
        return {"version": SCHEMA_VERSION, "id": self.container_id,
                "devices": [d.to_record() for d in self.devices],
                "qos": [q.to_record() for q in self.qos],
                "paths": [p.to_record() for p in self.paths],
                "nics": [n.to_record() for n in self.nics],
                "routes": [r.to_record() for r in self.routes]}

    @classmethod
    def from_json(cls, data: Any, where: str) -> Record:
        """Read a saved record of this or an older schema version."""
        if not isinstance(data, dict):
            raise ToolError(f"saved state {where} is not a JSON object")
        version = data.get("version")
        if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
            raise ToolError(f"saved state {where} has schema version {version!r}, "
                            f"this tool reads versions 1 to {SCHEMA_VERSION}")
        for name in SECTIONS:
            items = data.get(name, [])
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ToolError(f"saved state {where}: section {name!r} is not a list of objects")
        while version < SCHEMA_VERSION:
            data = MIGRATIONS[version](dict(data))
            version += 1
        # a section's model module is imported only when the section has
        # entries: a command on devices need not load the NIC and route models
        record = cls(str(data.get("id", "")))
        try:
            for name in SECTIONS:
                items = data.get(name)
                if items:
                    model = _model(name)
                    setattr(record, name, [model.from_record(i) for i in items])
        except ToolError as err:
            raise ToolError(f"saved state {where}: {err.message}") from None
        return record


def _model(section: str) -> Any:
    """The model class of one of the record's SECTIONS."""
    if section == "devices":
        from .devspec import Device
        return Device
    if section == "qos":
        from .qos import QosSpec
        return QosSpec
    if section == "paths":
        from .pathspec import PathSpec
        return PathSpec
    if section == "nics":
        from .nicspec import Nic
        return Nic
    from .routespec import RouteSpec
    return RouteSpec


class StateStore:
    def __init__(self, root: str = DEFAULT_STATE_DIR):
        self.root = root

    def _dir(self, container_id: str) -> str:
        if not _ID_RE.match(container_id):
            raise ToolError(f"invalid container id {container_id!r}")
        return os.path.join(self.root, container_id)

    def path(self, container_id: str) -> str:
        return os.path.join(self._dir(container_id), "state.json")

    def has_record(self, container_id: str) -> bool:
        """Whether anything was ever saved for the container (no parsing)."""
        return os.path.exists(self.path(container_id))

    def ids(self) -> list[str]:
        """The containers that have a saved record."""
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        return [e.name for e in entries if e.is_dir() and _ID_RE.match(e.name)
                and os.path.exists(self.path(e.name))]

    def peek(self, container_id: str) -> Record:
        """Another container's record, read without its lock.

        Records are replaced atomically, so an unlocked read sees a whole
        one; taking their lock while holding our own could deadlock."""
        return self._read(container_id)

    def _read(self, container_id: str) -> Record:
        path = self.path(container_id)
        try:
            with open(path, encoding="utf-8") as f:
                raw = f.read()
        except FileNotFoundError:
            return Record(container_id)
        try:
            data = json_loads(raw)
        except ValueError as err:
            raise ToolError(f"saved state {path} is not valid JSON: {err}",
                            hint="move the file away to start from an empty record") from None
        return Record.from_json(data, path)

    def _write(self, record: Record) -> None:
        import json

        directory = self._dir(record.container_id)
        fd, tmp = _temp_file(directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record.to_json(), f, indent=1, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path(record.container_id))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @contextlib.contextmanager
    def _lock(self, container_id: str, mode: int) -> Iterator[None]:
        directory = self._dir(container_id)
        if mode == fcntl.LOCK_EX:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        elif not os.path.isdir(directory):
            yield
            return
        fd = os.open(os.path.join(directory, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def transaction(self, container_id: str) -> Iterator[Record]:
        """Lock the container's record and yield it for changes.

        The record is written back only if the block finishes without an
        exception and changed something; a failure leaves it as it was."""
        with self._lock(container_id, fcntl.LOCK_EX):
            record = self._read(container_id)
            before = record.to_json()
            yield record
            if record.to_json() != before:
                self._write(record)

    def load(self, container_id: str) -> Record:
        """Read a consistent copy of the record under the shared lock."""
        with self._lock(container_id, fcntl.LOCK_SH):
            return self._read(container_id)


def _temp_file(directory: str) -> tuple[int, str]:
    """A new file ``.state.PID.N.tmp`` in ``directory``, opened for writing:
    what ``tempfile.mkstemp`` makes, without importing tempfile (and the
    random, shutil and hashing modules behind it) on every command."""
    for n in range(10000):
        path = os.path.join(directory, f".state.{os.getpid()}.{n}.tmp")
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path
        except FileExistsError:
            continue
    raise ToolError(f"cannot make a temporary file in {directory}")
