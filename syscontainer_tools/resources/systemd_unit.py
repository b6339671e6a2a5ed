"""Telling systemd about what the tool adds to a container it manages.

With the systemd cgroup driver (runc/crun ``--systemd-cgroup``, podman's
default, iSulad's ``native.cgroupdriver=systemd``) a container's cgroup is
a ``.scope`` (or ``.service``) unit.  On cgroup v2 systemd attaches its own
device program (``sd_devices``) built from the unit's ``DeviceAllow=`` list,
and an access must pass every program attached; systemd rebuilds that
program, and rewrites the unit's ``io.*`` files, at every ``daemon-reload``
or ``set-property``.  So a device or I/O limit systemd does not know about
is undone at the next reload.  This module finds the unit and sets its
properties at runtime (``systemctl set-property --runtime``: a drop-in under
/run that systemd drops together with the transient unit), and names the
programs the tool must leave to systemd.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .. import cgroup, command
from ..errors import ToolError
from ..log import get_logger
from . import devcgroup
from .devcgroup import DevRule, perm_union
from .devspec import Device

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

log = get_logger(__name__)

#: names systemd gives the device programs it attaches (bpf-devices.c)
SYSTEMD_PROGRAMS = (b"sd_devices",)
_SUFFIXES = (".scope", ".service")


@dataclass(frozen=True)
class Unit:
    """The systemd unit whose cgroup holds a container."""

    name: str           # runc-ID.scope, libpod-ID.scope, ...
    cgroup: str         # its host directory in the v2 tree


def systemd_booted() -> bool:
    """sd_booted(): systemd is this host's init."""
    return os.path.isdir("/run/systemd/system")


def outside_udev_sandbox() -> list[str]:
    """The prefix a udev rule's RUN needs to enter a container under systemd:
    systemd-udevd runs RUN programs in its sandbox, whose system-call filter
    (``@system-service @module @raw-io bpf``) has neither chroot nor mount,
    so the command goes to a transient service of its own instead.  The rule
    waits for it (``--wait``: a partition's add and remove stay in order) and
    it does not wait for boot (``DefaultDependencies=no``).  Empty without
    systemd: other udevds run the command as it is."""
    import shutil

    run = shutil.which("systemd-run") if systemd_booted() else None
    if not run:
        return []
    return [run, "--quiet", "--collect", "--wait", "--service-type=exec",
            "--property=DefaultDependencies=no", "--"]


def unit_of(path: str) -> tuple[str, str] | None:
    """(unit name, its cgroup path) of the nearest ``.scope``/``.service``
    at or above ``path``, a path relative to the v2 root:
    ``machine.slice/libpod-ID.scope/container`` -> ``libpod-ID.scope``."""
    parts = [p for p in path.strip("/").split("/") if p]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].endswith(_SUFFIXES):
            return parts[i], "/" + "/".join(parts[:i + 1])
    return None


def for_cgroup(v2dir: str | None) -> Unit | None:
    """The unit systemd runs the container in, or None when systemd is not
    the init or does not own that cgroup (cgroupfs driver)."""
    root = cgroup.host_mounts().v2
    if not v2dir or not root or not systemd_booted():
        return None
    rel = os.path.relpath(v2dir, root)
    if rel.startswith(".."):
        return None
    found = unit_of(rel)
    if found is None:
        return None
    name, path = found
    proc = command.run(["systemctl", "show", "--property=ControlGroup", "--value", name],
                       check=False)
    if proc.returncode != 0 or proc.stdout.strip() != path:
        log.debug("cgroup %s looks like unit %s, but systemd says %r", v2dir, name,
                  proc.stdout.strip())
        return None
    return Unit(name, os.path.join(root, path.lstrip("/")))


def device_cgroups(pid: int) -> tuple[devcgroup.DeviceCgroups, Unit | None]:
    """Where a container's device access is decided, and under systemd its
    unit (whose own device program is then systemd's to rebuild)."""
    unit = for_cgroup(cgroup.for_pid(pid).v2)
    return devcgroup.DeviceCgroups.for_pid(pid, SYSTEMD_PROGRAMS if unit else ()), unit


