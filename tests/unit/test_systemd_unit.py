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


def item(kind: str, major: int, minor: int, perm: str, **kw: str) -> dict:
    return {"type": kind, "major": major, "minor": minor, "perm": perm, **kw}


def test_device_path_by_number() -> None:
    assert systemd_unit.device_path(DevRule("b", 7, 3, "r")) == "/dev/block/7:3"
    assert systemd_unit.device_path(DevRule("c", 10, 200, "rwm")) == "/dev/char/10:200"


def test_plan_keeps_the_units_own_grant_as_base() -> None:
    current = {"/dev/char/10:200": "rwm", "/dev/block/7:3": "m"}
    new = [item("b", 7, 3, "r"), item("b", 7, 4, "rw")]
    plan = systemd_unit._plan(current, new, new)
    assert plan == {"/dev/block/7:3": "rm", "/dev/block/7:4": "rw"}
    assert [i["unit_base"] for i in new] == ["m", ""]
    # removing gives back exactly the base, whatever the unit shows by then
    after = {"/dev/block/7:3": "rm", "/dev/block/7:4": "rw"}
    assert systemd_unit._plan(after, [], new) == {"/dev/block/7:3": "m", "/dev/block/7:4": ""}


def test_plan_removal_keeps_what_other_items_of_the_device_grant() -> None:
    a = item("b", 7, 3, "r", unit_base="")
    b = item("b", 7, 3, "w", unit_base="")
    assert systemd_unit._plan({"/dev/block/7:3": "rw"}, [b], [a]) == {"/dev/block/7:3": "w"}
