"""The typer-free front end (quickcli) and the typer program, on a real
container: each change made through one and undone through the other, with
the same lines printed, the same failures for a second try, and the same
note for a stopped container.  (Every other system test runs the installed
entry point, so it goes through quickcli wherever the command line is plain.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import PREFIX
from .nethelpers import NET, ctr_links, delete_links, make_bridge
from .waits import polls, scaled

pytestmark = pytest.mark.system

BRIDGE = f"{PREFIX}q"


@pytest.fixture
def fronts(tmp_path: Path, runtime_root: str, state_dir: str) -> dict[str, Any]:
    """``fast(*argv)`` and ``typer(*argv)``: the same console script name,
    one entering through quickcli, one through the typer program alone."""
    env = dict(os.environ, SYSCONTAINER_ENGINE="runc", SYSCONTAINER_RUNTIME_ROOT=runtime_root,
               SYSCONTAINER_STATE_DIR=state_dir)
    out = {}
    for name, module in (("fast", "syscontainer_tools.quickcli"),
                         ("typer", "syscontainer_tools.cli")):
        d = tmp_path / name
        d.mkdir()
        script = d / "syscontainer-tools"
        script.write_text(f"import sys\nfrom {module} import main\nsys.exit(main())\n")

        def call(*argv: str, _script: Path = script) -> tuple[int, str, str]:
            proc = subprocess.run([sys.executable, str(_script), *argv], env=env,
                                  capture_output=True, text=True, timeout=scaled(300),
                                  stdin=subprocess.DEVNULL, check=False)
            return proc.returncode, proc.stdout, proc.stderr

        out[name] = call
    return out


def test_devices_and_paths_both_ways(make_container, make_loop, fronts, tmp_path):
    ctr = make_container("quick")
    loop = make_loop()
    share = tmp_path / "share"
    share.mkdir()
    fast, typer = fronts["fast"], fronts["typer"]
    changes = [(("add-device", ctr.id, f"{loop.path}:/dev/q1:rw"),
                ("remove-device", ctr.id, f"{loop.path}:/dev/q1")),
               (("add-path", ctr.id, f"{share}:/mnt/q:ro"),
                ("remove-path", ctr.id, f"{share}:/mnt/q"))]
    for add, remove in changes:
        seen = []
        for first, second in ((fast, typer), (typer, fast)):
            added = first(*add)
            again = second(*add)            # already there: the same failure
            removed = second(*remove)
            gone = first(*remove)           # already gone: the same failure
            assert added[0] == 0 and removed[0] == 0, (added, removed)
            assert gone[0] == 1, gone  # (an identical add again is done: paths say so)
            seen.append((added, again, removed, gone))
        assert seen[0] == seen[1]
    assert ctr.exec("ls", "/dev/q1", check=False).returncode != 0


def test_stopped_container_note_both_ways(make_container, fronts, tmp_path):
    ctr = make_container("quickstop")
    ctr.runc("kill", ctr.id, "KILL")
    for _ in polls(5):
        if ctr.state()["status"] == "stopped":
            break
        time.sleep(0.05)
    share = tmp_path / "share"
    share.mkdir()
    fast, typer = fronts["fast"], fronts["typer"]
    add = ("add-path", ctr.id, f"{share}:/mnt/q")
    remove = ("remove-path", ctr.id, f"{share}:/mnt/q")
    one = fast(*add), typer(*remove)
    two = typer(*add), fast(*remove)
    assert one == two
    assert one[0][0] == 0 and "is not running" in one[0][2], one


def test_nics_both_ways(make_container, fronts):
    ctr = make_container("quicknic")
    make_bridge(BRIDGE, f"{NET}.225/27")
    fast, typer = fronts["fast"], fronts["typer"]
    add = ("add-nic", ctr.id, "--type", "veth", "--name", f"{PREFIX}q1:eth1", "--ip",
           f"{NET}.226/27", "--bridge", BRIDGE)
    remove = ("remove-nic", ctr.id, "--name", "eth1")
    try:
        seen = []
        for first, second in ((fast, typer), (typer, fast)):
            added = first(*add)
            assert added[0] == 0, added
            assert "eth1" in ctr_links(ctr)
            again = second(*add)
            removed = second(*remove)
            gone = first(*remove)
            assert removed[0] == 0 and gone[0] == 1, (again, removed, gone)
            assert "eth1" not in ctr_links(ctr)
            seen.append((added, again, removed, gone))
        assert seen[0] == seen[1]
    finally:
        delete_links(f"{PREFIX}q1", BRIDGE)
