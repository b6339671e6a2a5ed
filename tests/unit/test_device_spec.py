"""Parsing of device and QoS specs, rules text, devices.list, list rows (no root)."""

from __future__ import annotations

import struct

import pytest

from syscontainer_tools.errors import SpecError
from syscontainer_tools.resources import blockdev, devcgroup, systemd_unit
from syscontainer_tools.resources.device import Device, DeviceRef, DeviceSpec, list_devices
from syscontainer_tools.resources.qos import QosKind, QosSpec, parse_rate
from syscontainer_tools.resources.state import Record


@pytest.mark.parametrize("text, want", [
    ("/dev/sdb", ("/dev/sdb", "/dev/sdb", "rwm")),
    ("/dev/sdb:/dev/sdc", ("/dev/sdb", "/dev/sdc", "rwm")),
    ("/dev/sdb:rw", ("/dev/sdb", "/dev/sdb", "rw")),
    ("/dev/sdb:m", ("/dev/sdb", "/dev/sdb", "m")),
    ("/dev/sdb:/dev/x:wr", ("/dev/sdb", "/dev/x", "wr")),
    ("/dev//sdb/:/dev/a/../x", ("/dev/sdb", "/dev/x", "rwm")),
    ("/dev/sdb::r", ("/dev/sdb", "/dev/sdb", "r")),
])
def test_device_spec_ok(text, want):
    spec = DeviceSpec.parse(text)
    assert (spec.host, spec.container, spec.perm) == want


@pytest.mark.parametrize("text, words", [
    ("/dev/sdb:/dev/sdb1:rwx", "device '/dev/sdb:/dev/sdb1:rwx': permission 'x' is not one of r, w, m"),
    ("/dev/sdb:rwx", "permission 'x' is not one of r, w, m"),
    ("/dev/sdb:/dev/x:rr", "repeats"),
    ("/dev/sdb:/dev/x:", "permission is empty"),
    ("dev/sdb", "host path 'dev/sdb' is not absolute"),
    ("/dev/sdb:dev/x", "container path 'dev/x' is not absolute"),
    ("/dev/sdb:/dev/x:rw:m", "too many"),
    (":/dev/x", "host path is empty"),
    ("/dev/sdb:/", "cannot be /"),
])
def test_device_spec_bad(text, words):
    with pytest.raises(SpecError) as err:
        DeviceSpec.parse(text)
    assert words in str(err.value)


def test_device_ref():
    assert DeviceRef.parse("/dev/a") == DeviceRef("/dev/a", None)
    assert DeviceRef.parse(":/dev/b") == DeviceRef(None, "/dev/b")
    assert DeviceRef.parse("/dev/a:/dev/b") == DeviceRef("/dev/a", "/dev/b")
    assert DeviceRef.parse("/dev/a:rw") == DeviceRef("/dev/a", None)
    with pytest.raises(SpecError):
        DeviceRef.parse(":")
    item = Device("/dev/a", "/dev/b", "b", 7, 0)
    assert DeviceRef("/dev/a", None).matches(item)
    assert not DeviceRef("/dev/a", "/dev/c").matches(item)


@pytest.mark.parametrize("text, value", [
    ("10m", 10485760), ("10M", 10485760), ("1k", 1024), ("1kb", 1024), ("1KB", 1024),
    ("512", 512), ("1g", 1 << 30), ("1.5k", 1536), ("2t", 2 << 40), ("1p", 1 << 50),
    ("0", 0), ("7b", 7),
])
def test_parse_rate(text, value):
    assert parse_rate(text) == value


@pytest.mark.parametrize("text", ["", "k", "fast", "1.2.3", "-1", "10x", "1 m"])
def test_parse_rate_bad(text):
    with pytest.raises(ValueError):
        parse_rate(text)


def test_qos_spec_errors():
    with pytest.raises(SpecError, match="expected DEVICE:VALUE"):
        QosSpec.parse(QosKind.READ_BPS, "/dev/null")
    with pytest.raises(SpecError, match="char device"):
        QosSpec.parse(QosKind.READ_BPS, "/dev/null:1m")
    with pytest.raises(SpecError, match="weight must be 0 or 10 to 1000"):
        QosSpec.parse(QosKind.WEIGHT, "/dev/null:5")
    with pytest.raises(SpecError, match="invalid rate"):
        QosSpec.parse(QosKind.WRITE_IOPS, "/dev/null:lots")
    with pytest.raises(SpecError, match="not absolute"):
        QosSpec.parse(QosKind.WRITE_IOPS, "dev/null:1")
    with pytest.raises(SpecError, match="does not exist"):
        QosSpec.parse(QosKind.WRITE_IOPS, "/dev/does-not-exist-here:1")


