"""The library API: what the CLI, the OCI hook and any other program call.

Every changing call has one shape: find the container, lock its saved
record, apply the change (live where the container runs), save the record
-- only if the change succeeded; a failure leaves the record as it was.
The result says what was done, in the original tool's words.

    tools = Tools(state_dir="/var/lib/syscontainer-tools")
    done = tools.add_devices("web1", [DeviceSpec.parse("/dev/loop3:/dev/sdb:rw")])
    print("\\n".join(done.lines))

``reapply()`` and ``restore()`` are the hook's two halves: prestart puts
everything saved back into a starting container, poststop gives physical
NICs back to the host.  Resource modules are imported by the calls that
need them, so importing this module stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .resources.state import DEFAULT_STATE_DIR, Record, StateStore

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from .container import Container
    from .engines import Engine
    from .resources.devspec import DeviceRef, DeviceSpec
    from .resources.nicspec import Nic, NicName, NicType, NicUpdate
    from .resources.pathspec import PathSpec
    from .resources.qos import QosSpec
    from .resources.routespec import RouteSpec

Apply = Callable[["Container", Record], list[str]]
Rows = list[dict[str, "Any"]]


@dataclass(frozen=True)
class Outcome:
    """What one changing call did: the container and the result lines."""

    container: Container
    lines: list[str] = field(default_factory=list)

    @property
    def saved_only(self) -> bool:
        """The container is not running: the change is saved and applied when it starts."""
        return not self.container.running


@dataclass(frozen=True)
class Tools:
    """Where containers are found and where their resources are saved."""

    engine: Engine | None = None          # None: auto
    runtime_root: str | None = None
    state_dir: str = DEFAULT_STATE_DIR

    @property
    def store(self) -> StateStore:
        return StateStore(self.state_dir)

    def find(self, ref: str) -> Container:
        """A full id, a unique id prefix or a name -> the container."""
        from .engines import Engine, find

        return find(ref, self.engine or Engine.AUTO, self.runtime_root)

    def change(self, ref: str, apply: Apply) -> Outcome:
        """Find ``ref``, hold its record's lock while ``apply(container,
        record)`` changes it, save it if that succeeded."""
        container = self.find(ref)
        with self.store.transaction(container.id) as record:
            lines = apply(container, record)
        return Outcome(container, lines)

    def saved(self, ref: str) -> tuple[Container, Record]:
        """The container and a consistent copy of its saved record."""
        container = self.find(ref)
        return container, self.store.load(container.id)

    # --- devices -------------------------------------------------------------

    def add_devices(self, ref: str, specs: Sequence[DeviceSpec], *,
                    qos: Sequence[QosSpec] = (), follow_partition: bool = False,
                    force: bool = False, update_config_only: bool = False,
                    udev_command: Sequence[str] | None = None) -> Outcome:
        from .resources import device

        return self.change(ref, lambda c, r: device.add_devices(
            c, r, specs, qos=qos, follow_partition=follow_partition, force=force,
            update_config_only=update_config_only, ref=ref,
            udev_command=udev_command if udev_command is not None else self.udev_command(c)))

    def remove_devices(self, ref: str, refs: Sequence[DeviceRef], *,
                       follow_partition: bool = False) -> Outcome:
        from .resources import device

        return self.change(ref, lambda c, r: device.remove_devices(
            c, r, refs, follow_partition=follow_partition, ref=ref))

    def update_devices(self, ref: str, qos: Sequence[QosSpec]) -> Outcome:
        from .resources import device

        return self.change(ref, lambda c, r: device.update_qos(c, r, qos))

    def list_devices(self, ref: str, *, sub_partition: bool = False) -> Rows:
        from .resources import device

        return device.list_devices(self.saved(ref)[1], sub_partition)

    def udev_command(self, container: Container) -> list[str]:
        """The command a whole disk's udev rule runs for a new partition:
        this tool, pointed at the same engine and state directory -- by
        systemd-run where systemd is init, since systemd-udevd's sandbox
        (its system-call filter has no chroot or mount) refuses to enter a
        container."""
        import sys

        from .resources import systemd_unit

        engine = container.engine or self.engine
        argv = [sys.executable, "-m", "syscontainer_tools", "--engine",
                engine.value if engine is not None else "auto", "--state-dir", self.state_dir]
        root = container.runtime_root or self.runtime_root
        if root:
            argv += ["--runtime-root", root]
        return systemd_unit.outside_udev_sandbox() + argv

    # --- paths -----------------------------------------------------------------

    def add_paths(self, ref: str, specs: Sequence[PathSpec], *,
                  update_config_only: bool = False) -> Outcome:
        from .resources import path

        return self.change(ref, lambda c, r: path.add_paths(
            c, r, specs, ref=ref, update_config_only=update_config_only))

    def remove_paths(self, ref: str, specs: Sequence[PathSpec]) -> Outcome:
        from .resources import path

        return self.change(ref, lambda c, r: path.remove_paths(c, r, specs, ref=ref))

    def list_paths(self, ref: str) -> Rows:
        from .resources import path

        return path.list_paths(self.saved(ref)[1])

    # --- NICs and routes -----------------------------------------------------------

    def add_nic(self, ref: str, nic: Nic, *, update_config_only: bool = False,
                force: bool = False) -> Outcome:
        from .resources import nic as nics

        return self.change(ref, lambda c, r: nics.add_nic(
            c, r, nic, ref=ref, update_config_only=update_config_only, force=force,
            store=self.store))

    def remove_nic(self, ref: str, name: NicName, kind: NicType | None = None) -> Outcome:
        from .resources import nic as nics

        return self.change(ref, lambda c, r: nics.remove_nic(c, r, name, kind, ref=ref))

    def update_nic(self, ref: str, upd: NicUpdate, *, update_config_only: bool = False) -> Outcome:
        from .resources import nic as nics

        return self.change(ref, lambda c, r: nics.update_nic(
            c, r, upd, ref=ref, update_config_only=update_config_only))

    def list_nics(self, ref: str, filter_json: str | None = None) -> Rows:
        from .resources import nic as nics

        return nics.list_nics(self.saved(ref)[1], filter_json)

    def add_routes(self, ref: str, specs: Sequence[RouteSpec], *,
                   update_config_only: bool = False) -> Outcome:
        from .resources import route

        return self.change(ref, lambda c, r: route.add_routes(
            c, r, specs, ref=ref, update_config_only=update_config_only))

    def remove_routes(self, ref: str, patterns: Sequence[RouteSpec], *,
                      update_config_only: bool = False) -> Outcome:
        from .resources import route

        return self.change(ref, lambda c, r: route.remove_routes(
            c, r, patterns, ref=ref, update_config_only=update_config_only))

    def list_routes(self, ref: str, filter_json: str | None = None) -> Rows:
        from .resources import route

        return [dict(row) for row in route.list_routes(self.saved(ref)[1], filter_json)]

    def relabel(self, ref: str) -> Outcome:
        from .resources import selinux

        return self.change(ref, lambda c, r: selinux.relabel(c, r, ref=ref))


# --- the hook's two halves --------------------------------------------------------------

def reapply(container: Container, store: StateStore) -> list[str]:
    """Prestart: re-apply everything saved for ``container``, in the
    original's order: devices (nodes, device cgroup, QoS), bind-mounted
    paths, NICs, then routes.  Updates the record where the host changed
    (a device's new numbers, an eth's host state)."""
    done: list[str] = []
    with store.transaction(container.id) as record, container.init_process() as pidfd:
        if record.devices or record.qos:
            from .resources import device
            done += device.reapply(container, pidfd, record)
        if record.paths:
            from .resources import path
            done += path.reapply(container, pidfd, record)
        if record.nics or record.routes:
            from .resources import nic, route
            nic.pin_netns(container)
            # one pair of netlink handles (one fork into the namespace) for both
            with nic.live_netns(container, pidfd) as handles:
                done += nic.reapply(container, pidfd, record, handles)
                done += route.reapply(container, pidfd, record, handles.ctr_net)
    return done


def restore(container: Container, store: StateStore) -> tuple[list[str], list[str]]:
    """Poststop: udev rules removed, physical NICs back to the host, veth
    host ends deleted, the pinned namespace released.  Every step is tried;
    returns (what was done, what failed).  The saved state stays."""
    from .netlink import pin_path

    record = store.load(container.id)
    done: list[str] = []
    errors: list[str] = []
    pinned = os.path.lexists(pin_path(container.id))
    steps: list[tuple[str, Callable[[], list[str]]]] = []
    if record.devices:
        from .resources import device
        steps.append(("devices", lambda: device.poststop(container, record)))
    if record.nics or pinned:  # also unpins a netns whose NICs were removed since
        from .resources import nic
        steps.append(("network interfaces", lambda: nic.poststop(container, record)))
    for what, step in steps:
        try:
            done += step()
        except Exception as err:  # noqa: BLE001 - every step is tried
            errors.append(f"{what}: {err}")
    return done, errors
