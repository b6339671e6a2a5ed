"""The typer-free front end of syscontainer-tools (quickcli): which command
lines it takes, and that what it prints and exits with is byte for byte what
the typer program gives for the same line (good input and bad).

Both programs run as subprocesses against an empty runc root, so every
command ends at a spec error or at "container not found" -- no root, no
container needed.  tests/system/test_quickcli.py compares them on a real
container."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from syscontainer_tools import quickcli
from tests.system.waits import scaled

ROUTES = '[{"dest":"10.1.0.0/16","gw":"10.0.0.1"}]'


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    root = tmp_path / "runc-root"
    root.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSCONTAINER_")}
    env.update(SYSCONTAINER_ENGINE="runc", SYSCONTAINER_RUNTIME_ROOT=str(root),
               SYSCONTAINER_STATE_DIR=str(tmp_path / "state"), **extra)
    return env


def program(directory: Path, module: str) -> list[str]:
    """A console script named syscontainer-tools (as pip writes it) whose
    main() is ``module``'s: both front ends then show the same program name."""
    directory.mkdir(exist_ok=True)
    script = directory / "syscontainer-tools"
    script.write_text(f"import sys\nfrom {module} import main\nsys.exit(main())\n")
    return [sys.executable, str(script)]


def both(argv: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[bytes], ...]:
    """The same command line through quickcli (the installed entry point) and
    through the typer program alone."""
    tmp = Path(env["SYSCONTAINER_STATE_DIR"]).parent
    fronts = (program(tmp / "fast", "syscontainer_tools.quickcli"),
              program(tmp / "typer", "syscontainer_tools.cli"))
    return tuple(subprocess.run([*front, *argv], env=env, capture_output=True, timeout=scaled(120),
                                stdin=subprocess.DEVNULL, check=False)
                 for front in fronts)


# command lines the fast path takes
TAKEN = [
    ["add-device", "c1", "/dev/null:/dev/n"],
    ["add-device", "c1", "/dev/null:/dev/n:rwx"],                  # bad permission
    ["add-device", "c1", "/nonexistent:/dev/n"],                    # no such device
    ["add-device", "c1", "/dev/null", "/dev/zero:/dev/z:r", "--force", "--follow-partition"],
    ["add-device", "--device-read-bps", "/dev/null:10m", "c1", "/dev/null",
     "--device-read-bps=/dev/zero:1k", "--update-config-only"],
    ["add-device", "c1", "/dev/null", "--device-write-iops", "/dev/null:x"],  # bad limit
    ["remove-device", "c1", "/dev/null:/dev/n"],
    ["remove-device", "c1", "not-a-device-path::"],
    ["add-path", "c1", "/tmp:/mnt/tmp:ro"],
    ["add-path", "c1", "relative:/x"],
    ["remove-path", "c1", "/tmp:/mnt/tmp"],
    ["add-nic", "c1", "--type", "veth", "--name", "eth1", "--ip", "10.0.0.2/24",
     "--bridge", "br0", "--mtu=1400", "--qlen", "500"],
    ["add-nic", "--type=foo", "--name", "eth1", "c1"],               # bad type
    ["add-nic", "c1", "--type", "veth", "--name", "eth1", "--ip", "10.0.0.2"],  # no prefix
    ["add-nic", "c1", "--type", "eth", "--name", "eth1", "--mtu", "12"],
    ["remove-nic", "c1", "--name", "eth1"],
    ["remove-nic", "c1", "--name", "eth1", "--type", "bogus"],
    ["add-route", "c1", ROUTES],
    ["add-route", "c1", "not json", "--update-config-only"],
    ["remove-route", "c1", '[{"dest":""}]'],
    ["--engine", "runc", "add-device", "c1", "/dev/null"],
    ["--engine=bogus", "add-device", "c1", "/dev/null"],            # bad engine
    ["--debug", "remove-nic", "c1", "--name", "eth1"],
    ["--state-dir", "/nonexistent/x", "remove-path", "c1", "/a:/b"],
]

# command lines it leaves to typer (usage errors, help, the rest)
LEFT = [
    [], ["--help"], ["-h"], ["--version"], ["add-device", "--help"], ["add-device", "-h"],
    ["add-device"], ["add-device", "c1"],                           # missing arguments
    ["add-nic", "c1", "--name", "eth1"],                            # missing --type
    ["add-nic", "c1", "c2", "--type", "veth", "--name", "eth1"],    # extra argument
    ["add-nic", "c1", "--type", "veth", "--type", "eth", "--name", "x"],  # given twice
    ["add-nic", "c1", "--typ", "veth", "--name", "eth1"],           # abbreviated
    ["add-nic", "c1", "--type", "veth", "--name", "-x"],            # value like an option
    ["add-nic", "c1", "--type", "veth", "--name"],                  # no value
    ["add-device", "c1", "--force=yes", "/dev/null"],               # a flag with a value
    ["add-device", "c1", "--", "/dev/null"],
    ["add-device", "c1", "-", "/dev/null"],
    ["add-device", "-x", "c1", "/dev/null"],
    ["add-route", "c1"], ["add-route", "c1", ROUTES, "extra"],
    ["list-device", "c1"], ["list-nic", "c1"], ["update-nic", "c1", "--name", "e"],
    ["update-device", "c1"], ["relabel", "c1"], ["install-hooks", "--help"],
    ["no-such-command"], ["--log", "/tmp/x", "add-device", "c1", "/dev/null"],
    ["--log-format", "json", "add-device", "c1", "/dev/null"],
    ["--engine", "add-device", "c1", "/dev/null"],
    ["--debug", "--debug", "add-device", "c1", "/dev/null"],
    ["add-device", "c1", "/dev/null", "--engine", "runc"],         # a global after the command
    ["add-device", "c\x1b[31m1", "/dev/null"],                     # typer.echo strips ANSI
]


