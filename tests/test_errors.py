"""The error tree: messages name where, what; JSON shape is one shape."""

from __future__ import annotations

from preflab.errors import FormatError, InputError, PreflabError


def test_message_leads_with_location() -> None:
    err = InputError("expected a string, got null", path="data.jsonl", line=812, field="chosen")
    assert str(err) == 'data.jsonl, line 812, field "chosen": expected a string, got null'


def test_to_dict_has_code_message_field() -> None:
    err = FormatError("not HH-RLHF", path="x.jsonl", line=2, field="chosen")
    d = err.to_dict()
    assert d["code"] == "invalid_format"
    assert d["field"] == "chosen"
    assert d["line"] == 2
    assert isinstance(err, InputError) and isinstance(err, PreflabError)
