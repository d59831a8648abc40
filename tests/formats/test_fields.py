"""Field checks used by every reader: what they accept and how they word refusals."""

from __future__ import annotations

import pytest

from preflab.formats.fields import RowError, get_bool, get_messages, get_number, get_str


def test_get_messages_maps_role_aliases_and_sharegpt_turns():
    turns = [
        {"from": "human", "value": "hi"},
        {"role": "gpt", "content": "yo"},
        {"role": "Prompter", "content": "q"},
        {"role": "system", "content": "s"},
    ]
    assert [m["role"] for m in get_messages(turns, "conv")] == [
        "user",
        "assistant",
        "user",
        "system",
    ]


@pytest.mark.parametrize(
    ("value", "field", "text"),
    [
        ("hi", "conv", "expected a list of messages, got a string"),
        ([{"role": "user"}], "conv[0].content", "expected a string, got null"),
        (["hi"], "conv[0]", "expected a message object"),
        (
            [{"role": None, "content": "x"}],
            "conv[0].role",
            "expected one of system, user, assistant",
        ),
    ],
)
def test_get_messages_names_the_bad_turn(value, field, text):
    with pytest.raises(RowError) as info:
        get_messages(value, "conv")
    assert info.value.field == field and text in info.value.message


@pytest.mark.parametrize(("value", "expected"), [(3, 3), ("3", 3), (" 2 ", 2), (0, 0)])
def test_get_number_accepts_numbers_and_numeric_strings(value, expected):
    assert get_number({"x": value}, "x", lo=0, hi=4, integer=True) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "got a boolean"),
        ("nan", "finite"),
        (2.5, "whole number"),
        (9, "within 0..4"),
        ([1], "got a list"),
    ],
)
def test_get_number_refusals(value, text):
    with pytest.raises(RowError, match=text):
        get_number({"x": value}, "x", lo=0, hi=4, integer=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (1, True), (0, False), ("yes", True), ("FALSE", False)],
)
def test_get_bool(value, expected):
    assert get_bool({"x": value}, "x") is expected


def test_get_bool_refuses_other_values():
    with pytest.raises(RowError, match='expected true or false, got "maybe"'):
        get_bool({"x": "maybe"}, "x")


def test_get_str_distinguishes_missing_null_and_empty():
    with pytest.raises(RowError, match="missing"):
        get_str({}, "x")
    with pytest.raises(RowError, match="got null"):
        get_str({"x": None}, "x")
    with pytest.raises(RowError, match="empty"):
        get_str({"x": "  "}, "x")
    assert get_str({"x": ""}, "x", allow_empty=True) == ""
