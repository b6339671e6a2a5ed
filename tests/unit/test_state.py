import json
import multiprocessing
import os
import signal
import time

import pytest

from syscontainer_tools.errors import ToolError
from syscontainer_tools.resources.devspec import Device
from syscontainer_tools.resources.pathspec import PathSpec
from syscontainer_tools.resources.routespec import RouteSpec
from syscontainer_tools.resources.state import SCHEMA_VERSION, Record, StateStore

LOOP0 = Device("/dev/loop0", "/dev/loop0", "b", 7, 0)


def test_roundtrip_and_version(tmp_path):
    store = StateStore(str(tmp_path))
    with store.transaction("c1") as rec:
        rec.devices.append(LOOP0)
    data = json.loads((tmp_path / "c1" / "state.json").read_text())
    assert data["version"] == SCHEMA_VERSION
    assert data["devices"] == [LOOP0.to_record()]
    assert store.load("c1").devices == [LOOP0]


def test_failure_inside_transaction_saves_nothing(tmp_path):
    store = StateStore(str(tmp_path))
    with store.transaction("c1") as rec:
        rec.paths.append(PathSpec.parse("/a:/a"))
    with pytest.raises(RuntimeError), store.transaction("c1") as rec:
        rec.paths.append(PathSpec.parse("/b:/b"))
        raise RuntimeError("live change failed")
    assert store.load("c1").paths == [PathSpec.parse("/a:/a")]


def test_unchanged_record_is_not_rewritten(tmp_path):
    store = StateStore(str(tmp_path))
    with store.transaction("c1") as rec:
        rec.routes.append(RouteSpec("default", gw="10.0.0.1"))
    before = os.stat(tmp_path / "c1" / "state.json").st_ino
    with store.transaction("c1"):
        pass
    assert os.stat(tmp_path / "c1" / "state.json").st_ino == before


def test_missing_record_is_empty_and_load_creates_nothing(tmp_path):
    store = StateStore(str(tmp_path))
    assert store.load("nothing").empty()
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "x" * 300])
def test_bad_container_id_is_refused(tmp_path, bad):
    with pytest.raises(ToolError):
        StateStore(str(tmp_path)).load(bad)


def test_corrupt_and_foreign_records_are_clear_errors(tmp_path):
    store = StateStore(str(tmp_path))
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "state.json").write_text("{broken")
    with pytest.raises(ToolError, match="not valid JSON"):
        store.load("c1")
    (tmp_path / "c1" / "state.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(ToolError, match="schema version 99"):
        store.load("c1")
    (tmp_path / "c1" / "state.json").write_text(json.dumps({"version": 1, "nics": {}}))
    with pytest.raises(ToolError, match="nics"):
        store.load("c1")


def _append_many(root: str, tag: str, n: int) -> None:
    store = StateStore(root)
    for i in range(n):
        with store.transaction("c1") as rec:
            rec.paths.append(PathSpec.parse(f"/{tag}:/{tag}{i}"))


def test_concurrent_writers_all_land(tmp_path):
    procs = [multiprocessing.Process(target=_append_many, args=(str(tmp_path), t, 25))
             for t in "abcd"]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    items = StateStore(str(tmp_path)).load("c1").paths
    assert len(items) == 100
    assert {i.container_path for i in items} == {f"/{t}{i}" for t in "abcd" for i in range(25)}


def _write_forever(root: str) -> None:
    store = StateStore(root)
    i = 0
    while True:
        with store.transaction("c1") as rec:
            rec.devices = [Device(f"/dev/n{i}", "/dev/x", "c", 1, 3, udev_text="x" * 4096)
                           for _ in range(50)]
        i += 1


def test_kill_9_never_leaves_a_torn_record(tmp_path):
    for _ in range(5):
        p = multiprocessing.Process(target=_write_forever, args=(str(tmp_path),))
        p.start()
        # a first record must exist (a busy machine may take a while to write it)
        while not (tmp_path / "c1" / "state.json").exists():
            time.sleep(0.01)
        time.sleep(0.15)
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        rec = StateStore(str(tmp_path)).load("c1")
        assert len(rec.devices) == 50
        assert len({d.host for d in rec.devices}) == 1
    leftovers = [f for f in os.listdir(tmp_path / "c1") if f.endswith(".tmp")]
    # a temp file may survive a kill -9, but never replaces the record
    assert all(f.startswith(".state.") for f in leftovers)


def test_record_from_json_defaults_sections():
    rec = Record.from_json({"version": SCHEMA_VERSION, "id": "x"}, "here")
    assert rec.empty() and rec.nics == []


FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "state_v1.json")


