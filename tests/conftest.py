import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="system tests need root")
    for item in items:
        if "system" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_logreport(report):
    """In the VM lane's guest, print a failure's traceback at once: a guest
    that times out never reaches pytest's summary at the end."""
    if report.failed and os.environ.get("SYSCONTAINER_VM_GUEST") == "1":
        import sys

        sys.stderr.write(f"\n== {report.nodeid} {report.when} failed:\n{report.longreprtext}\n")
        sys.stderr.flush()
