"""Host devices in a container: add, remove, list, QoS, and re-apply at start.

A device is live in a running container when three things hold: its node
exists in the container's mount namespace (:mod:`.devnodes`), the
container's device cgroup allows it (v1 ``devices.allow`` or the v2 eBPF
program, :mod:`.devcgroup`), and its QoS limits are written (:mod:`.qos`).
The model and its saved form are in :mod:`.devspec`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from .. import cgroup, mounts, undo
from ..container import Container
from ..errors import Conflict, NotFound, SpecError
from ..log import get_logger
from . import blockdev, devcgroup, devnodes, systemd_unit
from .blockdev import HostDevice
from .devcgroup import perm_union
from .devspec import COLUMNS, Device, DeviceRef, DeviceSpec, others_perm
from .qos import BlkioCgroup, QosKind, QosSpec, remove_line, update_line
from .state import Record

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Union

    _Blkio = Union[BlkioCgroup, systemd_unit.UnitIO]  # noqa: UP007

log = get_logger(__name__)

__all__ = ["COLUMNS", "Device", "DeviceSpec", "DeviceRef", "QosSpec", "QosKind", "add_devices",
           "remove_devices", "update_qos", "list_devices", "reapply", "poststop", "expand"]


# --- expanding the request ----------------------------------------------------

def _device(host: str, ctr: str, perm: str, dev: HostDevice, parent: str = "") -> Device:
    return Device(host, ctr, dev.kind, dev.major, dev.minor, perm, dev.mode, parent)


def expand(specs: Sequence[DeviceSpec], follow_partition: bool,
           saved: Sequence[Device] = ()) -> list[Device]:
    """The devices add-device would save: one per spec, plus each whole
    disk's partitions with ``follow_partition``."""
    out: list[Device] = []
    disks = {d.host: d for d in saved if d.type == "b" and not d.parent}
    for spec in specs:
        dev = HostDevice.probe(spec.host)
        info = dev.block
        parent = ""
        if info is not None and info.partition and info.disk:
            for host, disk in list(disks.items()):
                dinfo = blockdev.block_info(disk.major, disk.minor)
                if dinfo is not None and dinfo.name == info.disk:
                    parent = host
        device = _device(spec.host, spec.container, spec.perm, dev, parent)
        if any(d.host == device.host for d in out):
            continue
        out.append(device)
        if info is None or info.partition:
            if follow_partition and dev.kind == "c":
                raise SpecError(f"device {spec.host!r}: a char device has no partitions "
                                "(--follow-partition)")
            continue
        disks[spec.host] = device
        if not follow_partition:
            continue
        for _name, node in blockdev.partitions(info):
            pdev = HostDevice.probe(node)
            pinfo = pdev.block
            if pinfo is None:
                continue
            suffix = blockdev.partition_suffix(info.name, pinfo)
            if any(d.host == node for d in out):
                continue
            out.append(_device(node, spec.container + suffix, spec.perm, pdev, spec.host))
    return out


def _check_conflicts(new: Sequence[Device], saved: Sequence[Device]) -> None:
    seen: dict[str, str] = {}
    for device in new:
        for old in saved:
            if old.host == device.host:
                raise Conflict(f"device {device.host} is already added to the container "
                               f"(as {old.container})")
            if old.container == device.container:
                raise Conflict(f"{device.container} in the container is already taken by "
                               f"device {old.host}")
        if device.container in seen:
            raise Conflict(f"{device.host} and {seen[device.container]} both go to "
                           f"{device.container}")
        seen[device.container] = device.host


def _check_qos(qos: Sequence[QosSpec], devices: Sequence[Device]) -> None:
    for q in qos:
        if not any(d.type == "b" and (d.major, d.minor) == q.numbers for d in devices):
            raise NotFound(f"device {q.path} was not added to the container and is not in "
                           "the add-device arguments", hint="add it first with add-device")


def _with_udev_rule(container: Container, device: Device,
                    command: Sequence[str] | None) -> Device:
    """A whole disk with its udev rule (path and text saved in the record)."""
    if command is None or device.type != "b" or device.parent:
        return device
    info = blockdev.block_info(device.major, device.minor)
    if info is None or info.partition:
        return device
    return device.replace(udev_rule=blockdev.rule_path(container.id, info.name),
                          udev_text=blockdev.rule_text(container.id, info.name,
                                                       device.container, device.perm, command))


# --- QoS in the record and the cgroup ------------------------------------------

