"""Host device nodes: what a path is (type, numbers, disk or partition), a
disk's partitions, and the udev rules that make later partitions follow a
disk into a container.

Disk/partition facts come from sysfs (``/sys/dev/block/MAJ:MIN``), which
needs neither lsblk nor a udev database.  A disk's partitions are listed
with pyudev when it is installed and the udev database is there, else read
from sysfs.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from .. import command
from ..errors import SpecError, ToolError
from ..log import get_logger

log = get_logger(__name__)

SYSFS = "/sys"
UDEV_RULES_DIR = "/run/udev/rules.d"      # SYSCONTAINER_UDEV_RULES_DIR overrides (tests)


@dataclass(frozen=True)
class HostDevice:
    """A device node on the host, followed through symlinks."""

    path: str           # as the user named it (cleaned)
    resolved: str       # after symlinks
    kind: str           # "b" or "c"
    major: int
    minor: int
    mode: int           # permission bits of the host node

    @classmethod
    def probe(cls, path: str, what: str | None = None) -> HostDevice:
        given = what or path  # the user's text, as the error shows it
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise SpecError(f"device {given!r}: {path} does not exist") from None
        except OSError as err:
            raise SpecError(f"device {given!r}: {err.strerror}") from None
        if stat.S_ISBLK(st.st_mode):
            kind = "b"
        elif stat.S_ISCHR(st.st_mode):
            kind = "c"
        else:
            raise SpecError(f"device {given!r}: {path} is not a device")
        return cls(path, os.path.realpath(path), kind, os.major(st.st_rdev),
                   os.minor(st.st_rdev), stat.S_IMODE(st.st_mode))

    @property
    def block(self) -> BlockInfo | None:
        return block_info(self.major, self.minor) if self.kind == "b" else None


@dataclass(frozen=True)
class BlockInfo:
    name: str                   # kernel name: loop0p1, sda
    partition: bool
    disk: str | None            # kernel name of the disk a partition belongs to
    number: int | None          # partition number


def block_info(major: int, minor: int) -> BlockInfo | None:
    """Facts about a block device from sysfs, None if sysfs does not know it."""
    base = f"{SYSFS}/dev/block/{major}:{minor}"
    real = os.path.realpath(base)
    if not os.path.isdir(real):
        return None
    name = os.path.basename(real)
    try:
        with open(os.path.join(real, "partition"), encoding="ascii") as f:
            number = int(f.read().strip())
    except (OSError, ValueError):
        return BlockInfo(name, False, None, None)
    return BlockInfo(name, True, os.path.basename(os.path.dirname(real)), number)


def _devnode(sysdir: str, name: str) -> str:
    try:
        with open(os.path.join(sysdir, "uevent"), encoding="utf-8") as f:
            for line in f:
                if line.startswith("DEVNAME="):
                    return "/dev/" + line.split("=", 1)[1].strip()
    except OSError:
        pass
    return "/dev/" + name


def partitions(disk: BlockInfo) -> list[tuple[str, str]]:
    """(kernel name, /dev node) of each partition of ``disk``, in number order."""
    found = _partitions_udev(disk.name)
    if found is None:
        found = _partitions_sysfs(disk.name)
    return sorted(found, key=lambda p: (len(p[0]), p[0]))


def _partitions_udev(name: str) -> list[tuple[str, str]] | None:
    if not os.path.isdir("/run/udev/data"):
        return None
    try:
        import pyudev
    except ImportError:
        return None
    try:
        ctx = pyudev.Context()
        disk = pyudev.Devices.from_name(ctx, "block", name)
        out = []
        for child in ctx.list_devices(subsystem="block", DEVTYPE="partition", parent=disk):
            if child.sys_name != name and child.device_node:
                out.append((child.sys_name, child.device_node))
        return out
    except Exception as err:  # noqa: BLE001 - any udev trouble: read sysfs instead
        log.debug("pyudev could not list partitions of %s: %s", name, err)
        return None


def _partitions_sysfs(name: str) -> list[tuple[str, str]]:
    base = f"{SYSFS}/class/block/{name}"
    out = []
    try:
        entries = os.listdir(base)
    except OSError:
        return []
    for entry in entries:
        sub = os.path.join(base, entry)
        if os.path.isfile(os.path.join(sub, "partition")):
            out.append((entry, _devnode(sub, entry)))
    return out


def partition_suffix(disk_name: str, part: BlockInfo) -> str:
    """What a partition adds to its disk's name: loop0p1 -> "p1", sda12 -> "12"."""
    if part.name.startswith(disk_name) and len(part.name) > len(disk_name):
        return part.name[len(disk_name):]
    sep = "p" if disk_name[-1:].isdigit() else ""
    return f"{sep}{part.number}"


# --- udev rules ----------------------------------------------------------------

def rule_path(container_id: str, disk_name: str, rules_dir: str | None = None) -> str:
    rules_dir = rules_dir or os.environ.get("SYSCONTAINER_UDEV_RULES_DIR") or UDEV_RULES_DIR
    return os.path.join(rules_dir,
                        f"99-syscontainer-tools-{container_id}@{disk_name}.rules")


def rules_of(container_id: str, rules_dir: str | None = None) -> list[str]:
    """Rule files written for one container (all its disks)."""
    import glob

    pattern = rule_path(glob.escape(container_id), "*", rules_dir)
    return glob.glob(pattern)


def _quote(arg: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9_./:%=+,@-]+", arg):
        raise ToolError(f"cannot put {arg!r} into a udev rule")
    return arg


def rule_text(container_id: str, disk_name: str, ctr_path: str, perm: str,
              command: Sequence[str]) -> str:
    """Rules running ``command add-device``/``remove-device`` for partitions
    of ``disk_name`` that appear or vanish later."""
    digit = disk_name[-1:].isdigit()
    match = f"{disk_name}p[0-9]*" if digit else f"{disk_name}[0-9]*"
    suffix = "p%n" if digit else "%n"
    prog = " ".join(_quote(a) for a in command)
    cid = _quote(container_id)
    common = f'SUBSYSTEM=="block", ENV{{DEVTYPE}}=="partition", KERNEL=="{match}"'
    return (
        f"# Written by syscontainer-tools: partitions of /dev/{disk_name} follow it into "
        f"container {container_id} as {ctr_path}{suffix}\n"
        f'ACTION=="add", {common}, RUN+="{prog} add-device {cid} '
        f'/dev/%k:{_quote(ctr_path)}{suffix}:{perm}"\n'
        f'ACTION=="remove", {common}, RUN+="{prog} remove-device {cid} /dev/%k"\n')


def write_rule(path: str, text: str) -> bool:
    """Write a rule file atomically; False when the same text is there already."""
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as f:
        if f.read() == text:
            return False
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    _reload()
    return True


def remove_rule(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    _reload()
    return True


def _reload() -> None:
    """Ask a running udevd to re-read its rules (it also notices on its own)."""
    if not os.path.exists("/run/udev/control"):
        return
    import shutil

    udevadm = shutil.which("udevadm")
    if not udevadm:
        return
    try:
        command.run([udevadm, "control", "--reload"], check=True, timeout=10)
    except ToolError as err:
        log.debug("%s", err)
