"""Finding a container: one module per engine, one ``Container`` value out.

Every engine module provides

* ``list_argv(runtime_root) -> list[str]``: a cheap listing command
  (or ``list_local``, which reads the listing without a subprocess and
  returns None when it cannot),
* ``parse_list(stdout) -> list[Candidate]``: its ids and names,
  (or, where one listing is not enough -- containerd lists per namespace --
  ``list_argvs(runtime_root, auto) -> list[list[str]]``, which may skip
  itself under ``auto``, and ``parse_list(stdout, argv)``),
* ``inspect(candidate, runtime_root) -> Container``: the full record.

``find()`` runs the listings of all selected engines at once, matches the
reference as a full id, a name, or a unique id prefix, and inspects the one
container that matched.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from ..command import clean_env
from ..container import Container
from ..container import Engine as Engine  # the engines' names live with the Container value
from ..errors import NotFound, ToolError
from ..log import get_logger

log = get_logger(__name__)


def module_of(engine: Engine) -> ModuleType:
    """The module that lists and inspects ``engine``'s containers."""
    name = "runc" if engine in (Engine.RUNC, Engine.CRUN) else engine.value
    return importlib.import_module(f"{__name__}.{name}")


@dataclass(frozen=True)
class Candidate:
    id: str
    name: str
    engine: Engine
    namespace: str = ""         # containerd's namespace; "" for the others


def engines_for(selected: Engine) -> list[Engine]:
    if selected is not Engine.AUTO:
        return [selected]
    import shutil

    return [e for e in Engine if e is not Engine.AUTO and shutil.which(e.binary)]


def list_all(selected: Engine, runtime_root: str | None = None) -> list[Candidate]:
    """All containers the selected engines know, listed concurrently.

    With ``auto`` an engine whose CLI fails (daemon not running) is skipped;
    an explicitly selected engine that fails is an error."""
    engines = engines_for(selected)
    if not engines:
        raise ToolError("no container engine found "
                        "(isula, docker, podman, containerd, runc or crun)")
    procs = []
    by_engine: dict[Engine, list[Candidate]] = {}
    for engine in engines:
        module = module_of(engine)
        local = getattr(module, "list_local", None)
        listed = local(engine, runtime_root) if local else None
        if listed is not None:  # read from the runtime's own files: no CLI spawned
            by_engine[engine] = listed
            continue
        import subprocess  # only here: runc and crun are listed from their files

        argvs = (module.list_argvs(engine, runtime_root, selected is Engine.AUTO)
                 if hasattr(module, "list_argvs") else [module.list_argv(engine, runtime_root)])
        for argv in argvs:
            log.debug("+ %s", " ".join(argv))
            try:
                procs.append((engine, argv, subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, env=clean_env())))
            except OSError as err:
                if selected is not Engine.AUTO:
                    raise ToolError(f"cannot run {argv[0]}: {err.strerror}") from None
    for engine, argv, proc in procs:
        try:
            out, errout = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, errout = proc.communicate()
        if proc.returncode != 0:
            msg = errout.decode(errors="replace").strip().splitlines()
            if selected is not Engine.AUTO:
                raise ToolError(f"{' '.join(argv)} failed: {msg[-1] if msg else proc.returncode}")
            log.debug("skipping %s: %s", engine.value, msg[-1] if msg else proc.returncode)
            continue
        text = out.decode(errors="replace")
        module = module_of(engine)
        by_engine.setdefault(engine, []).extend(
            module.parse_list(engine, text, argv) if hasattr(module, "list_argvs")
            else module.parse_list(engine, text))
    return [c for engine in engines for c in by_engine.get(engine, [])]


def match(ref: str, candidates: list[Candidate]) -> list[Candidate]:
    """Exact id, then exact name, then id prefix; every engine's matches."""
    rules: tuple[Callable[[Candidate], bool], ...] = (
        lambda c: c.id == ref, lambda c: c.name == ref, lambda c: c.id.startswith(ref))
    for rule in rules:
        hits = [c for c in candidates if rule(c)]
        if hits:
            return hits
    return []


def find(ref: str, engine: Engine = Engine.AUTO, runtime_root: str | None = None) -> Container:
    """Resolve ``ref`` (full id, unique id prefix, or name) to a Container."""
    if not ref:
        raise ToolError("container id or name is empty")
    hits = match(ref, list_all(engine, runtime_root))
    if not hits:
        raise NotFound(f"container {ref!r} not found"
                       + ("" if engine is Engine.AUTO else f" in {engine.value}"))
    if len(hits) > 1:
        listed = ", ".join(f"{c.id} ({c.engine.value}{', ' + c.name if c.name != c.id else ''}"
                           f"{', namespace ' + c.namespace if c.namespace else ''})"
                           for c in hits)
        raise ToolError(f"container {ref!r} is ambiguous: {listed}",
                        hint="give a longer id prefix or --engine")
    hit = hits[0]
    container: Container = module_of(hit.engine).inspect(hit, runtime_root)
    return container
