"""deploy/kubernetes: the manifests are valid Kubernetes objects (checked
against the API schemas kubernetes-validate ships, offline, strictly: an
unknown field is an error), and the node configuration is what the code
generates.  No cluster runs them here."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from syscontainer_tools import hookspec

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
MANIFESTS = sorted(DEPLOY.glob("*.yaml"))
# the oldest schema set it ships and the newest: RuntimeClass node.k8s.io/v1 needs >= 1.20
VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]


def documents() -> list[tuple[str, dict]]:
    return [(f"{p.name}#{i}", doc) for p in MANIFESTS
            for i, doc in enumerate(yaml.safe_load_all(p.read_text())) if doc]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name,doc", documents(), ids=[n for n, _ in documents()])
def test_manifest_is_valid(name, doc, version):
    kubernetes_validate.validate(doc, version, strict=True)


def test_validation_can_fail():
    doc = next(d for _, d in documents() if d["kind"] == "DaemonSet")
    bad = json.loads(json.dumps(doc))
    bad["spec"]["template"]["spec"]["containers"][0]["mountPropagation"] = "Bidirectional"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[-1], strict=True)


def test_daemonset_shape():
    ds = next(d for _, d in documents() if d["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    main = pod["containers"][0]
    assert main["securityContext"]["privileged"] is True
    assert main["command"][-1] == "serve"
    assert main["lifecycle"]["postStart"]["exec"]["command"][-2:] == ["remount", "all"]
    lxc = [m for m in main["volumeMounts"] if m["name"] == "lxc"]
    assert lxc == [{"name": "lxc", "mountPath": "/var/lib/lxc",
                    "mountPropagation": "Bidirectional"}]
    runtime_class = next(d for _, d in documents() if d["kind"] == "RuntimeClass")
    pod = next(d for _, d in documents() if d["kind"] == "Pod")
    assert pod["spec"]["runtimeClassName"] == runtime_class["metadata"]["name"]


def test_node_config_matches_generator():
    node = DEPLOY / "node"
    assert (node / "containerd-config.toml").read_text() == hookspec.containerd_toml()
    assert (node / "crio-syscontainer.conf").read_text() == hookspec.crio_conf()
    assert json.loads((node / "runc.json").read_text()) == hookspec.wrapper_settings(
        lxcfs=False, log_dir="/var/log")
    handler = next(d for _, d in documents() if d["kind"] == "RuntimeClass")["handler"]
    assert f"runtimes.{handler}]" in hookspec.containerd_toml()
