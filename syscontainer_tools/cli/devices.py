"""add-device, remove-device, list-device, update-device.

Imports only typer at load time: the device library (and what it needs) is
imported when one of these commands runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from . import Container, Format, Pretty, UpdateConfigOnly, app, change, handles, options, show

_QOS_HELP = {
    "weight": "Block IO weight DEV:W (relative weight, 0 or 10 to 1000)",
    "read_bps": "Limit read rate from a device, DEV:RATE (bytes per second; k, m, g suffixes)",
    "write_bps": "Limit write rate to a device, DEV:RATE (bytes per second; k, m, g suffixes)",
    "read_iops": "Limit read rate from a device, DEV:N (IO per second)",
    "write_iops": "Limit write rate to a device, DEV:N (IO per second)",
}


_Specs = Optional[list[str]]
Weight = Annotated[_Specs, typer.Option("--blkio-weight-device", metavar="DEV:W",
                                        help=_QOS_HELP["weight"])]
ReadBps = Annotated[_Specs, typer.Option("--device-read-bps", metavar="DEV:RATE",
                                         help=_QOS_HELP["read_bps"])]
WriteBps = Annotated[_Specs, typer.Option("--device-write-bps", metavar="DEV:RATE",
                                          help=_QOS_HELP["write_bps"])]
ReadIops = Annotated[_Specs, typer.Option("--device-read-iops", metavar="DEV:N",
                                          help=_QOS_HELP["read_iops"])]
WriteIops = Annotated[_Specs, typer.Option("--device-write-iops", metavar="DEV:N",
                                           help=_QOS_HELP["write_iops"])]


def _qos_specs(values: dict[str, list[str] | None], action: str) -> list[Any]:
    from ..errors import SpecError
    from ..resources.qos import QosKind, QosSpec

    out = []
    for key, texts in values.items():
        for text in texts or []:
            try:
                out.append(QosSpec.parse(QosKind.from_key(key), text))
            except SpecError as err:
                err.action = action
                raise
    return out


def _device_specs(texts: list[str]) -> list[Any]:
    from ..errors import SpecError
    from ..resources.blockdev import HostDevice
    from ..resources.device import DeviceSpec

    specs = []
    for text in texts:
        try:
            spec = DeviceSpec.parse(text)
            HostDevice.probe(spec.host, text)
        except SpecError as err:
            err.action = "parse device"
            raise
        specs.append(spec)
    return specs


def _udev_command(container: Any) -> list[str]:
    opts = options()
    engine = container.engine if container.engine not in ("oci", "") else opts.engine
    argv = [sys.executable, "-m", "syscontainer_tools", "--engine", engine,
            "--state-dir", opts.state_dir]
    root = container.runtime_root or opts.runtime_root
    if root:
        argv += ["--runtime-root", root]
    return argv


@app.command("add-device")
@handles("add device")
def add_device(
    container: Container,
    devices: Annotated[list[str], typer.Argument(metavar="HOSTDEV[:CTRDEV][:PERM]...",
                                        help="PERM is a subset of rwm (default rwm)")],
    blkio_weight_device: Weight = None,
    device_read_bps: ReadBps = None,
    device_write_bps: WriteBps = None,
    device_read_iops: ReadIops = None,
    device_write_iops: WriteIops = None,
    follow_partition: bool = typer.Option(False, "--follow-partition",
                                          help="also add every partition of a whole disk"),
    force: bool = typer.Option(False, "--force",
                               help="replace a file already at the container path"),
    update_config_only: UpdateConfigOnly = False,
) -> None:
    """Add host block or char devices to a container."""
    from ..resources import device

    specs = _device_specs(devices)
    qos = _qos_specs({"weight": blkio_weight_device, "read_bps": device_read_bps,
                      "write_bps": device_write_bps, "read_iops": device_read_iops,
                      "write_iops": device_write_iops}, "add device")
    change(container, lambda c, record: device.add_devices(
        c, record, specs, qos=qos, follow_partition=follow_partition, force=force,
        update_config_only=update_config_only, label=container, udev_command=_udev_command(c)))


@app.command("remove-device")
@handles("remove device")
def remove_device(
    container: Container,
    devices: Annotated[list[str], typer.Argument(metavar="HOSTDEV[:CTRDEV]...",
                                                 help="devices as added")],
    follow_partition: bool = typer.Option(False, "--follow-partition",
                                          help="also remove the partitions of a whole disk"),
) -> None:
    """Remove devices added by add-device from a container."""
    from ..errors import SpecError
    from ..resources import device

    refs = []
    for text in devices:
        try:
            refs.append(device.DeviceRef.parse(text))
        except SpecError as err:
            err.action = "parse device"
            raise
    change(container, lambda c, record: device.remove_devices(
        c, record, refs, follow_partition=follow_partition, label=container))


@app.command("list-device")
@handles("list device")
def list_device(
    container: Container,
    pretty: Pretty = False,
    sub_partition: bool = typer.Option(False, "--sub-partition",
                                       help="also list the partitions of whole disks"),
    fmt: Format = "table",
) -> None:
    """List the devices added to a container."""
    from ..resources import device

    show(container, lambda record: device.list_devices(record, sub_partition),
         device.LIST_COLUMNS, fmt=fmt, pretty=pretty, what="Devices")


@app.command("update-device")
@handles("update device")
def update_device(
    container: Container,
    blkio_weight_device: Weight = None,
    device_read_bps: ReadBps = None,
    device_write_bps: WriteBps = None,
    device_read_iops: ReadIops = None,
    device_write_iops: WriteIops = None,
) -> None:
    """Update the QoS limits of devices already added."""
    from ..resources import device

    qos = _qos_specs({"weight": blkio_weight_device, "read_bps": device_read_bps,
                      "write_bps": device_write_bps, "read_iops": device_read_iops,
                      "write_iops": device_write_iops}, "update device")
    change(container, lambda c, record: device.update_qos(c, record, qos))