def test_release_record_is_migrated(tmp_path):
    """A record the release before schema 2 wrote (fixtures/README.md) reads
    into the typed models, field by field, and is written back as schema 2
    with the next change -- and reads the same again."""
    import shutil

    from syscontainer_tools.resources.nicspec import HostState, Nic, NicType
    from syscontainer_tools.resources.pathspec import Propagation
    from syscontainer_tools.resources.qos import QosKind, QosSpec

    (tmp_path / "sctfixture01").mkdir()
    shutil.copy(FIXTURE, tmp_path / "sctfixture01" / "state.json")
    store = StateStore(str(tmp_path))
    rec = store.load("sctfixture01")
    loop0, null = rec.devices
    assert (loop0.host, loop0.container, loop0.numbers, loop0.perm, loop0.mode) == \
        ("/dev/loop0", "/dev/sdb", ("b", 7, 0), "rw", 0o600)
    assert loop0.udev_rule.endswith("sctfixture01@loop0.rules") and "add-device" in loop0.udev_text
    assert (null.host, null.container, null.numbers, null.udev_rule) == \
        ("/dev/null", "/dev/mynull", ("c", 1, 3), "")
    assert rec.qos == [QosSpec(QosKind.WRITE_IOPS, "/dev/loop0", 500, 7, 0),
                       QosSpec(QosKind.READ_BPS, "/dev/loop0", 10485760, 7, 0)]
    assert rec.paths == [PathSpec("/srv/sctfixture", "/data", True, Propagation.RPRIVATE)]
    assert rec.nics == [
        Nic(NicType.VETH, "eth1", "vethsctfix01", "10.9.0.2/24", "02:42:ac:11:00:02", "br0",
            1400, 500),
        Nic(NicType.ETH, "eth2", "enp9s0", "fd00::2/64"),
        Nic(NicType.ETH, "eth3", "sctfxa", "10.9.1.2/24", "a2:e3:b7:e2:7e:60",
            host_state=HostState(1450, 1000, True, ("192.0.2.7/24",))),
    ]
    assert rec.routes == [RouteSpec("10.8.0.0/16", "", "10.9.0.1", "eth1"),
                          RouteSpec("default", "", "10.9.0.1", "")]
    # list-nic shows the same columns as before
    from syscontainer_tools.resources import nic

    assert nic.list_nics(rec)[0] == {"Ip": "10.9.0.2/24", "Mac": "02:42:ac:11:00:02",
                                     "Mtu": 1400, "Qlen": 500, "Type": "veth",
                                     "Bridge": "br0", "HostNicName": "vethsctfix01",
                                     "CtrNicName": "eth1"}
    with store.transaction("sctfixture01") as changed:
        changed.routes = changed.routes[:1]
    data = json.loads((tmp_path / "sctfixture01" / "state.json").read_text())
    assert data["version"] == SCHEMA_VERSION
    assert data["nics"][2]["host_name"] == "sctfxa" and "HostNicName" not in data["nics"][2]
    again = store.load("sctfixture01")
    assert (again.devices, again.qos, again.paths, again.nics) == \
        (rec.devices, rec.qos, rec.paths, rec.nics)


def test_malformed_entry_names_the_record(tmp_path):
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "state.json").write_text(json.dumps(
        {"version": SCHEMA_VERSION, "devices": [{"host": "/dev/x"}]}))
    with pytest.raises(ToolError, match="state.json: saved device"):
        StateStore(str(tmp_path)).load("c1")