@pytest.mark.parametrize("argv", TAKEN, ids=" ".join)
def test_taken(argv):
    assert quickcli.plan(argv, {}) is not None


@pytest.mark.parametrize("argv", LEFT, ids=repr)
def test_left_to_typer(argv):
    assert quickcli.plan(argv, {}) is None


def test_completion_is_typers():
    argv = ["add-device", "c1", "/dev/null"]
    assert quickcli.plan(argv, {"_SYSCONTAINER_TOOLS_COMPLETE": "complete_bash"}) is None


def test_what_is_read():
    opts, command, parsed = quickcli.plan(
        ["--debug", "add-device", "--device-read-bps", "/dev/a:1k", "c1", "/dev/a",
         "--device-read-bps=/dev/b:2k", "/dev/b:/dev/c:r", "--force"], {})
    assert command is quickcli.COMMANDS["add-device"] and command.action == "add device"
    assert parsed.args == ["c1", "/dev/a", "/dev/b:/dev/c:r"]
    assert parsed.multi == {"--device-read-bps": ["/dev/a:1k", "/dev/b:2k"]}
    assert parsed.flags == {"--force"}
    assert (opts.engine, opts.runtime_root, opts.state_dir, opts.debug) == (
        "auto", None, "/var/lib/syscontainer-tools", True)
    opts, command, parsed = quickcli.plan(
        ["add-nic", "c1", "--type", "veth", "--name=eth1", "--ip", "10.0.0.2/24"], {})
    assert parsed.values == {"--type": "veth", "--name": "eth1", "--ip": "10.0.0.2/24"}


def test_global_options_over_environment_over_defaults():
    environ = {"SYSCONTAINER_ENGINE": "runc", "SYSCONTAINER_RUNTIME_ROOT": "/run/x",
               "SYSCONTAINER_STATE_DIR": ""}       # empty: as if not set (click's rule)
    opts = quickcli.plan(["add-path", "c1", "/a:/b"], environ)[0]
    assert (opts.engine, opts.runtime_root, opts.state_dir) == (
        "runc", "/run/x", "/var/lib/syscontainer-tools")
    opts = quickcli.plan(["--engine", "crun", "--runtime-root=", "--state-dir", "/s",
                          "add-path", "c1", "/a:/b"], environ)[0]
    assert (opts.engine, opts.runtime_root, opts.state_dir) == ("crun", None, "/s")


@pytest.mark.parametrize("argv", TAKEN + LEFT[:12], ids=repr)
def test_same_output_both_ways(tmp_path, argv):
    """stdout, stderr and exit status byte for byte the same as typer's."""
    if "--debug" in argv:
        pytest.skip("a traceback names different frames")
    fast, slow = both(argv, env_for(tmp_path))
    assert (fast.returncode, fast.stdout, fast.stderr) == \
        (slow.returncode, slow.stdout, slow.stderr)


def test_debug_prints_the_traceback_then_the_same_line(tmp_path):
    argv = ["--debug", "remove-nic", "c1", "--name", "eth1"]
    fast, slow = both(argv, env_for(tmp_path))
    assert fast.returncode == slow.returncode == 1
    assert fast.stderr.splitlines()[-1] == slow.stderr.splitlines()[-1]
    assert b"Traceback (most recent call last)" in fast.stderr
    assert fast.stdout == slow.stdout == b""


def test_the_fast_path_imports_no_typer(tmp_path):
    # as the console script runs it: ``python -m`` goes through runpy, which
    # on Python 3.9 imports importlib.util and with it typing
    script = program(tmp_path / "fast", "syscontainer_tools.quickcli")
    proc = subprocess.run([script[0], "-X", "importtime", *script[1:],
                           "add-device", "c1", "/dev/null"], env=env_for(tmp_path),
                          capture_output=True, text=True, timeout=scaled(120), check=False)
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
              if line.startswith("import time:")}
    assert "syscontainer_tools.quickcli" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("typer", "click", "rich", "typing")}
    assert proc.returncode == 1 and "Failed to add device: " in proc.stderr