def test_allowed_by_list():
    text = "c 1:3 rwm\nb *:* m\nc 136:* rw\nb 7:3 r\n"
    assert devcgroup.allowed_by_list(text, "c", 1, 3) == "rwm"
    assert devcgroup.allowed_by_list(text, "b", 7, 3) == "rm"
    assert devcgroup.allowed_by_list(text, "b", 8, 0) == "m"
    assert devcgroup.allowed_by_list(text, "c", 136, 4) == "rw"
    assert devcgroup.allowed_by_list("a *:* rwm\n", "b", 7, 0) == "rwm"
    assert devcgroup.perm_minus("rwm", "m") == "rw"
    assert devcgroup.perm_union("r", "mw") == "rwm"


def test_bpf_prefix_shape():
    rules = [devcgroup.DevRule("b", 7, 3, "rw")]
    insns = devcgroup._prefix(rules)
    code, _, _, imm = struct.unpack("<BBhi", insns[0])
    assert imm == devcgroup.MARKER
    assert struct.unpack("<BBhi", insns[1])[3] == len(insns)
    # every jump lands inside the prefix or just after it
    for pc, raw in enumerate(insns):
        code, _, off, _ = struct.unpack("<BBhi", raw)
        if code == 0x55:
            assert pc + 1 + off <= len(insns)
    info = devcgroup.ProgInfo(1, devcgroup.PROG_NAME, insns + [b"\xb7" + bytes(7), b"\x95" +
                                                               bytes(7)], 0)
    assert devcgroup.original_code(info) == [b"\xb7" + bytes(7), b"\x95" + bytes(7)]


def test_partition_suffix_and_rule():
    part = blockdev.BlockInfo("loop0p12", True, "loop0", 12)
    assert blockdev.partition_suffix("loop0", part) == "p12"
    assert blockdev.partition_suffix("sda", blockdev.BlockInfo("sda3", True, "sda", 3)) == "3"
    text = blockdev.rule_text("abc", "loop0", "/dev/vdb", "rw", ["/usr/bin/python3", "-m",
                                                                  "syscontainer_tools"])
    assert 'KERNEL=="loop0p[0-9]*"' in text
    assert "add-device abc /dev/%k:/dev/vdbp%n:rw" in text
    assert "remove-device abc /dev/%k" in text
    assert 'KERNEL=="sda[0-9]*"' in blockdev.rule_text("abc", "sda", "/dev/x", "r", ["t"])
    with pytest.raises(Exception, match="udev rule"):
        blockdev.rule_text("abc", "sda", "/dev/x y", "r", ["t"])


def test_udev_rule_under_systemd_leaves_the_sandbox(monkeypatch, tmp_path):
    """Where systemd is init the rule's command goes through systemd-run
    (udevd's system-call filter has no chroot); elsewhere it runs as it is."""
    fake = tmp_path / "systemd-run"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(systemd_unit, "systemd_booted", lambda: True)
    prefix = systemd_unit.outside_udev_sandbox()
    assert prefix[0] == str(fake) and prefix[-1] == "--"
    assert {"--wait", "--collect", "--property=DefaultDependencies=no"} <= set(prefix)
    text = blockdev.rule_text("abc", "sda", "/dev/x", "r", [*prefix, "/usr/bin/python3"])
    assert f'RUN+="{fake} --quiet --collect --wait' in text
    monkeypatch.setattr(systemd_unit, "systemd_booted", lambda: False)
    assert systemd_unit.outside_udev_sandbox() == []


def test_list_rows():
    rec = Record("c1")
    rec.devices = [
        Device("/dev/loop0", "/dev/vdb", "b", 7, 0, "rwm"),
        Device("/dev/loop0p1", "/dev/vdbp1", "b", 259, 0, "rwm", parent="/dev/loop0"),
    ]
    rec.qos = [QosSpec(QosKind.READ_BPS, "/dev/loop0", 1024, 7, 0)]
    rows = list_devices(rec)
    assert [r["PathInContainer"] for r in rows] == ["/dev/vdb"]
    assert rows[0]["Qos"] == "read_bps=1024"
    assert len(list_devices(rec, sub_partition=True)) == 2


def test_blkio_writes(tmp_path):
    from syscontainer_tools.resources.qos import BlkioCgroup

    for name in ("io.max", "io.weight", "blkio.throttle.read_bps_device", "blkio.weight_device"):
        (tmp_path / name).write_text("")
    v2 = BlkioCgroup(2, str(tmp_path))
    v2.apply(QosKind.READ_BPS, 7, 3, 1024, "/dev/x")
    assert (tmp_path / "io.max").read_text() == "7:3 rbps=1024"
    v2.apply(QosKind.WRITE_IOPS, 7, 3, 0, "/dev/x")
    assert (tmp_path / "io.max").read_text() == "7:3 wiops=max"
    v2.apply(QosKind.WEIGHT, 7, 3, 0, "/dev/x")
    assert (tmp_path / "io.weight").read_text() == "7:3 default"
    v1 = BlkioCgroup(1, str(tmp_path))
    v1.apply(QosKind.READ_BPS, 7, 3, 0, "/dev/x")
    assert (tmp_path / "blkio.throttle.read_bps_device").read_text() == "7:3 0"
    v1.apply(QosKind.WEIGHT, 7, 3, 100, "/dev/x")
    assert (tmp_path / "blkio.weight_device").read_text() == "7:3 100"