# --- DeviceAllow= ---------------------------------------------------------------

def device_path(rule: DevRule) -> str:
    """systemd's name for a device by number (no node needed on the host)."""
    return f"/dev/{'block' if rule.kind == 'b' else 'char'}/{rule.major}:{rule.minor}"


def parse_device_policy(text: str) -> bool:
    """From ``systemctl show -p DevicePolicy -p DeviceAllow``: whether systemd
    restricts the unit's devices (cgroup_context_has_device_policy()), i.e.
    attaches a device program of its own to it."""
    policy, allow = "auto", False
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "DevicePolicy":
            policy = value.strip() or "auto"
        elif key == "DeviceAllow" and value.strip():
            allow = True
    return policy != "auto" or allow


def has_device_policy(unit: Unit) -> bool:
    """Whether systemd keeps a device program for the unit.  runc
    ``--systemd-cgroup`` gives its scope the container's device list
    (``DevicePolicy=strict``, ``DeviceAllow=``); crun (also under podman)
    gives none, and its own program is the only one.  Only a unit with a
    policy is told about devices: the first ``DeviceAllow=`` entry on a unit
    without one would make systemd deny every device but that one and the
    pseudo devices."""
    proc = command.run(["systemctl", "show", "--property=DevicePolicy",
                        "--property=DeviceAllow", unit.name])
    return parse_device_policy(proc.stdout)


def device_allow(unit: Unit) -> dict[str, str]:
    """The unit's ``DeviceAllow=`` list: path -> permissions, in its order."""
    proc = command.run(["systemctl", "show", "--property=DeviceAllow", unit.name])
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if key != "DeviceAllow" or not value.strip():
            continue
        path, _, perm = value.strip().rpartition(" ")
        if not path:
            path, perm = perm, ""
        out[path] = perm_union(out.get(path, ""), perm)
    return out


def grants(rules: Iterable[DevRule], bases: Mapping[str, str]) -> dict[str, str]:
    """``DeviceAllow=`` permissions for each path in ``bases``: what the unit
    granted before the tool touched it (the base) plus every rule for it."""
    out = dict(bases)
    for rule in rules:
        path = device_path(rule)
        if path in out:
            out[path] = perm_union(out[path], rule.perm)
    return out


def set_device_allow(unit: Unit, changes: Mapping[str, str]) -> dict[str, str]:
    """Set the permissions of some ``DeviceAllow=`` entries (``""`` drops
    one), keeping the rest; returns their previous permissions (the undo).

    The list is written whole (reset, then every entry) in one call, so
    systemd's merge rules for a repeated path never matter."""
    current = device_allow(unit)
    old = {path: current.get(path, "") for path in changes}
    if old == dict(changes):
        return old
    new = {**current, **changes}
    assigns = ["DeviceAllow="] + [f"DeviceAllow={p} {perm}" for p, perm in new.items() if perm]
    before = _own_programs(unit)
    set_property(unit, assigns)
    # systemd attaches the rebuilt program just after set-property returns
    deadline = time.monotonic() + 10
    while before and _own_programs(unit) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    return old


def _own_programs(unit: Unit) -> set[int]:
    """Ids of systemd's device programs attached to the unit's cgroup."""
    out = set()
    try:
        for prog_id in devcgroup.query(unit.cgroup)[1]:
            fd = devcgroup._prog_fd(prog_id)
            try:
                if devcgroup.prog_info(fd).name in SYSTEMD_PROGRAMS:
                    out.add(prog_id)
            finally:
                os.close(fd)
    except OSError as err:
        log.debug("cannot list the device programs of %s: %s", unit.cgroup, err)
    return out


