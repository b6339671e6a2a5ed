"""The committed shell completion files are what typer generates now, and the
bash one completes subcommands and options."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system.waits import scaled

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FILES = ["syscontainer-tools.bash", "_syscontainer-tools", "syscontainer-tools.fish",
         "lxcfs-toolkit.bash", "_lxcfs-toolkit", "lxcfs-toolkit.fish"]

needs_scripts = pytest.mark.skipif(
    not (BIN / "syscontainer-tools").exists() or not (BIN / "lxcfs-toolkit").exists(),
    reason="console scripts not installed next to this interpreter")


@needs_scripts
def test_committed_files_are_current(tmp_path):
    subprocess.run(["bash", str(REPO / "scripts" / "gen-completion.sh"), str(tmp_path)],
                   check=True, env={**os.environ, "BIN": str(BIN)}, timeout=scaled(60))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    for name in FILES:
        fresh = (tmp_path / name).read_text()
        assert fresh.strip(), name
        assert (REPO / "completion" / name).read_text() == fresh, (
            f"completion/{name} is stale: run scripts/gen-completion.sh")
    assert (tmp_path / "_syscontainer-tools").read_text().startswith("#compdef syscontainer-tools\n")


def bash_complete(prog: str, *words: str) -> list[str]:
    """COMPREPLY for `prog words...` with the cursor on the last word."""
    fn = "_" + prog.replace("-", "_") + "_completion"
    script = (f"source {REPO / 'completion' / (prog + '.bash')}\n"
              f"COMP_WORDS=({prog} {' '.join(repr(w) for w in words)})\n"
              f"COMP_CWORD={len(words)}\n"
              f"{fn} {prog}\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True,
                          env=env, timeout=scaled(60), check=True)
    return [line for line in proc.stdout.splitlines() if line]


@needs_scripts
def test_bash_completes_syscontainer_tools():
    assert bash_complete("syscontainer-tools", "add-d") == ["add-device"]
    every = bash_complete("syscontainer-tools", "")
    for cmd in ("add-device", "remove-path", "add-nic", "list-route", "install-hooks"):
        assert cmd in every
    assert "--update-config-only" in bash_complete("syscontainer-tools", "add-device", "--")
    assert "--engine" in bash_complete("syscontainer-tools", "--e")


@needs_scripts
def test_bash_completes_lxcfs_toolkit():
    assert bash_complete("lxcfs-toolkit", "rem") == ["remount"]
    every = bash_complete("lxcfs-toolkit", "")
    assert {"serve", "prestart", "remount", "umount"} <= set(every), every
