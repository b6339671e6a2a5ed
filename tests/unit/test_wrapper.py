"""syscontainer-runc: argument handling, and the real program executing a
stand-in runtime that records what it was given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syscontainer_tools import wrapper
from syscontainer_tools.errors import ToolError

BIN = Path(sys.executable).parent
RECORDER = """#!/bin/sh
printf '%s\\n' "$@" > "{out}"
prev=""
for a in "$@"; do
    case "$prev" in --bundle|-b) cp "$a/config.json" "{out}.config";; esac
    prev="$a"
done
exit 7
"""


@pytest.fixture
def fake(tmp_path: Path) -> tuple[Path, Path]:
    runtime = tmp_path / "fakerunc"
    out = tmp_path / "argv.txt"
    runtime.write_text(RECORDER.format(out=out))
    runtime.chmod(0o755)
    return runtime, out


def bundle(tmp_path: Path, env: list[str] | None = None,
           annotations: dict[str, str] | None = None) -> Path:
    b = tmp_path / "bundle"
    b.mkdir()
    spec = {"ociVersion": "1.0.2", "process": {"args": ["sh"], "env": env or []},
            "root": {"path": "rootfs"},
            "hooks": {"prestart": [{"path": "/usr/bin/other", "args": ["other"]}]}}
    if annotations:
        spec["annotations"] = annotations
    (b / "config.json").write_text(json.dumps(spec))
    return b


def call(runtime: Path, *args: str, env: dict[str, str] | None = None,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "syscontainer-runc"), f"--sc-runtime={runtime}",
                           "--sc-state-dir", "/x/state", "--sc-log-dir=", *args],
                          capture_output=True, text=True, check=False, cwd=cwd,
                          env={**os.environ, "SYSCONTAINER_RUNC_CONFIG": "/nonexistent",
                               **(env or {})})


def test_split_and_subcommand():
    own, rest = wrapper.split_own(["--sc-lxcfs", "--sc-runtime", "crun", "--root", "/r",
                                   "create", "--bundle", "/b", "id"])
    assert own == {"lxcfs": "1", "runtime": "crun"}
    assert rest == ["--root", "/r", "create", "--bundle", "/b", "id"]
    assert wrapper.subcommand(rest) == (2, "create")
    assert wrapper.subcommand(["--log", "create", "--log-format", "json", "state", "x"]) == (
        4, "state")
    assert wrapper.bundle_of(["--bundle=/b2", "x"]) == "/b2"
    assert wrapper.bundle_of(["-b", "/b3", "x"]) == "/b3"
    assert wrapper.bundle_of(["x"]) == "."
    with pytest.raises(ToolError, match="unknown option"):
        wrapper.split_own(["--sc-nope=1"])


def test_lxcfs_choice():
    assert wrapper.wants_lxcfs({}, "1") and not wrapper.wants_lxcfs({}, "0")
    on = {"process": {"env": ["A=1", "SYSCONTAINER_LXCFS=1"]}}
    off = {"annotations": {"syscontainer.lxcfs": "false"}}
    assert wrapper.wants_lxcfs(on, "0") and not wrapper.wants_lxcfs(off, "true")
    with pytest.raises(ToolError):
        wrapper.wants_lxcfs({"process": {"env": ["SYSCONTAINER_LXCFS=maybe"]}}, "0")


def test_create_adds_hooks_then_execs_the_runtime(fake, tmp_path):
    runtime, out = fake
    b = bundle(tmp_path, env=["SYSCONTAINER_LXCFS=1"])
    proc = call(runtime, "--root", "/r", "--log", str(tmp_path / "log"), "create",
                "--bundle", str(b), "--pid-file", "p", "ctr1")
    assert proc.returncode == 7, proc.stderr      # the runtime's own exit status
    assert out.read_text().split("\n")[:-1] == ["--root", "/r", "--log", str(tmp_path / "log"),
                                                "create", "--bundle", str(b), "--pid-file",
                                                "p", "ctr1"]
    hooks = json.loads(Path(f"{out}.config").read_text())["hooks"]
    assert [h["args"][0] for h in hooks["prestart"]] == ["other", "syscontainer-hooks",
                                                         "lxcfs-hook"]
    assert hooks["prestart"][1]["path"] == str(BIN / "syscontainer-hooks")
    assert hooks["prestart"][1]["args"] == ["syscontainer-hooks", "--state", "prestart",
                                            "--state-dir", "/x/state"]
    assert [h["args"][2] for h in hooks["poststop"]] == ["poststop"]
    # a second create of the same bundle does not add them twice
    call(runtime, "create", "--bundle", str(b), "ctr1")
    hooks = json.loads((b / "config.json").read_text())["hooks"]
    assert len(hooks["prestart"]) == 3 and len(hooks["poststop"]) == 1


def test_other_subcommands_pass_straight_through(fake, tmp_path):
    runtime, out = fake
    b = bundle(tmp_path)
    before = (b / "config.json").read_text()
    proc = call(runtime, "--root", "/r", "state", "ctr1", cwd=b)
    assert proc.returncode == 7
    assert out.read_text().split("\n")[:-1] == ["--root", "/r", "state", "ctr1"]
    assert (b / "config.json").read_text() == before


def test_bad_bundle_fails_the_create_with_the_reason_in_runc_log(fake, tmp_path):
    runtime, out = fake
    log = tmp_path / "runc.log"
    proc = call(runtime, "--log", str(log), "--log-format", "json", "create", "--bundle",
                str(tmp_path / "missing"), "c")
    assert proc.returncode == 1 and not out.exists()
    assert "cannot read" in proc.stderr
    assert json.loads(log.read_text())["level"] == "error"


def test_settings_file_and_no_self_exec(tmp_path, fake):
    runtime, out = fake
    conf = tmp_path / "runc.json"
    conf.write_text(json.dumps({"runtime": str(runtime), "lxcfs": True, "log_dir": ""}))
    b = bundle(tmp_path)
    proc = subprocess.run([str(BIN / "syscontainer-runc"), "create", "-b", str(b), "c"],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "SYSCONTAINER_RUNC_CONFIG": str(conf)})
    assert proc.returncode == 7, proc.stderr
    hooks = json.loads((b / "config.json").read_text())["hooks"]
    assert [h["args"][0] for h in hooks["prestart"]][-1] == "lxcfs-hook"
    # named as the runtime, the wrapper never executes itself
    conf.write_text(json.dumps({"runtime": str(BIN / "syscontainer-runc")}))
    proc = subprocess.run([str(BIN / "syscontainer-runc"), "state", "c"], capture_output=True,
                          text=True, check=False,
                          env={**os.environ, "SYSCONTAINER_RUNC_CONFIG": str(conf)})
    assert proc.returncode == 1 and "is not installed" in proc.stderr
