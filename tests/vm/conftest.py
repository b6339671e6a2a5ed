"""Tests that run only inside the VM lane's guest (scripts/vm-lane.sh): a stock
distribution kernel on pure cgroup v2.  They reuse the system tests' fixtures
(real runc containers, the CLI) and skip everywhere else."""

from __future__ import annotations

import os

import pytest

from tests.system.conftest import *  # noqa: F403  (fixtures: make_container, tool, ...)
from tests.system.conftest import PREFIX
from tests.system.waits import scaled

IN_GUEST = os.environ.get("SYSCONTAINER_VM_GUEST") == "1"
TIME_SCALE = scaled(1)
DISK = os.environ.get("SYSCONTAINER_VM_DISK", "")
NIC = os.environ.get("SYSCONTAINER_VM_NIC", "")

__all__ = ["DISK", "IN_GUEST", "NIC", "PREFIX", "TIME_SCALE"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_GUEST:
        return
    skip = pytest.mark.skip(reason="runs in the VM lane only (scripts/vm-lane.sh)")
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(skip)
