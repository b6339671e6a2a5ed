"""install-hooks --engine docker merges into daemon.json, and refuses one it
cannot read or that is no JSON object (hookspec.read_json_object)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from syscontainer_tools import cli, hookspec


def _install(tmp_path: Path) -> tuple[int, str]:
    cli._register()
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / hookspec.WRAPPER).write_text("#!/bin/sh\n")
    result = CliRunner().invoke(cli.app, ["install-hooks", "--engine", "docker",
                                          "--dest", str(tmp_path), "--bindir", str(bindir)])
    return result.exit_code, result.output


def test_merges_into_an_existing_daemon_json(tmp_path: Path) -> None:
    (tmp_path / "daemon.json").write_text('{"debug": true}')
    code, out = _install(tmp_path)
    assert code == 0, out
    data = json.loads((tmp_path / "daemon.json").read_text())
    assert data["debug"] is True
    assert hookspec.WRAPPER in json.dumps(data["runtimes"])


@pytest.mark.parametrize(("text", "message"), [("{", "cannot read"),
                                               ("[1]", "is not a JSON object")])
def test_refuses_a_bad_daemon_json(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "daemon.json").write_text(text)
    code, out = _install(tmp_path)
    assert code == 1, out
    assert f"{tmp_path / 'daemon.json'}" in out and message in out, out
    assert (tmp_path / "daemon.json").read_text() == text
