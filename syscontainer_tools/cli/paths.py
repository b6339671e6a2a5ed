"""add-path, remove-path, list-path."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import commands
from . import Container, Format, Pretty, UpdateConfigOnly, command, options, show

_PATHS_HELP = "HOSTPATH:CONTAINERPATH[:OPTIONS], OPTIONS a comma list of ro, rw, private, " \
              "rprivate, slave, rslave (default rw,rslave)"


@command("add-path", "add path")
def add_path(
    container: Container,
    paths: Annotated[list[str], typer.Argument(help=_PATHS_HELP)],
    update_config_only: UpdateConfigOnly = False,
) -> None:
    """Bind-mount host files or directories into a container (at most 128 per container).

    Needs root.

    Example: syscontainer-tools add-path web1 /srv/data:/data:ro
    """
    commands.add_path(options(), container, paths, update_config_only=update_config_only)


@command("remove-path", "remove path")
def remove_path(
    container: Container,
    paths: Annotated[list[str], typer.Argument(help="HOSTPATH:CONTAINERPATH as added")],
) -> None:
    """Unmount paths added with add-path from a container; host data stays.

    Needs root.

    Example: syscontainer-tools remove-path web1 /srv/data:/data
    """
    commands.remove_path(options(), container, paths)


@command("list-path", "list path")
def list_path(
    container: Container,
    pretty: Pretty = False,
    fmt: Format = "table",
) -> None:
    """List the paths added to a container.

    Needs root (the saved state is root's).

    Example: syscontainer-tools list-path --pretty web1
    """
    from ..resources.pathspec import COLUMNS

    show(options().tools.list_paths(container), COLUMNS, fmt=fmt, pretty=pretty,
         title=f"Paths of {container}")
