"""Engine adapters' parsers against recorded real output: isula (from iSulad's
documentation, see tests/data/isula/README.md) and containerd's ctr (recorded
here from Debian's containerd 1.6)."""

from __future__ import annotations

import json
from pathlib import Path

from syscontainer_tools.engines import Candidate, Engine, containerd, dockerlike, isula

DATA = Path(__file__).resolve().parents[1] / "data"
LCR_ID = "c75284634beeede3ab86c828790b439d16b6ed8a537550456b1f94eb852c1c0a"
RUNC_ID = "eb77c672a148cc4cefa0d6e7c5847f5a87d0c5353e245461b68820bd9af90c67"


def test_isula_ps_padded_fields_are_stripped():
    out = (DATA / "isula" / "ps-format-padded.txt").read_text()
    assert dockerlike.parse_list(Engine.ISULA, out) == [
        Candidate("e84660aa059cafb0a77a4002e65cc9186949132b8e57b7f4d76aa22f28fde016", "web",
                  Engine.ISULA),
        Candidate(LCR_ID, LCR_ID, Engine.ISULA)]


def test_isula_ps_table_header_is_not_a_container():
    out = (DATA / "isula" / "ps-table-id-image.txt").read_text().replace(" rnd", "\trnd")
    ids = [c.id for c in dockerlike.parse_list(Engine.ISULA, out)]
    assert ids == ["e84660aa059cafb0a77a4002e65cc9186949132b8e57b7f4d76aa22f28fde016"]


def test_isula_inspect_lcr_record(tmp_path, monkeypatch):
    data = dockerlike.parse_inspect(["isula", "inspect", LCR_ID],
                                    (DATA / "isula" / "inspect-lcr.json").read_text())
    bundle = tmp_path / "lcr" / LCR_ID
    bundle.mkdir(parents=True)
    (bundle / "config.json").write_text('{"root": {"path": "rootfs"}, "hooks": {}}')
    monkeypatch.setattr(isula, "ENGINE_DIRS", (str(tmp_path / "runc"), str(tmp_path / "lcr")))
    c = dockerlike.container_from_inspect(Engine.ISULA, data, isula._bundles)
    # pid 21164 is not ours to check: the record says running with that pid
    assert (c.id, c.name, c.status, c.pid) == (LCR_ID, LCR_ID, "running", 21164)
    assert c.bundle == str(bundle) and c.rootfs == str(bundle / "rootfs")


def test_isula_runc_record_names_its_engine_directory():
    lines = (DATA / "isula" / "inspect-runc-grep.txt").read_text().splitlines()
    fields = dict(json.loads("{" + line.strip().rstrip(",") + "}").popitem() for line in lines[:3])
    data = {"Id": RUNC_ID, **fields}
    assert isula._bundles(data)[0] == f"/var/lib/isulad/engines/runc/{RUNC_ID}"
    # an lcr record without paths ("", "none") falls back to the default directories
    assert isula._bundles({"Id": LCR_ID, "ResolvConfPath": "", "LogPath": "none"}) == [
        f"{d}/{LCR_ID}" for d in isula.ENGINE_DIRS]


def test_ctr_tasks_ls():
    tasks = containerd.parse_tasks((DATA / "containerd" / "tasks-ls.txt").read_text())
    assert tasks == {"sctengx-k1": (6515, "running"), "sctengx-k2": (9646, "running")}
    assert containerd.parse_tasks("TASK    PID    STATUS\nx    0    STOPPED\n") == {
        "x": (0, "stopped")}


def test_ctr_runtime_binary_name():
    runtime = json.loads((DATA / "containerd" / "runtime-runc-binary.json").read_text())
    assert containerd.binary_name(runtime) == "/usr/sbin/runc"
    assert containerd.binary_name({"Name": "io.containerd.runc.v2",
                                   "Options": {"type_url": "containerd.runc.v1.Options"}}) is None
    assert containerd.binary_name({"Name": "io.containerd.kata.v2"}) is None


def test_ctr_listing_per_namespace(monkeypatch, tmp_path):
    sock = tmp_path / "containerd.sock"
    sock.touch()
    monkeypatch.setenv("CONTAINERD_ADDRESS", str(sock))
    monkeypatch.delenv("CONTAINERD_NAMESPACE", raising=False)
    argvs = containerd.list_argvs(Engine.CONTAINERD, None, True)
    assert [a[a.index("-n") + 1] for a in argvs] == ["k8s.io", "default"]
    assert containerd.parse_list(Engine.CONTAINERD, "a1\nb2\n", argvs[0]) == [
        Candidate("a1", "a1", Engine.CONTAINERD, "k8s.io"),
        Candidate("b2", "b2", Engine.CONTAINERD, "k8s.io")]
    monkeypatch.setenv("CONTAINERD_NAMESPACE", "mine")
    assert len(containerd.list_argvs(Engine.CONTAINERD, None, True)) == 1
    # no daemon: auto skips containerd at once instead of waiting for ctr's dial timeout
    monkeypatch.setenv("CONTAINERD_ADDRESS", str(tmp_path / "absent.sock"))
    assert containerd.list_argvs(Engine.CONTAINERD, None, True) == []
