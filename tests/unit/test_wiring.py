"""wiring: what each engine needs before saved changes are promised to come back."""

from __future__ import annotations

import json

import pytest

from syscontainer_tools import hookspec, wiring
from syscontainer_tools.container import Container
from syscontainer_tools.engines import docker

HOOKED = {"hooks": hookspec.stages("/usr/bin", lxcfs=False)}


def ctr(engine: str | None, spec=None, runtime=None, bundle=None) -> Container:
    return Container(id="c1", name="c1", engine=engine, status="stopped", pid=0,
                     bundle=bundle, spec=spec or {}, runtime=runtime)


def test_hooks_in_the_spec_wire_any_engine():
    for engine in ("runc", "crun", "isula", "podman", "docker", "containerd"):
        w = wiring.of(ctr(engine, HOOKED))
        assert (w.prestart, w.poststop, w.fix) == (True, True, None)
    only_prestart = {"hooks": {"prestart": HOOKED["hooks"]["prestart"]}}
    w = wiring.of(ctr("runc", only_prestart, bundle="/b"))
    assert (w.prestart, w.poststop) == (True, False)
    assert w.fix == "syscontainer-tools install-hooks --engine runc --bundle /b"
    assert wiring.runs_poststop(ctr(None))


def test_no_hooks_no_promise():
    w = wiring.of(ctr("runc", {"hooks": {"prestart": [{"path": "/usr/bin/other"}]}}))
    assert not w.prestart and not wiring.runs_poststop(ctr("runc"))
    assert "--hook-spec" in (wiring.of(ctr("isula")).fix or "")


def test_containerd_by_its_runc_binary():
    assert wiring.of(ctr("containerd", runtime="/usr/bin/syscontainer-runc")).prestart
    w = wiring.of(ctr("containerd", runtime="io.containerd.runc.v2"))
    assert not w.prestart and "--runc-binary" in (w.fix or "")


def test_docker_by_the_path_docker_info_gives_its_runtime(monkeypatch):
    paths = {"runc": "runc", "sc": "/opt/bin/syscontainer-runc"}
    monkeypatch.setattr(docker, "runtime_paths", lambda: paths)
    assert wiring.of(ctr("docker", runtime="sc")).poststop
    w = wiring.of(ctr("docker", runtime="runc"))
    assert not w.prestart and "docker run --runtime syscontainer-runc" in (w.fix or "")


def test_podman_hooks_d(monkeypatch, tmp_path):
    monkeypatch.setattr(wiring, "HOOKS_DIRS", (str(tmp_path),))
    assert not wiring.of(ctr("podman")).prestart
    for name, body in hookspec.podman_specs("/usr/bin").items():
        (tmp_path / name).write_text(json.dumps(body))
    assert wiring.of(ctr("podman")).prestart


@pytest.mark.parametrize("spec", [{"hooks": None}, {"hooks": {"prestart": "x"}},
                                  {"hooks": {"prestart": ["x", None]}}])
def test_odd_specs(spec):
    assert wiring.hooked_stages(spec) == set()