def _qos_apply(stack: contextlib.ExitStack, blkio: _Blkio | None,
               record: Record, specs: Sequence[QosSpec]) -> list[str]:
    lines = []
    order = list(QosKind)
    for spec in sorted(specs, key=lambda s: order.index(s.kind)):
        saved = next((q for q in record.qos
                      if q.kind is spec.kind and q.numbers == spec.numbers), None)
        before = saved.value if saved else 0
        if blkio is not None:
            blkio.apply(spec.kind, spec.major, spec.minor, spec.value, spec.path)
            undo.push(stack, f"set {spec.kind.words} of {spec.path} back", blkio.apply,
                      spec.kind, spec.major, spec.minor, before, spec.path)
        kept = [q for q in record.qos if q is not saved]
        record.qos = kept + [spec] if spec.value else kept
        lines.append(update_line(spec.kind, spec.path, spec.value))
    return lines


def _qos_drop(stack: contextlib.ExitStack, blkio: _Blkio | None, record: Record,
              device: Device) -> list[str]:
    lines = []
    order = list(QosKind)
    mine = [q for q in record.qos if q.path == device.host or
            (device.type == "b" and q.numbers == (device.major, device.minor))]
    for q in sorted(mine, key=lambda q: order.index(q.kind)):
        if blkio is not None:
            blkio.apply(q.kind, q.major, q.minor, 0, q.path)
            undo.push(stack, f"set {q.kind.words} of {q.path} back", blkio.apply, q.kind,
                      q.major, q.minor, q.value, q.path)
        record.qos = [x for x in record.qos if x is not q]
        lines.append(remove_line(q.kind, device.host))
    return lines




def _blkio(pid: int) -> _Blkio:
    """Where QoS goes: the cgroup files, or systemd's unit properties."""
    unit = systemd_unit.for_cgroup(cgroup.for_pid(pid).v2)
    return systemd_unit.UnitIO(unit) if unit else BlkioCgroup.for_pid(pid)


# --- the commands ----------------------------------------------------------------

def add_devices(container: Container, record: Record, specs: Sequence[DeviceSpec], *,
                qos: Sequence[QosSpec] = (), follow_partition: bool = False,
                force: bool = False, update_config_only: bool = False,
                ref: str | None = None,
                udev_command: Sequence[str] | None = None) -> list[str]:
    """Add host devices (and their QoS) to a container; returns the result lines.

    Live on a running container unless ``update_config_only``; always saved
    in ``record``.  All or nothing: a failure rolls back every device already
    applied and leaves ``record`` unchanged.  ``udev_command`` (the CLI
    prefix a udev rule runs) gives whole disks a rule for later partitions."""
    ref = ref or container.name
    new = expand(specs, follow_partition, record.devices)
    _check_conflicts(new, record.devices)
    _check_qos(qos, [*record.devices, *new])
    live = container.running and not update_config_only
    new = [_with_udev_rule(container, d, udev_command) for d in new]
    with _rollback(record):
        lines: list[str] = []
        if not live:
            record.devices = record.devices + new
            lines += [d.add_line(ref) for d in new]
            with contextlib.ExitStack() as stack:
                lines += _qos_apply(stack, None, record, qos)
                stack.pop_all()
            return lines
        with devnodes.live(container) as lv, contextlib.ExitStack() as stack:
            nodes = [devnodes.node_for(d, lv) for d in new]
            made = lv.run_nodes(devnodes.make_nodes, nodes, force, False)
            undo.push(stack, "remove the nodes made", lv.run, devnodes.unmake_nodes, nodes, made)
            new = _allow(stack, lv, record, new)
            for device in new:
                if device.udev_rule and blockdev.write_rule(device.udev_rule, device.udev_text):
                    undo.push(stack, f"remove udev rule {device.udev_rule}",
                              blockdev.remove_rule, device.udev_rule)
            record.devices = record.devices + new
            lines += [d.add_line(ref) for d in new]
            if qos:
                lines += _qos_apply(stack, _blkio(container.pid), record, qos)
            stack.pop_all()
            if any(m.backup for m in made):
                undo.quietly("drop the files replaced", lv.run, devnodes.commit_nodes, nodes,
                             made)
        return lines


