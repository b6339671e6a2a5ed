import json
import multiprocessing
import os
import signal
import time

import pytest

from syscontainer_tools.errors import ToolError
from syscontainer_tools.state import SCHEMA_VERSION, Record, StateStore


def test_roundtrip_and_version(tmp_path):
    store = StateStore(str(tmp_path))
    with store.transaction("c1") as rec:
        rec["devices"].append({"host": "/dev/loop0"})
    data = json.loads((tmp_path / "c1" / "state.json").read_text())
    assert data["version"] == SCHEMA_VERSION
    assert data["devices"] == [{"host": "/dev/loop0"}]
    assert store.load("c1")["devices"] == [{"host": "/dev/loop0"}]


def test_failure_inside_transaction_saves_nothing(tmp_path):
    store = StateStore(str(tmp_path))
    with store.transaction("c1") as rec:
        rec["paths"].append({"host": "/a"})
    with pytest.raises(RuntimeError), store.transaction("c1") as rec:
        rec["paths"].append({"host": "/b"})
        raise RuntimeError("live change failed")
    assert store.load("c1")["paths"] == [{"host": "/a"}]


def test_unchanged_record_is_not_rewritten(tmp_path):
    store = StateStore(str(tmp_path))
    with store.transaction("c1") as rec:
        rec["routes"].append({"dest": "default"})
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
            rec["paths"].append({"tag": tag, "i": i})


def test_concurrent_writers_all_land(tmp_path):
    procs = [multiprocessing.Process(target=_append_many, args=(str(tmp_path), t, 25))
             for t in "abcd"]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    items = StateStore(str(tmp_path)).load("c1")["paths"]
    assert len(items) == 100
    assert {(i["tag"], i["i"]) for i in items} == {(t, i) for t in "abcd" for i in range(25)}


def _write_forever(root: str) -> None:
    store = StateStore(root)
    i = 0
    while True:
        with store.transaction("c1") as rec:
            rec["devices"] = [{"n": i, "pad": "x" * 4096} for _ in range(50)]
        i += 1


def test_kill_9_never_leaves_a_torn_record(tmp_path):
    for _ in range(5):
        p = multiprocessing.Process(target=_write_forever, args=(str(tmp_path),))
        p.start()
        time.sleep(0.15)
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        rec = StateStore(str(tmp_path)).load("c1")
        assert len(rec["devices"]) == 50
        assert len({d["n"] for d in rec["devices"]}) == 1
    leftovers = [f for f in os.listdir(tmp_path / "c1") if f.endswith(".tmp")]
    # a temp file may survive a kill -9, but never replaces the record
    assert all(f.startswith(".state.") for f in leftovers)


def test_record_from_json_defaults_sections():
    rec = Record.from_json({"version": SCHEMA_VERSION, "id": "x"}, "here")
    assert rec.empty() and rec["nics"] == []
