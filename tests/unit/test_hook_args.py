"""The hook's start-up shortcuts read what the slow paths read: ``quick_args``
(no argparse) agrees with ``parse_args``, and ``_plain_id`` with the state
store's id rule."""

from __future__ import annotations

import pytest

from syscontainer_tools import hooks
from syscontainer_tools.resources.state import _ID_RE

PLAIN = [
    ["--state", "prestart"],
    ["--state", "poststop", "--log", "/var/log/h.log"],
    ["--state=poststart", "--state-dir", "/tmp/s", "--debug"],
    ["--log", "", "--state", "prestart", "--state-dir=/x=y"],
    ["--state", "poststop", "--state", "prestart"],  # the last one wins, as in argparse
]
ODD = [
    [],
    ["--state"],
    ["--state", "bogus"],
    ["--sta", "prestart"],              # an abbreviation: argparse's to judge
    ["--state", "prestart", "--log", "-x"],
    ["--state", "prestart", "extra"],
    ["--state", "prestart", "--debug=1"],
    ["--state", "prestart", "-h"],
    ["--version"],
]


@pytest.mark.parametrize("argv", PLAIN)
def test_quick_args_agree_with_argparse(argv, monkeypatch):
    monkeypatch.setenv("SYSCONTAINER_STATE_DIR", "/env/dir")
    quick = hooks.quick_args(argv)
    assert quick is not None
    assert vars(quick) == vars(hooks.parse_args(argv))


@pytest.mark.parametrize("argv", ODD)
def test_quick_args_leave_the_rest_to_argparse(argv):
    assert hooks.quick_args(argv) is None


@pytest.mark.parametrize("cid", ["a", "web1", "A.b+c-d_e", "0" * 255, "0" * 256, "", "-a", "_a",
                                 ".", "..", "a/b", "a b", "é1", "1é", "a\n", "a:b", "web1\x00"])
def test_plain_id_is_the_state_stores_rule(cid):
    assert hooks._plain_id(cid) == bool(_ID_RE.match(cid))
