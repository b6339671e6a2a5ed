"""Container lookup from runc's/crun's own state files agrees with their CLI.

The CLI is the oracle: for a real runc container in each state (created,
running, paused, stopped) and for state directories copied from it and
altered (a recorded start time that no longer matches: the pid was reused),
``runstate`` must say what ``runc state`` says.  crun cannot start containers
on this machine's hybrid cgroup layout, but ``crun state``/``crun list`` read
a state directory made by hand just as well, so crun's layout is checked the
same way against a live process, an exec.fifo, and a real frozen freezer
cgroup.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from syscontainer_tools.engines import Engine, find, list_all, runstate
from syscontainer_tools.engines import runc as runc_engine
from syscontainer_tools.errors import NotFound, ToolError

from .conftest import PREFIX, run
from .waits import polls

pytestmark = pytest.mark.system
FIELDS = ("pid", "status", "bundle", "rootfs")


def cli(runtime: str, root: str, cid: str) -> dict:
    out = json.loads(run([runtime, "--root", root, "state", cid]).stdout)
    return {k: out[k] for k in FIELDS}


def local(runtime: str, root: str, cid: str) -> dict:
    st = runstate.read_state(runtime, root, cid)
    assert st is not None, "layout not recognised"
    return {k: st[k] for k in FIELDS}


def cli_ids(runtime: str, root: str) -> list[str]:
    return sorted(run([runtime, "--root", root, "list", "-q"]).stdout.split())


def test_runc_states_match_the_cli(make_container, runtime_root):
    ctr = make_container("rs", start=False)
    with open(ctr.bundle / "create.log", "w") as out:  # a pipe would never see EOF
        subprocess.run(["runc", "--root", runtime_root, "create", ctr.id], cwd=ctr.bundle,
                       stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=True)
    seen = []
    try:
        for step in ("created", "running", "paused", "resumed", "stopped"):
            if step == "running":
                ctr.runc("start", ctr.id)
            elif step == "paused":
                ctr.runc("pause", ctr.id)
            elif step == "resumed":
                ctr.runc("resume", ctr.id)
            elif step == "stopped":
                ctr.runc("kill", ctr.id, "KILL")
                pid = int(json.loads((Path(runtime_root) / ctr.id / "state.json")
                                     .read_text())["init_process_pid"])
                for _ in polls(4, 0.02):
                    if runstate.proc_stat(pid) is None:
                        break
                    subprocess.run(["sleep", "0.02"], check=True)
            want = cli("runc", runtime_root, ctr.id)
            assert local("runc", runtime_root, ctr.id) == want, step
            assert runc_engine.state(Engine.RUNC, ctr.id, runtime_root)["status"] == want["status"]
            seen.append(want["status"])
            assert ctr.id in cli_ids("runc", runtime_root)
            assert runstate.list_ids("runc", runtime_root) == cli_ids("runc", runtime_root)
    finally:
        ctr.runc("delete", "--force", ctr.id, check=False)
    assert seen == ["created", "running", "paused", "running", "stopped"]
    assert ctr.id not in runstate.list_ids("runc", runtime_root)


def test_runc_reused_pid_and_odd_entries_match_the_cli(make_container, tmp_path):
    ctr = make_container("rr")
    root = tmp_path / "root"
    root.mkdir()
    real = json.loads((Path(ctr.root) / ctr.id / "state.json").read_text())
    # the same container recorded with another start time: its pid now
    # belongs to another process, so both say stopped, pid 0
    for name, start in ((f"{PREFIX}-same", real["init_process_start"]),
                        (f"{PREFIX}-reused", real["init_process_start"] + 1)):
        (root / name).mkdir()
        (root / name / "state.json").write_text(
            json.dumps(dict(real, id=name, init_process_start=start)))
        assert local("runc", str(root), name) == cli("runc", str(root), name)
    assert local("runc", str(root), f"{PREFIX}-reused")["status"] == "stopped"
    assert local("runc", str(root), f"{PREFIX}-same")["status"] == "running"
    # a stray file and a directory without state.json are not containers
    (root / "stray").write_text("x")
    (root / "empty").mkdir()
    assert runstate.list_ids("runc", str(root)) == cli_ids("runc", str(root))
    with pytest.raises(NotFound):
        runc_engine.state(Engine.RUNC, f"{PREFIX}-nope", str(root))
    # a state.json of another layout: the CLI decides (and fails here)
    (root / "broken").mkdir()
    (root / "broken" / "state.json").write_text('{"init_process_pid": "x"}')
    assert runstate.read_state("runc", str(root), "broken") is None
    with pytest.raises(ToolError):
        runc_engine.state(Engine.RUNC, "broken", str(root))


def test_find_reads_no_cli(make_container, monkeypatch):
    """find() on runc spawns nothing: the listing and state come from files."""
    ctr = make_container("nf")

    def no_spawn(*a, **kw):
        raise AssertionError(f"spawned {a}")
    with monkeypatch.context() as m:
        m.setattr(subprocess, "Popen", no_spawn)
        c = find(ctr.id[:-1], Engine.RUNC, ctr.root)
        listed = [x.id for x in list_all(Engine.RUNC, ctr.root)]
    assert (c.id, c.status, c.running, c.bundle) == (ctr.id, "running", True, str(ctr.bundle))
    assert c.rootfs == str(ctr.bundle / "rootfs") and c.pid_start == runstate.proc_stat(c.pid)[1]
    assert listed == cli_ids("runc", ctr.root)


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "1000"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def freezer():
    base = "/sys/fs/cgroup/freezer"
    if not os.path.isdir(base):
        pytest.skip("no v1 freezer hierarchy")
    path = os.path.join(base, f"{PREFIX}-fz")
    os.mkdir(path)
    yield path
    with open(os.path.join(path, "freezer.state"), "w") as f:
        f.write("THAWED")
    os.rmdir(path)


def test_crun_layout_matches_crun_state(tmp_path, sleeper, freezer, rootfs_template):
    if not shutil.which("crun"):
        pytest.skip("crun is not installed")
    root = tmp_path / "crun"
    cdir = root / f"{PREFIX}-c"
    cdir.mkdir(parents=True)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    run(["runc", "spec", "--bundle", str(bundle)])
    shutil.copy(bundle / "config.json", cdir / "config.json")
    start = runstate.proc_stat(sleeper.pid)[1]
    cid = cdir.name

    def write(**kw):
        st = {"pid": sleeper.pid, "process-start-time": start, "cgroup-path": "",
              "scope": "", "rootfs": str(rootfs_template), "systemd-cgroup": False,
              "bundle": str(bundle), "created": "2026-01-01T00:00:00.000000000Z",
              "owner": "root", "detached": True, "external_descriptors": "[]"}
        (cdir / "status").write_text(json.dumps(dict(st, **kw)))

    rel = "/" + os.path.basename(freezer)
    cases = [("running", {}), ("stopped", {"process-start-time": start + 7}),
             ("running", {"process-start-time": 0}), ("running", {"cgroup-path": rel}),
             ("stopped", {"cgroup-path": "/" + PREFIX + "-gone"})]
    for want, kw in cases:
        write(**kw)
        assert local("crun", str(root), cid) == cli("crun", str(root), cid), kw
        assert local("crun", str(root), cid)["status"] == want, kw
    with open(os.path.join(freezer, "freezer.state"), "w") as f:
        f.write("FROZEN")
    write(**{"cgroup-path": rel})
    assert local("crun", str(root), cid) == cli("crun", str(root), cid)
    assert local("crun", str(root), cid)["status"] == "paused"
    os.mkfifo(cdir / "exec.fifo")
    write()
    assert local("crun", str(root), cid) == cli("crun", str(root), cid)
    assert local("crun", str(root), cid)["status"] == "created"
    os.unlink(cdir / "exec.fifo")
    sleeper.kill()
    sleeper.wait()
    assert local("crun", str(root), cid) == cli("crun", str(root), cid)
    assert local("crun", str(root), cid)["status"] == "stopped"
    (root / ".hidden").mkdir()
    (root / "nostatus").mkdir()
    assert runstate.list_ids("crun", str(root)) == cli_ids("crun", str(root)) == [cid]
