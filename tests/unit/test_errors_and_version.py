"""One error type, one renderer for all four programs; --version everywhere;
every syscontainer-tools command's help has an example and says it needs root."""

from __future__ import annotations

import errno
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from syscontainer_tools.errors import NotFound, SpecError, ToolError, render
from tests.system.waits import scaled

BIN = Path(sys.executable).parent


def test_render_lines():
    assert render(SpecError("bad x", action="parse device"), action="add device") == [
        "Failed to parse device: bad x"]
    assert render(ToolError("busy", hint="try later"), action="add device") == [
        "Failed to add device: busy", "Hint: try later"]
    assert render(ToolError("busy", hint="try later"), prefix="syscontainer-hooks prestart",
                  hint_inline=True) == ["syscontainer-hooks prestart: busy (try later)"]
    assert render(OSError(errno.ENOENT, "No such file or directory", "/x"), action="add path") \
        == ["Failed to add path: No such file or directory: /x"]
    lines = render(KeyError("k"), action="list device")
    assert lines[0].startswith("Failed to list device: internal error: KeyError")


def test_errors_keep_errno_and_are_not_mutated():
    err = ToolError.from_os(OSError(errno.EBUSY, "Device or resource busy"), "prepare eth2")
    assert (err.errno, err.reason) == (errno.EBUSY, "prepare eth2: Device or resource busy")
    assert ToolError.from_errno(errno.EEXIST, "route x").errno == errno.EEXIST
    assert NotFound("gone").errno == errno.ENOENT
    spec = SpecError("bad")
    named = spec.with_action("parse device")
    assert named.action == "parse device" and spec.action is None
    assert isinstance(named, SpecError)


@pytest.mark.parametrize("prog", ["syscontainer-tools", "syscontainer-hooks", "lxcfs-toolkit",
                                  "lxcfs-hook"])
def test_version(prog):
    if not (BIN / prog).exists():
        pytest.skip("console scripts not installed next to this interpreter")
    from importlib.metadata import version

    proc = subprocess.run([str(BIN / prog), "--version"], capture_output=True, text=True,
                          timeout=scaled(60))
    assert (proc.returncode, proc.stdout) == (0, f"{prog} {version('syscontainer-tools')}\n")


def test_every_command_has_an_example_and_needs_root():
    from typer.main import get_command

    from syscontainer_tools import cli

    cli._register()
    group = get_command(cli.app)
    names = sorted(group.commands)  # type: ignore[attr-defined]
    assert "add-device" in names and "list-route" in names
    for name in names:
        help_text = group.commands[name].help or ""  # type: ignore[attr-defined]
        assert "Example: syscontainer-tools " + name in help_text.replace("\n", " "), name
        assert "root" in help_text, name


def test_typer_options_in_annotated_style():
    """No command parameter takes typer.Option/Argument as its default."""
    from syscontainer_tools import cli

    cli._register()
    for info in cli.app.registered_commands + [cli.app.registered_callback]:
        assert info is not None and info.callback is not None
        for param in inspect.signature(info.callback).parameters.values():
            assert type(param.default).__module__.split(".")[0] not in ("typer", "click"), \
                (info.callback.__name__, param.name)


def test_qos_help_says_host_path():
    proc = subprocess.run([sys.executable, "-m", "syscontainer_tools", "update-device", "--help"],
                          capture_output=True, text=True, timeout=scaled(60),
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.stdout.count("path on the host") >= 5, proc.stdout
