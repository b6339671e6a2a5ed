"""The pure parts of resources/systemd_unit.py: which unit a cgroup path
belongs to, and which DeviceAllow= entries the tool asks for."""

from __future__ import annotations

from syscontainer_tools.resources import systemd_unit
from syscontainer_tools.resources.devcgroup import DevRule


def test_unit_of_runc_podman_and_plain_paths() -> None:
    assert systemd_unit.unit_of("/system.slice/runc-abc.scope") == \
        ("runc-abc.scope", "/system.slice/runc-abc.scope")
    assert systemd_unit.unit_of("machine.slice/libpod-abc.scope/container") == \
        ("libpod-abc.scope", "/machine.slice/libpod-abc.scope")
    assert systemd_unit.unit_of("/system.slice/docker.service/x") == \
        ("docker.service", "/system.slice/docker.service")
    assert systemd_unit.unit_of("/libpod_parent/libpod-abc") is None
    assert systemd_unit.unit_of("/") is None


def test_device_path_by_number() -> None:
    assert systemd_unit.device_path(DevRule("b", 7, 3, "r")) == "/dev/block/7:3"
    assert systemd_unit.device_path(DevRule("c", 10, 200, "rwm")) == "/dev/char/10:200"


def test_grants_add_rules_to_the_units_own_base() -> None:
    rules = [DevRule("b", 7, 3, "r"), DevRule("b", 7, 4, "rw"), DevRule("b", 8, 0, "w")]
    bases = {"/dev/block/7:3": "m", "/dev/block/7:4": ""}
    assert systemd_unit.grants(rules, bases) == {"/dev/block/7:3": "rm", "/dev/block/7:4": "rw"}
    # nothing left for a device: back to exactly the base ("" drops the entry)
    assert systemd_unit.grants([], bases) == bases


def test_device_policy_as_systemd_decides_it():
    # runc --systemd-cgroup: strict, with the container's list
    assert systemd_unit.parse_device_policy(
        "DevicePolicy=strict\nDeviceAllow=char-pts rwm\nDeviceAllow=/dev/null rwm\n")
    assert systemd_unit.parse_device_policy("DevicePolicy=closed\nDeviceAllow=\n")
    assert systemd_unit.parse_device_policy("DevicePolicy=auto\nDeviceAllow=/dev/block/7:3 rw\n")
    # crun (and podman with crun): no policy, no program of systemd's
    assert not systemd_unit.parse_device_policy("DevicePolicy=auto\nDeviceAllow=\n")
    assert not systemd_unit.parse_device_policy("DevicePolicy=auto\n")
