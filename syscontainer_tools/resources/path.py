"""Host paths bind-mounted into containers: add-path, remove-path, list-path.

The spec and its saved form are in :mod:`.pathspec`.

A missing host path is created as a directory (as the original tool does),
owned by the container's root user; a failed command removes the directories
it created (rmdir only: never anything with content).  Mount points made
inside the container are left in place on removal, and nothing is ever
deleted there.  The mount mechanics are in :mod:`syscontainer_tools.mounts`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from .. import mounts, undo
from ..container import Container
from ..errors import Conflict, NotFound, ToolError
from ..log import get_logger
from .pathspec import COLUMNS, PathSpec, Propagation, parse_all
from .state import Record

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

log = get_logger(__name__)

__all__ = ["COLUMNS", "PathSpec", "Propagation", "parse_all", "add_paths", "remove_paths", "list_paths",
           "reapply", "MAX_PATHS"]

MAX_PATHS = 128


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
        undo.quietly(f"remove directory {d}", os.rmdir, d)


def _live(container: Container, update_config_only: bool) -> bool:
    return container.running and not update_config_only


def add_paths(container: Container, record: Record, specs: Sequence[PathSpec], *, ref: str,
              update_config_only: bool = False) -> list[str]:
    """Bind each host path into the running container and save it; on a
    stopped container (or ``update_config_only``) only save it.

    All or nothing: a failure unmounts the binds this call made and removes
    host directories it created; the caller's transaction then leaves the
    record unsaved."""
    plan = _plan_add(record.paths, specs)
    owner = container.host_ids()
    with contextlib.ExitStack() as stack:
        for spec, _ in plan:
            made = ensure_host_path(spec.host_path, owner)
            if made:
                stack.callback(remove_dirs, made)  # quiet: each rmdir logs its failure
        if _live(container, update_config_only):
            # the undo stack closes before the pidfd does
            with container.init_process() as pidfd, contextlib.ExitStack() as mounted:
                for spec, _ in plan:
                    if mounts.bind_into(pidfd, container.pid, spec.bind,
                                        rootfs=container.rootfs, owner=owner):
                        undo.push(mounted, f"unmount {spec.container_path}",
                                  mounts.unbind_from, pidfd, container.pid, spec.bind,
                                  rootfs=container.rootfs)
                    else:
                        log.info("%s is already mounted at %s", spec.host_path,
                                 spec.container_path)
                mounted.pop_all()
        stack.pop_all()
    record.paths = record.paths + [s for s, new in plan if new]
    return [s.added_line(ref) for s, _ in plan]


def remove_paths(container: Container, record: Record, specs: Sequence[PathSpec], *,
                 ref: str) -> list[str]:
    """Unmount each path inside the running container and forget it.

    Only pairs added before can be removed (the options in ``specs`` are
    ignored); a bind already gone counts as removed.  Host data is never
    touched.  All or nothing: a failure re-mounts what this call unmounted."""
    saved = record.paths
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
                    undo.push(unmounted, f"mount {spec.container_path} again",
                              mounts.bind_into, pidfd, container.pid, spec.bind,
                              rootfs=container.rootfs, owner=owner)
                else:
                    log.info("%s was not mounted at %s any more", spec.host_path,
                             spec.container_path)
            unmounted.pop_all()
    record.paths = [s for s in saved if s not in chosen]
    return [s.removed_line(ref) for s in chosen]


def list_paths(record: Record) -> list[dict[str, Any]]:
    """list-path's rows: HostPath, ContainerPath, Options."""
    return [spec.row() for spec in record.paths]


def reapply(container: Container, pidfd: int, record: Record) -> list[str]:
    """Prestart: bind every saved path into the starting container.

    Idempotent: a bind already in place is left as it is.  Missing host
    paths are created as directories.  Works before runc's pivot_root (the
    container root is then found as ``container.rootfs``) and after it.
    Raises ToolError on the first path that cannot be mounted."""
    lines = []
    owner = container.host_ids()
    specs = list(record.paths)
    for spec in specs:
        ensure_host_path(spec.host_path, owner)
    # one helper process for all of them
    results = mounts.bind_all_into(pidfd, container.pid, [s.bind for s in specs],
                                   rootfs=container.rootfs, owner=owner)
    for spec, done in zip(specs, results):
        if isinstance(done, OSError):
            raise ToolError(f"cannot mount {spec.host_path} at {spec.container_path}: "
                            f"{done.strerror}", action="add path")
        lines.append(f"Add path ({spec.host_path}) to container({container.id},"
                     f"{spec.container_path}) done." if done else
                     f"Path ({spec.host_path}) already in container({container.id},"
                     f"{spec.container_path}).")
    return lines
