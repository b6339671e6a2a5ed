"""syscontainer_tools.log: library loggers that import logging only for a
message that can show, and the set-up the entry points do."""

from __future__ import annotations

import subprocess
import sys

from tests.system.waits import scaled

SCRIPT = """
import sys
from syscontainer_tools import log
lg = log.get_logger("syscontainer_tools.x")
log.setup(debug={debug}, logfile={logfile!r}, defer=True)
lg.debug("d %s", 1)
lg.info("i %s", 2)
print("logging imported:", "logging" in sys.modules, flush=True)
lg.warning("w %s", 3)
lg.error("e %s", 4)
log.get_logger("syscontainer_tools.cli").error("cli lines go to --log only")
"""


def run(debug: bool = False, logfile: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT.format(debug=debug, logfile=logfile)],
                          capture_output=True, text=True, timeout=scaled(60), check=True)


def test_deferred_drops_what_cannot_show_without_importing_logging():
    proc = run()
    assert proc.stdout == "logging imported: False\n"
    assert proc.stderr == "WARNING: w 3\nERROR: e 4\n"


def test_debug_and_a_log_file_set_up_at_once(tmp_path):
    proc = run(debug=True)
    assert proc.stdout == "logging imported: True\n"
    lines = proc.stderr.splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "DEBUG syscontainer_tools.x: d 1", "INFO syscontainer_tools.x: i 2",
        "WARNING syscontainer_tools.x: w 3", "ERROR syscontainer_tools.x: e 4"]
    logfile = tmp_path / "x.log"
    proc = run(logfile=str(logfile))
    assert proc.stdout == "logging imported: True\n"
    assert proc.stderr == "WARNING: w 3\nERROR: e 4\n"
    text = logfile.read_text()
    assert "INFO syscontainer_tools.x: i 2" in text and "d 1" not in text
    assert "ERROR syscontainer_tools.cli: cli lines go to --log only" in text


def test_without_set_up_messages_go_to_logging(caplog):
    from syscontainer_tools import log

    caplog.set_level("DEBUG")
    log.get_logger("syscontainer_tools.y").debug("seen %s", "here")
    assert [(r.name, r.levelname, r.getMessage(), r.funcName) for r in caplog.records] == [
        ("syscontainer_tools.y", "DEBUG", "seen here",
         "test_without_set_up_messages_go_to_logging")]
