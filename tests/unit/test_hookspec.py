"""The hook files shipped in the tree are exactly what install-hooks generates."""

import json
from pathlib import Path

import pytest

from syscontainer_tools import hookspec
from syscontainer_tools.errors import ToolError
from syscontainer_tools.hooks import kernel_modules, read_oci_state

ROOT = Path(__file__).resolve().parents[2]
LOGS = {"log_dir": "/var/log"}


def load(rel: str):
    return json.loads((ROOT / rel).read_text())


def test_isulad_hookspec_files_match_generator():
    assert load("hookspec.json") == hookspec.isulad_spec("/usr/bin", **LOGS)
    assert load("hooks/isulad-hookspec.json") == hookspec.isulad_spec("/usr/bin", **LOGS)


def test_podman_hooks_d_files_match_generator():
    files = {p.name: json.loads(p.read_text()) for p in (ROOT / "hooks/podman").glob("*.json")}
    assert files == hookspec.podman_specs("/usr/bin", **LOGS)
    for body in files.values():
        assert body["version"] == "1.0.0" and body["when"] == {"always": True}
        assert body["hook"]["path"].startswith("/") and body["stages"]


def test_runc_snippet_matches_generator():
    assert load("hooks/runc/config-hooks.json") == hookspec.runc_hooks("/usr/bin")


def test_patch_bundle_is_idempotent(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"hooks": {"prestart": [{"path": "/other"}]}}))
    hookspec.patch_bundle(str(tmp_path), "/opt/bin")
    hookspec.patch_bundle(str(tmp_path), "/opt/bin")
    hooks = json.loads((tmp_path / "config.json").read_text())["hooks"]
    assert [h["path"] for h in hooks["prestart"]] == ["/other", "/opt/bin/syscontainer-hooks",
                                                      "/opt/bin/lxcfs-hook"]
    assert hooks["poststop"][0]["args"] == ["syscontainer-hooks", "--state", "poststop"]


def test_kernel_modules_validation():
    assert kernel_modules({"KERNEL_MODULES": "ip_vs, br_netfilter,"}) == ["ip_vs", "br_netfilter"]
    assert kernel_modules({}) == []
    for bad in ("-v", "a;b", "../x", "a b"):
        with pytest.raises(ToolError, match="invalid module name"):
            kernel_modules({"KERNEL_MODULES": bad})


@pytest.mark.parametrize("raw", ["", "not json", "[]", '{"id": "x"}'])
def test_bad_oci_state(raw):
    import io

    with pytest.raises(ToolError):
        read_oci_state(io.StringIO(raw))


def test_docker_daemon_json_matches_generator():
    assert load("hooks/docker/daemon.json") == hookspec.merge_docker_daemon_json({}, "/usr/bin",
                                                                                 **LOGS)


def test_docker_daemon_json_merge_keeps_what_was_there():
    current = {"log-level": "warn", "runtimes": {"kata": {"path": "/usr/bin/kata"}}}
    merged = hookspec.merge_docker_daemon_json(current, "/opt/bin", default=True, lxcfs=False,
                                               state_dir="/s")
    assert merged["log-level"] == "warn" and merged["default-runtime"] == "syscontainer-runc"
    assert merged["runtimes"]["kata"] == {"path": "/usr/bin/kata"}
    assert merged["runtimes"]["syscontainer-runc"] == {
        "path": "/opt/bin/syscontainer-runc",
        "runtimeArgs": ["--sc-runtime=runc", "--sc-lxcfs=0", "--sc-log-dir=", "--sc-state-dir=/s"]}
    assert current["runtimes"] == {"kata": {"path": "/usr/bin/kata"}}