def _allow(stack: contextlib.ExitStack, lv: devnodes.Live, record: Record,
           new: Sequence[Device]) -> list[Device]:
    """Grant ``new`` in the device cgroup(s), undo pushed on ``stack``;
    returns them with what v1 granted before."""
    out = list(new)
    if lv.cgroups.v1:
        v1 = lv.cgroups.v1
        out = [d.replace(preallowed=devcgroup.v1_preallowed(v1, d.rule())) for d in new]
        for device in out:
            devcgroup.v1_allow(v1, device.rule())
            undo.push(stack, f"deny {device.host} again", devcgroup.v1_deny, v1, device.rule(),
                      others_perm([*record.devices, *out], device))
    if lv.unit:
        back, bases = systemd_unit.allow_devices(lv.unit, record.devices, out)
        out = [d.replace(unit_base=bases[systemd_unit.device_path(d.rule())]) for d in out]
        undo.push(stack, f"restore DeviceAllow= of {lv.unit.name}",
                  systemd_unit.set_device_allow, lv.unit, back)
    if lv.cgroups.v2:
        before = [d.rule() for d in record.devices]
        lv.cgroups.v2_sync([*before, *(d.rule() for d in out)])
        undo.push(stack, "restore the device program", lv.cgroups.v2_sync, before)
    return out


def remove_devices(container: Container, record: Record, refs: Sequence[DeviceRef], *,
                   follow_partition: bool = False, ref: str | None = None) -> list[str]:
    """Remove saved devices (matched by host and/or container path) from a
    container: node unlinked inside, cgroup permission and QoS taken back,
    udev rule dropped, record updated.  All or nothing."""
    ref = ref or container.name
    chosen: list[Device] = []
    for wanted in refs:
        found = [d for d in record.devices if wanted.matches(d)]
        if not found:
            raise NotFound(f"device pair ({wanted}) was not added by syscontainer-tools")
        for device in found:
            if device not in chosen:
                chosen.append(device)
            if follow_partition:
                chosen += [p for p in record.devices
                           if p.parent == device.host and p not in chosen]
    lines: list[str] = []
    with _rollback(record), contextlib.ExitStack() as stack:
        lv = stack.enter_context(devnodes.live(container)) if container.running else None
        remaining = [d for d in record.devices if d not in chosen]
        blkio = None
        if lv is not None:
            nodes = [devnodes.node_for(d, lv) for d in chosen]
            gone = lv.run(devnodes.remove_nodes, nodes)
            undo.push(stack, "put the nodes back", lv.run_nodes, devnodes.restore_nodes,
                      [g for g in gone if g])
            if lv.cgroups.v1:
                for device in chosen:
                    keep = perm_union(others_perm(remaining, device), device.preallowed)
                    devcgroup.v1_deny(lv.cgroups.v1, device.rule(), keep)
                    undo.push(stack, f"allow {device.host} again", devcgroup.v1_allow,
                              lv.cgroups.v1, device.rule())
            if lv.cgroups.v2:
                lv.cgroups.v2_sync([d.rule() for d in remaining])
                undo.push(stack, "restore the device program", lv.cgroups.v2_sync,
                          [d.rule() for d in record.devices])
            if lv.unit:
                back = systemd_unit.revoke_devices(lv.unit, remaining, chosen)
                undo.push(stack, f"restore DeviceAllow= of {lv.unit.name}",
                          systemd_unit.set_device_allow, lv.unit, back)
            if record.qos:
                blkio = _blkio(container.pid)
        for device in chosen:
            if device.udev_rule and blockdev.remove_rule(device.udev_rule):
                undo.push(stack, f"write udev rule {device.udev_rule} again",
                          blockdev.write_rule, device.udev_rule, device.udev_text)
        for device in chosen:
            lines.append(device.remove_line(ref))
            lines += _qos_drop(stack, blkio, record, device)
            record.devices = [d for d in record.devices if d is not device]
        stack.pop_all()
    return lines


def update_qos(container: Container, record: Record, qos: Sequence[QosSpec], *,
               update_config_only: bool = False) -> list[str]:
    """Set QoS limits of devices already added (value 0 removes a limit)."""
    if not qos:
        raise SpecError("give at least one QoS option (--device-read-bps, --device-write-bps, "
                        "--device-read-iops, --device-write-iops, --blkio-weight-device)")
    _check_qos(qos, record.devices)
    with _rollback(record), contextlib.ExitStack() as stack:
        blkio = _blkio(container.pid) \
            if container.running and not update_config_only else None
        lines = _qos_apply(stack, blkio, record, qos)
        stack.pop_all()
    return lines


def list_devices(record: Record, sub_partition: bool = False) -> list[dict[str, Any]]:
    """list-device's rows: whole devices, and partitions with ``sub_partition``."""
    return [d.row(" ".join(f"{q.kind.key}={q.value}" for q in record.qos if q.path == d.host))
            for d in record.devices if sub_partition or not d.parent]


