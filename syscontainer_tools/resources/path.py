"""Host paths bind-mounted into containers: add-path, remove-path, list-path.

A path is ``HOST:CTR[:OPTS]``; OPTS is a comma list of ``ro``/``rw`` and one
propagation of ``private``, ``rprivate``, ``slave``, ``rslave`` (default
``rw,rslave``).  The saved record (section ``paths``) holds one dict per
path: ``{"host_path", "container_path", "options"}`` with the options in
their canonical order (access, then propagation).

A missing host path is created as a directory (as the original tool does),
owned by the container's root user; a failed command removes the directories
it created (rmdir only: never anything with content).  Mount points made
inside the container are left in place on removal, and nothing is ever
deleted there.  The mount mechanics are in :mod:`syscontainer_tools.mounts`.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import mounts, syscalls
from ..container import Container
from ..errors import Conflict, NotFound, SpecError, ToolError
from ..state import Record

log = logging.getLogger(__name__)

SECTION = "paths"
MAX_PATHS = 128


class Propagation(enum.Enum):
    PRIVATE = "private"
    RPRIVATE = "rprivate"
    SLAVE = "slave"
    RSLAVE = "rslave"

    @property
    def flag(self) -> int:
        return syscalls.MS_PRIVATE if self.value.endswith("private") else syscalls.MS_SLAVE

    @property
    def recursive(self) -> bool:
        return self.value.startswith("r")


_ACCESS = ("ro", "rw")
_ALLOWED = (*_ACCESS, *(p.value for p in Propagation))


def _clean(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/"))


@dataclass(frozen=True)
class PathSpec:
    host_path: str
    container_path: str
    readonly: bool = False
    propagation: Propagation = Propagation.RSLAVE

    @classmethod
    def parse(cls, text: str) -> PathSpec:
        """Parse ``HOST:CTR[:OPTS]``; raise SpecError naming the bad part."""
        where = f"path {text!r}"
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise SpecError(f"{where}: expected HOSTPATH:CONTAINERPATH[:OPTIONS]")
        host, ctr = parts[0], parts[1]
        for name, value in (("host", host), ("container", ctr)):
            if not value:
                raise SpecError(f"{where}: {name} path is empty")
            if not value.startswith("/"):
                raise SpecError(f"{where}: {name} path {value!r} is not absolute")
        host, ctr = _clean(host), _clean(ctr)
        if ctr == "/":
            raise SpecError(f"{where}: the container's root / cannot be a target")
        readonly, propagation = False, Propagation.RSLAVE
        if len(parts) == 3:
            readonly, propagation = _parse_options(where, parts[2])
        return cls(host, ctr, readonly, propagation)

    @property
    def options(self) -> str:
        return f"{'ro' if self.readonly else 'rw'},{self.propagation.value}"

    def to_item(self) -> dict[str, Any]:
        return {"host_path": self.host_path, "container_path": self.container_path,
                "options": self.options}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> PathSpec:
        try:
            return cls.parse(f"{item['host_path']}:{item['container_path']}:{item['options']}")
        except (KeyError, TypeError):
            raise ToolError(f"saved path entry {item!r} lacks a field") from None

    @property
    def bind(self) -> mounts.Bind:
        return mounts.Bind(self.host_path, self.container_path, self.readonly,
                           self.propagation.flag, self.propagation.recursive)

    def same_pair(self, other: PathSpec) -> bool:
        return (self.host_path, self.container_path) == (other.host_path, other.container_path)


def _parse_options(where: str, text: str) -> tuple[bool, Propagation]:
    seen: list[str] = []
    for opt in text.split(","):
        if opt not in _ALLOWED:
            raise SpecError(f"{where}: option {opt!r} is not one of {', '.join(_ALLOWED)}")
        if opt in seen:
            raise SpecError(f"{where}: option {opt!r} is given twice")
        seen.append(opt)
    access = [o for o in seen if o in _ACCESS]
    props = [o for o in seen if o not in _ACCESS]
    if len(access) > 1:
        raise SpecError(f"{where}: 'ro' and 'rw' exclude each other")
    if len(props) > 1:
        raise SpecError(f"{where}: only one propagation may be given, not {', '.join(props)}")
    return (access == ["ro"], Propagation(props[0]) if props else Propagation.RSLAVE)


def parse_all(texts: Iterable[str]) -> list[PathSpec]:
    return [PathSpec.parse(t) for t in texts]


def _saved(record: Record) -> list[PathSpec]:
    return [PathSpec.from_item(i) for i in record[SECTION]]


def _plan_add(saved: Sequence[PathSpec], specs: Sequence[PathSpec]) -> list[tuple[PathSpec, bool]]:
    """Check conflicts; return each distinct spec with whether it is new."""
    known = list(saved)
    plan: list[tuple[PathSpec, bool]] = []
    for spec in specs:
        if any(spec == p for p, _ in plan):
            continue
        new = True
        for old in known:
            if old == spec:
                new = False
            elif old.container_path == spec.container_path:
                raise Conflict(f"container path {spec.container_path} already has host path "
                               f"{old.host_path} mounted on it")
            elif old.host_path == spec.host_path and old.options != spec.options:
                raise Conflict(f"host path {spec.host_path} is already added with options "
                               f"{old.options}, not {spec.options}")
        plan.append((spec, new))
        if new:
            known.append(spec)
    total = len(known)
    if total > MAX_PATHS:
        raise Conflict(f"a container takes at most {MAX_PATHS} paths: {len(saved)} are added, "
                       f"{total - len(saved)} more would make {total}")
    return plan


def ensure_host_path(path: str, owner: tuple[int, int]) -> list[str]:
    """Create a missing host path as a directory owned by ``owner``; return the
    directories made, deepest last."""
    if os.path.lexists(path):
        if not os.path.exists(path):
            raise ToolError(f"host path {path} is a dangling symlink")
        return []
    made: list[str] = []
    missing = path
    while not os.path.lexists(missing):
        made.append(missing)
        missing = os.path.dirname(missing)
    made.reverse()
    try:
        for d in made:
            os.mkdir(d, 0o755)
        os.chown(path, *owner)
    except BaseException:
        remove_dirs(made)
        raise
    log.debug("created host path %s", path)
    return made


def remove_dirs(made: Sequence[str]) -> None:
    """Undo of :func:`ensure_host_path`: rmdir only, so nothing with content goes."""
    for d in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(d)


def _live(container: Container, update_config_only: bool) -> bool:
    return container.running and not update_config_only


def add_paths(container: Container, record: Record, specs: Sequence[PathSpec], *, label: str,
              update_config_only: bool = False) -> list[str]:
    """Bind each host path into the running container and save it; on a
    stopped container (or ``update_config_only``) only save it.

    All or nothing: a failure unmounts the binds this call made and removes
    host directories it created; the caller's transaction then leaves the
    record unsaved."""
    plan = _plan_add(_saved(record), specs)
    owner = container.host_ids()
    with contextlib.ExitStack() as undo:
        for spec, _ in plan:
            made = ensure_host_path(spec.host_path, owner)
            if made:
                undo.callback(remove_dirs, made)
        if _live(container, update_config_only):
            # the undo stack closes before the pidfd does
            with container.init_process() as pidfd, contextlib.ExitStack() as mounted:
                for spec, _ in plan:
                    if mounts.bind_into(pidfd, container.pid, spec.bind,
                                        rootfs=container.rootfs, owner=owner):
                        mounted.callback(mounts.unbind_from, pidfd, container.pid, spec.bind,
                                         rootfs=container.rootfs)
                    else:
                        log.info("%s is already mounted at %s", spec.host_path,
                                 spec.container_path)
                mounted.pop_all()
        undo.pop_all()
    record[SECTION] = record[SECTION] + [s.to_item() for s, new in plan if new]
    return [f"Add path ({s.host_path}) to container({label},{s.container_path}) done."
            for s, _ in plan]


def remove_paths(container: Container, record: Record, specs: Sequence[PathSpec], *,
                 label: str) -> list[str]:
    """Unmount each path inside the running container and forget it.

    Only pairs added before can be removed (the options in ``specs`` are
    ignored); a bind already gone counts as removed.  Host data is never
    touched.  All or nothing: a failure re-mounts what this call unmounted."""
    saved = _saved(record)
    chosen: list[PathSpec] = []
    for spec in specs:
        match = next((s for s in saved if s.same_pair(spec)), None)
        if match is None:
            raise NotFound(f"path {spec.host_path}:{spec.container_path} was not added "
                           "by syscontainer-tools")
        if match not in chosen:
            chosen.append(match)
    if container.running:
        owner = container.host_ids()
        with container.init_process() as pidfd, contextlib.ExitStack() as unmounted:
            for spec in chosen:
                if mounts.unbind_from(pidfd, container.pid, spec.bind, rootfs=container.rootfs):
                    unmounted.callback(mounts.bind_into, pidfd, container.pid, spec.bind,
                                       rootfs=container.rootfs, owner=owner)
                else:
                    log.info("%s was not mounted at %s any more", spec.host_path,
                             spec.container_path)
            unmounted.pop_all()
    assert len(record[SECTION]) == len(saved)
    record[SECTION] = [i for i, s in zip(record[SECTION], saved) if s not in chosen]
    return [f"Remove path ({s.host_path}) from container({label},{s.container_path}) done"
            for s in chosen]


def list_paths(record: Record) -> list[dict[str, Any]]:
    """The saved paths as rows keyed like the other list commands' JSON:
    HostPath, ContainerPath, Options."""
    rows = []
    for item in record[SECTION]:
        saved = PathSpec.from_item(item).to_item()
        rows.append({"HostPath": saved["host_path"], "ContainerPath": saved["container_path"],
                     "Options": saved["options"]})
    return rows


def reapply(container: Container, pidfd: int, items: list[dict[str, Any]]) -> list[str]:
    """Prestart: bind every saved path into the starting container.

    Idempotent: a bind already in place is left as it is.  Missing host
    paths are created as directories.  Works before runc's pivot_root (the
    container root is then found as ``container.rootfs``) and after it.
    Raises ToolError on the first path that cannot be mounted."""
    lines = []
    owner = container.host_ids()
    for spec in (PathSpec.from_item(i) for i in items):
        ensure_host_path(spec.host_path, owner)
        try:
            done = mounts.bind_into(pidfd, container.pid, spec.bind, rootfs=container.rootfs,
                                    owner=owner)
        except OSError as err:
            raise ToolError(f"cannot mount {spec.host_path} at {spec.container_path}: "
                            f"{err.strerror}", action="add path") from None
        lines.append(f"Add path ({spec.host_path}) to container({container.id},"
                     f"{spec.container_path}) done." if done else
                     f"Path ({spec.host_path}) already in container({container.id},"
                     f"{spec.container_path}).")
    return lines
