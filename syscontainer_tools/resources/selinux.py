"""relabel: give a container's rootfs and saved paths its SELinux mount label.

A system container that runs SELinux inside needs its files labelled with
the container's mount label (OCI ``linux.mountLabel``).  Where SELinux is
off on the host there is nothing to relabel, and the command says so.
"""

from __future__ import annotations

import os

from .. import command
from ..container import Container
from ..errors import ToolError
from ..log import get_logger
from .state import Record

log = get_logger(__name__)

SELINUXFS = "/sys/fs/selinux"


def enabled(selinuxfs: str = SELINUXFS) -> bool:
    return os.path.exists(os.path.join(selinuxfs, "enforce"))


def targets(container: Container, record: Record) -> list[str]:
    """The rootfs, then every saved path's host side."""
    if not container.rootfs:
        raise ToolError(f"container {container.id}: its rootfs is unknown")
    out = [container.rootfs]
    for spec in record.paths:
        if spec.host_path not in out:
            out.append(spec.host_path)
    return out


def relabel(container: Container, record: Record, *, ref: str,
            selinuxfs: str = SELINUXFS) -> list[str]:
    if not enabled(selinuxfs):
        raise ToolError("SELinux is not enabled on this host: nothing to relabel",
                        hint="relabel is for hosts running SELinux")
    context = container.spec.get("linux", {}).get("mountLabel")
    if not context:
        raise ToolError(f"container {ref} has no SELinux mount label (linux.mountLabel "
                        "in its OCI config)")
    lines = []
    for path in targets(container, record):
        command.run(["chcon", "-R", "--", context, path])
        lines.append(f"Relabel ({path}) of container({ref}) with {context} done.")
    return lines
