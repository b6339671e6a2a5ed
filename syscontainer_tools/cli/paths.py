"""add-path, remove-path, list-path."""

from __future__ import annotations

from typing import Annotated

import typer

from . import Container, Format, Pretty, UpdateConfigOnly, app, change, handles, show

_PATHS_HELP = "HOSTPATH:CONTAINERPATH[:OPTIONS], OPTIONS a comma list of ro, rw, private, " \
              "rprivate, slave, rslave (default rw,rslave)"


@app.command("add-path")
@handles("add path")
def add_path(
    container: Container,
    paths: Annotated[list[str], typer.Argument(help=_PATHS_HELP)],
    update_config_only: UpdateConfigOnly = False,
) -> None:
    """Bind-mount host files or directories into a container (at most 128 per container)."""
    from ..resources import path

    specs = path.parse_all(paths)
    change(container, lambda c, record: path.add_paths(
        c, record, specs, label=container, update_config_only=update_config_only))


@app.command("remove-path")
@handles("remove path")
def remove_path(
    container: Container,
    paths: Annotated[list[str], typer.Argument(help="HOSTPATH:CONTAINERPATH as added")],
) -> None:
    """Unmount paths added with add-path from a container; host data stays."""
    from ..resources import path

    specs = path.parse_all(paths)
    change(container, lambda c, record: path.remove_paths(c, record, specs, label=container))


@app.command("list-path")
@handles("list path")
def list_path(
    container: Container,
    pretty: Pretty = False,
    fmt: Format = "table",
) -> None:
    """List the paths added to a container."""
    from ..resources import path

    show(container, path.list_paths, [("HostPath", "Host path"),
                                      ("ContainerPath", "Container path"),
                                      ("Options", "Options")],
         fmt=fmt, pretty=pretty, what="Paths")
