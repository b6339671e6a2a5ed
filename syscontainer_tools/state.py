"""Saved per-container resources: versioned JSON, locked, written atomically.

Layout under the state directory (default /var/lib/syscontainer-tools)::

    <state-dir>/<container-id>/state.json   the record
    <state-dir>/<container-id>/lock         flock(2) target, never removed

A command holds the container's exclusive lock for its whole run, so two
commands on one container serialise and both land.  The record is written to
a temporary file in the same directory, fsynced and renamed over the old one:
a kill -9 at any point leaves either the old or the new record, never a torn
one.  Readers (the hooks) take the shared lock.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import ToolError

SCHEMA_VERSION = 1
DEFAULT_STATE_DIR = "/var/lib/syscontainer-tools"
SECTIONS = ("devices", "qos", "paths", "nics", "routes")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}$")


@dataclass
class Record:
    """One container's saved resources: a list of plain dicts per section.

    Each resource module owns the shape of the dicts in its section."""

    container_id: str
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in SECTIONS:
            self.sections.setdefault(name, [])

    def __getitem__(self, section: str) -> list[dict[str, Any]]:
        return self.sections[section]

    def __setitem__(self, section: str, items: list[dict[str, Any]]) -> None:
        self.sections[section] = items

    def empty(self) -> bool:
        return not any(self.sections.values())

    def to_json(self) -> dict[str, Any]:
        return {"version": SCHEMA_VERSION, "id": self.container_id, **self.sections}

    @classmethod
    def from_json(cls, data: Any, where: str) -> Record:
        if not isinstance(data, dict):
            raise ToolError(f"saved state {where} is not a JSON object")
        version = data.get("version")
        if version != SCHEMA_VERSION:
            raise ToolError(f"saved state {where} has schema version {version!r}, "
                            f"this tool reads version {SCHEMA_VERSION}")
        sections = {}
        for name in SECTIONS:
            items = data.get(name, [])
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ToolError(f"saved state {where}: section {name!r} is not a list of objects")
            sections[name] = items
        return cls(str(data.get("id", "")), sections)


class StateStore:
    def __init__(self, root: str = DEFAULT_STATE_DIR):
        self.root = root

    def _dir(self, container_id: str) -> str:
        if not _ID_RE.match(container_id):
            raise ToolError(f"invalid container id {container_id!r}")
        return os.path.join(self.root, container_id)

    def path(self, container_id: str) -> str:
        return os.path.join(self._dir(container_id), "state.json")

    def _read(self, container_id: str) -> Record:
        path = self.path(container_id)
        try:
            with open(path, encoding="utf-8") as f:
                raw = f.read()
        except FileNotFoundError:
            return Record(container_id)
        try:
            data = json.loads(raw)
        except ValueError as err:
            raise ToolError(f"saved state {path} is not valid JSON: {err}",
                            hint="move the file away to start from an empty record") from None
        return Record.from_json(data, path)

    def _write(self, record: Record) -> None:
        directory = self._dir(record.container_id)
        fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=directory)
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
            before = copy.deepcopy(record.to_json())
            yield record
            if record.to_json() != before:
                self._write(record)

    def load(self, container_id: str) -> Record:
        """Read a consistent copy of the record under the shared lock."""
        with self._lock(container_id, fcntl.LOCK_SH):
            return self._read(container_id)
