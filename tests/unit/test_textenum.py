"""TextEnum (the 3.9-compatible StrEnum): the enums print, format and
serialise as their plain values, on every supported Python."""

from __future__ import annotations

import json
import logging

from syscontainer_tools.engines import Engine
from syscontainer_tools.resources.nic import NicType


def test_str_format_and_json_are_the_value():
    kind = NicType.VETH
    assert str(kind) == "veth"
    assert f"{kind}" == "veth"
    assert f"[{kind:>6}]" == "[  veth]"
    assert "%s" % kind == "veth"  # noqa: UP031 -- the logging style
    assert "{}".format(Engine.DOCKER) == "docker"  # noqa: UP032
    assert json.dumps({"Type": kind, kind: 1}) == '{"Type": "veth", "veth": 1}'
    assert repr(kind) == "<NicType.VETH: 'veth'>"


def test_compares_and_hashes_as_str():
    assert NicType.ETH == "eth"
    assert {"eth": 1}[NicType.ETH] == 1
    assert Engine("podman") is Engine.PODMAN
    assert [e.value for e in Engine] == ["auto", "isula", "docker", "podman", "containerd",
                                        "runc", "crun"]


def test_logging_shows_the_value(caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("sct-textenum").info("engine %s", Engine.RUNC)
    assert caplog.messages == ["engine runc"]