# --- hooks -------------------------------------------------------------------------

def reapply(container: Container, pidfd: int, record: Record) -> list[str]:
    """prestart: re-create every saved device in a freshly started container.

    Nodes (an identical node already there is kept, anything else at the
    target is replaced), cgroup permissions, udev rules and QoS.  A host
    device whose major/minor changed since it was saved is applied with the
    new numbers and ``record`` is updated (call this inside
    ``store.transaction()`` to keep that).  Saved devices whose host path is
    gone are skipped and then reported in one NotFound naming them, after
    everything else was applied; the hook decides whether that fails the
    start.  Returns log lines."""
    lines: list[str] = []
    missing: list[str] = []
    present: list[Device] = []
    devices: list[Device] = []
    for device in record.devices:
        try:
            dev = HostDevice.probe(device.host)
        except SpecError:
            missing.append(f"{device.host} (container {device.container})")
            devices.append(device)
            continue
        if (dev.kind, dev.major, dev.minor) != device.numbers:
            msg = (f"device {device.host} is now {dev.kind} {dev.major}:{dev.minor} "
                   f"(saved as {device.type} {device.major}:{device.minor})")
            log.warning("%s", msg)
            lines.append(msg)
            record.qos = [q.replace(major=dev.major, minor=dev.minor)
                          if q.path == device.host else q for q in record.qos]
            device = device.replace(type=dev.kind, major=dev.major, minor=dev.minor)
        device = device.replace(mode=dev.mode)
        present.append(device)
        devices.append(device)
    if present:
        cgs, unit = systemd_unit.device_cgroups(container.pid)
        with mounts.host_proc() as procfd:
            lv = devnodes.Live(container, pidfd, container.host_ids(), cgs,
                               devnodes.in_userns(container.pid), procfd, unit)
            lv.run_nodes(devnodes.ensure_nodes, [devnodes.node_for(d, lv) for d in present])
        if cgs.v1:
            granted = {}
            for device in present:
                granted[device.host] = devcgroup.v1_preallowed(cgs.v1, device.rule())
                devcgroup.v1_allow(cgs.v1, device.rule())
            present = [d.replace(preallowed=granted[d.host]) for d in present]
            devices = [d.replace(preallowed=granted[d.host]) if d.host in granted else d
                       for d in devices]
        if unit:        # a new unit: what it grants now is each device's base
            _, bases = systemd_unit.allow_devices(unit, [], [d.replace(unit_base="")
                                                            for d in present])
            based = {d.host: d.replace(unit_base=bases[systemd_unit.device_path(d.rule())])
                     for d in present}
            present = [based[d.host] for d in present]
            devices = [based.get(d.host, d) for d in devices]
        cgs.v2_sync([d.rule() for d in present])
        for device in present:
            if device.udev_rule and device.udev_text:
                blockdev.write_rule(device.udev_rule, device.udev_text)
            lines.append(f"device {device.host} -> {device.container} "
                         f"({device.type} {device.major}:{device.minor} {device.perm})")
    record.devices = devices
    hosts = {d.host for d in present}
    qos = [q for q in record.qos if q.path in hosts]
    if qos:
        blkio = _blkio(container.pid)
        for q in qos:
            blkio.apply(q.kind, q.major, q.minor, q.value, q.path)
            lines.append(update_line(q.kind, q.path, q.value))
    if missing:
        raise NotFound("saved device(s) missing on the host: " + ", ".join(missing))
    return lines


def poststop(container: Container, record: Record) -> list[str]:
    """poststop: remove the udev rules of the container's disks (never raises
    for a rule already gone).  Saved state stays for the next start."""
    lines = []
    paths = {d.udev_rule for d in record.devices if d.udev_rule}
    paths.update(blockdev.rules_of(container.id))
    for path in sorted(paths):
        try:
            if blockdev.remove_rule(path):
                lines.append(f"removed udev rule {path}")
        except OSError as err:
            log.warning("cannot remove udev rule %s: %s", path, err)
    return lines


@contextlib.contextmanager
def _rollback(record: Record) -> Iterator[None]:
    """Put ``record``'s devices and QoS back as they were if the block fails
    (the transaction would not save them, but the caller may read them)."""
    devices, qos = list(record.devices), list(record.qos)
    try:
        yield
    except BaseException:
        record.devices, record.qos = devices, qos
        raise
