"""What the systemd-mode VM tests share: runc/crun containers started with
the systemd cgroup driver, and the CLI run against a given engine."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import *  # noqa: F403  (fixtures: make_loop, rootfs_template, ...)
from tests.system.conftest import PREFIX, Ctr, run, write_config
from tests.system.test_hooks import hooks_for


class SdCtr(Ctr):
    """A runc/crun container started with the systemd cgroup driver."""

    def start(self) -> None:
        log = self.bundle / "run.log"
        with open(log, "w") as out:
            proc = subprocess.run([self.runtime, "--systemd-cgroup", "--root", self.root, "run",
                                   "-d", self.id], cwd=self.bundle, stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=out, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"{self.runtime} run {self.id} failed: {log.read_text()}")

    @property
    def unit(self) -> str:
        return f"{self.runtime}-{self.id}.scope"


@pytest.fixture
def sd_container(rootfs_template: Path, tmp_path_factory: pytest.TempPathFactory,
                 state_dir: str) -> Iterator[Any]:
    made: list[SdCtr] = []
    roots: list[str] = []

    def factory(runtime: str) -> SdCtr:
        cid = f"{PREFIX}-{runtime}-{secrets.token_hex(2)}"
        root = f"/run/{PREFIX}-{runtime}"
        os.makedirs(root, exist_ok=True)
        roots.append(root)
        bundle = tmp_path_factory.mktemp(cid)
        shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
        write_config(bundle, hooks=hooks_for(state_dir))
        cfg = json.loads((bundle / "config.json").read_text())
        cfg["linux"]["cgroupsPath"] = f"system.slice:{runtime}:{cid}"
        (bundle / "config.json").write_text(json.dumps(cfg, indent=1))
        ctr = SdCtr(cid, bundle, root, runtime=runtime)
        made.append(ctr)
        ctr.start()
        return ctr

    yield factory
    for ctr in made:
        ctr.stop()
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def podman_ctr(rootfs_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    names: list[str] = []

    def factory() -> str:
        name = f"{PREFIX}-pm-{secrets.token_hex(2)}"
        rootfs = tmp_path_factory.mktemp(name) / "rootfs"
        shutil.copytree(rootfs_template, rootfs, symlinks=True)
        names.append(name)
        run(["podman", "run", "-d", "--name", name, "--network", "none", "--rootfs", str(rootfs),
             "/bin/sleep", "1000000"])
        return name

    yield factory
    for name in names:
        run(["podman", "rm", "-f", "-t", "0", name], check=False)


def tool_as(engine: str, runtime_root: str | None, state_dir: str, *args: str
            ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SYSCONTAINER_ENGINE=engine, SYSCONTAINER_STATE_DIR=state_dir)
    if runtime_root:
        env["SYSCONTAINER_RUNTIME_ROOT"] = runtime_root
    return run([sys.executable, "-m", "syscontainer_tools", *args], env=env, check=False)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A failure's traceback at once: a slow guest may hit the lane's timeout
    before pytest's summary."""
    if report.failed:
        sys.stdout.write(f"\n== {report.nodeid} ({report.when}) failed:\n{report.longreprtext}\n")
        sys.stdout.flush()
