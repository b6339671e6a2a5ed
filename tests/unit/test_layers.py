"""The module structure docs/architecture.md draws: imports point down only,
and no two modules import each other (directly or round a loop).

Every import counts: at module level, inside functions (the lazy ones) and
under ``TYPE_CHECKING``.  Read from the source with ``ast``; nothing is
imported."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("syscontainer_tools", "lxcfs_toolkit")

# the layers of docs/architecture.md, top down; a module may import its own
# layer or a lower one.  The first matching prefix decides.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("programs", ("syscontainer_tools.__main__", "syscontainer_tools.cli",
                  "syscontainer_tools.quickcli", "syscontainer_tools.commands",
                  "syscontainer_tools.hooks", "syscontainer_tools.wrapper", "lxcfs_toolkit")),
    ("api", ("syscontainer_tools.api",)),
    ("resources", ("syscontainer_tools.resources",)),
    ("mechanics", ("syscontainer_tools",)),
]
BOTTOM = {"syscontainer_tools.syscalls", "syscontainer_tools.errors", "syscontainer_tools.log",
          "syscontainer_tools.textenum"}


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of this tree that ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import mod`` names a module; ``from mod import name`` does not
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(name, path, known) for name, path in known.items()}


def _layer(module: str) -> int:
    if module in BOTTOM:
        return len(LAYERS)
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer")


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert "syscontainer_tools.resources.state" in graph["syscontainer_tools.resources.device"]
    assert "syscontainer_tools.api" in graph["syscontainer_tools.commands"]
    assert "syscontainer_tools.mountinfo" in graph["lxcfs_toolkit.viewmounts"]


def test_imports_point_down() -> None:
    upward = sorted(f"{a} -> {b}" for a, targets in _graph().items() for b in targets
                    if _layer(b) < _layer(a))
    assert upward == []


def test_the_library_never_imports_the_lxcfs_programs() -> None:
    assert sorted(f"{a} -> {b}" for a, targets in _graph().items() for b in targets
                  if a.startswith("syscontainer_tools") and b.startswith("lxcfs_toolkit")) == []


def test_no_import_cycle() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == []
