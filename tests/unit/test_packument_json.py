"""nmr.packument's JSON: orjson's bytes are the stdlib's, and what orjson refuses still works."""

from __future__ import annotations

import json

import pytest

from nmr.packument import dump, load_document


def stdlib(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


DOCS = [
    {"name": "@acme/x", "versions": {"1.0.0": {"description": 'é ✓ \u2028 "quoted" \\ tab\t', "n": 1.5}}},
    {"list": [1, -2, 0.1, 1e16, True, False, None, "", {}], "nested": {"a": {"b": [[]]}}},
    {"big": 2**63 - 1, "small": -(2**63)},
]


@pytest.mark.parametrize("doc", DOCS)
def test_dump_writes_the_stdlib_bytes_and_reads_back(doc):
    assert dump(doc) == stdlib(doc)
    assert load_document(dump(doc)) == doc


def test_small_float_exponents_differ_in_spelling_only():
    doc = {"tiny": 1e-7}
    assert dump(doc) == b'{"tiny":1e-7}' and stdlib(doc) == b'{"tiny":1e-07}'
    assert json.loads(dump(doc)) == doc


def test_integers_beyond_64_bits_fall_back_to_the_stdlib():
    doc = {"huge": 2**70, "versions": {}}
    assert dump(doc) == b'{"huge":1180591620717411303424,"versions":{}}'
    assert load_document(dump(doc)) == doc


def test_a_lone_surrogate_is_written_escaped_and_reads_back():
    doc = {"description": "\ud800 half a pair, é"}
    assert dump(doc) == b'{"description":"\\ud800 half a pair, \\u00e9"}'
    assert load_document(dump(doc)) == doc


def test_documents_only_the_stdlib_reads_still_load():
    assert load_document(b'{"x": NaN, "y": 123456789012345678901234567890}')["y"] == 123456789012345678901234567890
