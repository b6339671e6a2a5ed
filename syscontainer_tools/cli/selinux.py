"""relabel."""

from __future__ import annotations

from . import Container, app, change, handles


@app.command("relabel")
@handles("relabel")
def relabel(container: Container) -> None:
    """Label a container's rootfs and added paths with its SELinux mount label."""
    from ..resources import selinux

    change(container, lambda c, record: selinux.relabel(c, record, label=container))
