"""relabel."""

from __future__ import annotations

from . import Container, command, options, report


@command("relabel", "relabel")
def relabel(container: Container) -> None:
    """Label a container's rootfs and added paths with its SELinux mount label.

    Needs root, and a host with SELinux enabled.

    Example: syscontainer-tools relabel web1
    """
    report(options().tools.relabel(container), container)
