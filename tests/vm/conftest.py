"""Tests that run only inside the VM lane's guest (scripts/vm-lane.sh): a stock
distribution kernel on pure cgroup v2.  They reuse the system tests' fixtures
(real runc containers, the CLI) and skip everywhere else."""

from __future__ import annotations

import os
import shutil

import pytest

from syscontainer_tools import cgroup
from tests.system.conftest import *  # noqa: F403  (fixtures: make_container, tool, ...)
from tests.system.conftest import PREFIX
from tests.system.waits import scaled

IN_GUEST = os.environ.get("SYSCONTAINER_VM_GUEST") == "1"
TIME_SCALE = scaled(1)
DISK = os.environ.get("SYSCONTAINER_VM_DISK", "")
NIC = os.environ.get("SYSCONTAINER_VM_NIC", "")
# the host's own root has every program scripts/setup.sh --vm installs; a
# distribution root (tests/vm/mkroot.sh: Debian 11, 13) has runc and no more
DISTRO_ROOT = os.environ.get("SYSCONTAINER_VM_ROOT", "/") != "/"


def need(program: str) -> str:
    """``program``'s path: missing, it fails the host's lane (setup.sh installs
    it there) and skips in a distribution root."""
    exe = shutil.which(program)
    if exe:
        return exe
    if DISTRO_ROOT:
        pytest.skip(f"{program} is not in this distribution root (tests/vm/mkroot.sh)")
    pytest.fail(f"{program} is installed in the lane (scripts/setup.sh --vm)")


# pure cgroup v2: vm-lane.sh's default (--cgroup hybrid mounts v1 controllers)
PURE_V2 = not cgroup.host_mounts().v1

__all__ = ["DISK", "IN_GUEST", "NIC", "PREFIX", "TIME_SCALE", "PURE_V2", "need"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_GUEST:
        return
    skip = pytest.mark.skip(reason="runs in the VM lane only (scripts/vm-lane.sh)")
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(skip)
