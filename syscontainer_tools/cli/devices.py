"""add-device, remove-device, list-device, update-device.

Imports only typer at load time: the device library (and what it needs) is
imported when one of these commands runs, so ``--help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional, TypeVar

import typer

from .. import commands
from . import Container, Format, Pretty, UpdateConfigOnly, command, options, show

if TYPE_CHECKING:  # pragma: no cover
    pass

T = TypeVar("T")

_HOST = "DEV is the device's path on the host, as given to add-device"
_QOS_HELP = {
    "weight": f"Block IO weight DEV:W (relative weight, 0 or 10 to 1000); {_HOST}",
    "read_bps": "Limit read rate from a device, DEV:RATE (bytes per second; k, m, g "
                f"suffixes); {_HOST}",
    "write_bps": "Limit write rate to a device, DEV:RATE (bytes per second; k, m, g "
                 f"suffixes); {_HOST}",
    "read_iops": f"Limit read rate from a device, DEV:N (IO per second); {_HOST}",
    "write_iops": f"Limit write rate to a device, DEV:N (IO per second); {_HOST}",
}

_Specs = Optional[list[str]]  # an alias: evaluated at run time, also on 3.9
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
DeviceSpecs = Annotated[list[str], typer.Argument(metavar="HOSTDEV[:CTRDEV][:PERM]...",
                                                 help="PERM is a subset of rwm (default rwm)")]
DeviceRefs = Annotated[list[str], typer.Argument(metavar="HOSTDEV[:CTRDEV]...",
                                                help="devices as added")]
FollowPartition = Annotated[bool, typer.Option(
    "--follow-partition", help="also the partitions of a whole disk")]


@command("add-device", "add device")
def add_device(
    container: Container,
    devices: DeviceSpecs,
    blkio_weight_device: Weight = None,
    device_read_bps: ReadBps = None,
    device_write_bps: WriteBps = None,
    device_read_iops: ReadIops = None,
    device_write_iops: WriteIops = None,
    follow_partition: FollowPartition = False,
    force: Annotated[bool, typer.Option(
        "--force", help="replace a file already at the container path")] = False,
    update_config_only: UpdateConfigOnly = False,
) -> None:
    """Add host block or char devices to a container.

    Needs root.

    Example: syscontainer-tools add-device web1 /dev/sdb:/dev/sdc:rw
    --device-read-bps /dev/sdb:10m
    """
    commands.add_device(options(), container, devices, {
        "weight": blkio_weight_device, "read_bps": device_read_bps,
        "write_bps": device_write_bps, "read_iops": device_read_iops,
        "write_iops": device_write_iops}, follow_partition=follow_partition, force=force,
        update_config_only=update_config_only)


@command("remove-device", "remove device")
def remove_device(
    container: Container,
    devices: DeviceRefs,
    follow_partition: FollowPartition = False,
) -> None:
    """Remove devices added by add-device from a container.

    Needs root.

    Example: syscontainer-tools remove-device web1 /dev/sdb:/dev/sdc
    """
    commands.remove_device(options(), container, devices, follow_partition=follow_partition)


@command("list-device", "list device")
def list_device(
    container: Container,
    pretty: Pretty = False,
    sub_partition: Annotated[bool, typer.Option(
        "--sub-partition", help="also list the partitions of whole disks")] = False,
    fmt: Format = "table",
) -> None:
    """List the devices added to a container.

    Needs root (the saved state is root's).

    Example: syscontainer-tools list-device --pretty web1
    """
    from ..resources.devspec import COLUMNS

    show(options().tools.list_devices(container, sub_partition=sub_partition), COLUMNS,
         fmt=fmt, pretty=pretty, title=f"Devices of {container}")


@command("update-device", "update device")
def update_device(
    container: Container,
    blkio_weight_device: Weight = None,
    device_read_bps: ReadBps = None,
    device_write_bps: WriteBps = None,
    device_read_iops: ReadIops = None,
    device_write_iops: WriteIops = None,
) -> None:
    """Update the QoS limits of devices already added (0 removes a limit).

    Needs root.

    Example: syscontainer-tools update-device web1 --device-write-iops /dev/sdb:500
    """
    commands.update_device(options(), container, {
        "weight": blkio_weight_device, "read_bps": device_read_bps,
        "write_bps": device_write_bps, "read_iops": device_read_iops,
        "write_iops": device_write_iops})