def allow_devices(unit: Unit, saved: Sequence[Device],
                  new: Sequence[Device]) -> tuple[dict[str, str], dict[str, str]]:
    """Add ``new`` devices to the unit's ``DeviceAllow=`` (``saved``: the
    container's devices already there).  Returns the undo for
    set_device_allow and, per device path, the unit's own grant before the
    tool (the base each new device keeps as ``unit_base``, so that removing
    it gives back exactly that)."""
    if not has_device_policy(unit):
        return {}, {device_path(d.rule()): "" for d in new}
    current = device_allow(unit)
    bases: dict[str, str] = {}
    for d in saved:
        bases.setdefault(device_path(d.rule()), d.unit_base)
    for d in new:
        path = device_path(d.rule())
        bases.setdefault(path, current.get(path, ""))
    touched = {device_path(d.rule()) for d in new}
    changes = grants((d.rule() for d in [*saved, *new]), {p: bases[p] for p in touched})
    return set_device_allow(unit, changes), bases


def revoke_devices(unit: Unit, remaining: Sequence[Device],
                   chosen: Sequence[Device]) -> dict[str, str]:
    """Take ``chosen`` devices out of ``DeviceAllow=`` except what the unit
    granted before or ``remaining`` devices still grant; returns the undo."""
    if not has_device_policy(unit):
        return {}
    bases: dict[str, str] = {}
    for d in [*chosen, *remaining]:
        bases.setdefault(device_path(d.rule()), d.unit_base)
    touched = {device_path(d.rule()) for d in chosen}
    changes = grants((d.rule() for d in remaining), {p: bases[p] for p in touched})
    return set_device_allow(unit, changes)


# --- I/O limits -------------------------------------------------------------------

#: QosKind key -> systemd property
IO_PROPERTIES = {"read_bps": "IOReadBandwidthMax", "write_bps": "IOWriteBandwidthMax",
                 "read_iops": "IOReadIOPSMax", "write_iops": "IOWriteIOPSMax",
                 "weight": "IODeviceWeight"}


def io_entries(unit: Unit, prop: str) -> dict[str, str]:
    proc = command.run(["systemctl", "show", f"--property={prop}", unit.name])
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        path, _, amount = value.strip().rpartition(" ")
        if key == prop and path:
            out[path] = amount
    return out


@dataclass(frozen=True)
class UnitIO:
    """QoS of a container in a systemd unit: the unit's ``IO*=`` properties
    (systemd enables the io controller for it and writes ``io.max`` and
    ``io.weight`` from them, again at every reload), then the same line in
    the unit's ``io.max`` so that the limit holds when the command returns.
    Same ``apply()`` as qos.BlkioCgroup."""

    unit: Unit

    def apply(self, kind: Any, major: int, minor: int, value: int, path: str) -> None:
        prop = IO_PROPERTIES[kind.key]
        if kind.key != "weight":
            set_property(self.unit, [f"{prop}={path} {value if value else 'infinity'}"])
        elif value:
            set_property(self.unit, [f"{prop}={path} {value}"])
        else:       # no way to drop one entry: write the others again
            others = {p: v for p, v in io_entries(self.unit, prop).items()
                      if not _same_node(p, path)}
            set_property(self.unit, [f"{prop}="] + [f"{prop}={p} {v}" for p, v in others.items()])
        from .qos import BlkioCgroup

        if not kind.v2_key:
            return
        _wait_for(os.path.join(self.unit.cgroup, "io.max"))
        BlkioCgroup(2, self.unit.cgroup).apply(kind, major, minor, value, path)


def _same_node(a: str, b: str) -> bool:
    try:
        return os.stat(a).st_rdev == os.stat(b).st_rdev
    except OSError:
        return a == b


def _wait_for(path: str, seconds: float = 10) -> None:
    """systemd realizes a unit's cgroup settings just after set-property returns."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def set_property(unit: Unit, assigns: list[str]) -> None:
    try:
        command.run(["systemctl", "set-property", "--runtime", unit.name, *assigns])
    except ToolError as err:
        raise ToolError(f"systemd did not take {', '.join(assigns[-3:])} for {unit.name}: "
                        f"{err.message}") from None
