"""The commands' parameters come from their Annotated declarations on every
supported Python: typer on 3.9 reads string annotations as they are, and
syscontainer_tools.typerapp evaluates them first (else ``fmt: Format``
would be ``--fmt``, ``-p`` and ``-c`` would be gone, arguments options).
Recent typer vendors click, so parameters are told apart by their
``param_type_name``, not by click's classes."""

from __future__ import annotations

import os
from typing import Any

import pytest
import typer

from lxcfs_toolkit import cli as lxcfs_cli
from syscontainer_tools import cli as sct_cli


def commands(app: typer.Typer) -> dict[str, Any]:
    group = typer.main.get_command(app)
    return dict(group.commands)


@pytest.fixture(scope="module")
def sct() -> dict[str, Any]:
    sct_cli._register()
    return commands(sct_cli.app)


def params(cmd: Any) -> dict[str, Any]:
    return {p.name: p for p in cmd.params if p.name}


def test_every_container_is_an_argument_with_help(sct):
    with_container = [name for name, cmd in sct.items() if "container" in params(cmd)]
    assert len(with_container) >= 14
    for name in with_container:
        p = params(sct[name])["container"]
        assert p.param_type_name == "argument", name
        assert getattr(p, "help", None) == "container id, id prefix or name", name


def test_format_and_pretty_keep_their_names(sct):
    for name in ("list-device", "list-path", "list-nic", "list-route"):
        opts = {o for p in sct[name].params for o in p.opts}
        assert {"--format", "--pretty", "-p"} <= opts, name
        assert "--fmt" not in opts, name


def test_qos_options_take_lists(sct):
    p = params(sct["add-device"])["device_read_bps"]
    assert p.param_type_name == "option"
    assert p.opts == ["--device-read-bps"] and p.multiple and p.metavar == "DEV:RATE"


def test_lxcfs_selection_is_argument_all_and_container_id():
    for name in ("remount", "umount"):
        ps = params(commands(lxcfs_cli.app)[name])
        assert ps["target"].param_type_name == "argument" and not ps["target"].required, name
        assert ps["target"].metavar == "all|CONTAINER", name
        assert ps["all_"].opts == ["-a", "--all"], name
        assert ps["container_id"].opts == ["-c", "--container-id"], name


def test_command_modules_lists_what_the_modules_register(sct):
    # main() imports only the module COMMAND_MODULES names for the command:
    # a command missing there would be "No such command"
    listed = [name for names in sct_cli.COMMAND_MODULES.values() for name in names]
    assert listed == list(sct)


@pytest.mark.parametrize(("argv", "module"), [
    (["add-device", "c", "/dev/x"], "devices"),
    (["--engine", "runc", "--runtime-root", "/r", "remove-nic", "c"], "network"),
    (["--debug", "--log", "list-path", "--log-format", "json", "list-route", "c"], "network"),
    (["--state-dir=/s", "relabel", "c"], "selinux"),
    (["install-hooks"], "install"),
    (["--help"], None),
    ([], None),
    (["no-such-command"], None),
    (["--engine"], None),
])
def test_command_module_from_the_command_line(argv, module, monkeypatch):
    for key in [k for k in os.environ if k.endswith("_COMPLETE")]:
        monkeypatch.delenv(key)
    assert sct_cli._command_module(argv) == module


def test_shell_completion_needs_every_command(monkeypatch):
    monkeypatch.setenv("_SYSCONTAINER_TOOLS_COMPLETE", "complete_bash")
    assert sct_cli._command_module(["add-device"]) is None
