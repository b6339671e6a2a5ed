"""quickjson.loads is json.loads: the same values, the same errors."""

from __future__ import annotations

import json
import math
import sys

import pytest

from syscontainer_tools import quickjson

GOOD = ['{"id": "web1", "pid": 42, "bundle": "/b", "status": "created"}',
        ' \n\t{"a": [1, 2.5, -3e2, true, false, null, "\\u00e9\\n"]}\r\n',
        '[]', '"x"', '17', '{"a": {"b": {"c": []}}, "a2": "dup", "a2": "last"}',
        '{"emoji": "\\ud83d\\ude00", "raw": "é"}']
BAD = ['', '   ', '{', '{"a": 1} x', '{"a": 1}{}', "{'a': 1}", '{"a": 01}', '\ufeff{}',
       '{"a": "tab\there"}', '[1,]', 'nul']


@pytest.mark.parametrize("text", GOOD)
def test_same_values(text):
    assert quickjson.loads(text) == json.loads(text)
    assert quickjson.loads(text.encode()) == json.loads(text.encode())


def test_constants_as_json_reads_them():
    got = quickjson.loads('[NaN, Infinity, -Infinity]')
    assert math.isnan(got[0]) and got[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize("text", BAD)
def test_same_errors(text):
    with pytest.raises(ValueError) as expected:
        json.loads(text)
    with pytest.raises(ValueError) as got:
        quickjson.loads(text)
    assert str(got.value) == str(expected.value)


def test_without_the_c_scanner(monkeypatch):
    monkeypatch.setitem(sys.modules, "_json", None)  # import _json now fails
    assert quickjson.loads('{"a": [1]}') == {"a": [1]}
