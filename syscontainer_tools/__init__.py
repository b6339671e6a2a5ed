"""syscontainer-tools: live devices, NICs, routes and paths for system containers."""

from __future__ import annotations


def __getattr__(name: str) -> str:  # no typing import: a hook's start-up
    # ``__version__`` from the package metadata, read only when asked for:
    # importlib.metadata costs more than a hook's whole start-up
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return "unknown"
    try:
        return version("syscontainer-tools")
    except PackageNotFoundError:
        return "unknown"
