"""Reading TRL preference and unpaired datasets; implicit prompts checked against TRL itself."""

from __future__ import annotations

import pytest
from trl.data_utils import extract_prompt

from preflab.errors import InputError
from preflab.formats.registry import read
from preflab.records import make_prompt_id, make_response_id


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


SYSTEM = {"role": "system", "content": "Be brief."}

PREFERENCE_ROWS = {
    "standard explicit": {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
    "standard implicit": {"chosen": "The sky is blue.", "rejected": "The sky is green."},
    "conversational explicit": {
        "prompt": [SYSTEM, user("Colour of the sky?")],
        "chosen": [assistant("Blue.")],
        "rejected": [assistant("Green.")],
    },
    "conversational implicit": {
        "chosen": [SYSTEM, user("Colour of the sky?"), assistant("Blue.")],
        "rejected": [SYSTEM, user("Colour of the sky?"), assistant("Green.")],
    },
}


def _as_messages(value):
    return [user(value)] if isinstance(value, str) else value


def _as_text(value):
    return value if isinstance(value, str) else value[0]["content"]


@pytest.mark.parametrize("kind", sorted(PREFERENCE_ROWS))
def test_preference_row_matches_trl_extract_prompt(write_jsonl, records_of, kind):
    row = PREFERENCE_ROWS[kind]
    expected = extract_prompt(row) if "prompt" not in row else row
    chunk = read("trl-preference", write_jsonl([row]))
    prompt = _as_messages(expected["prompt"])
    pid = make_prompt_id(prompt)
    chosen_id = make_response_id(pid, _as_text(expected["chosen"]))
    rejected_id = make_response_id(pid, _as_text(expected["rejected"]))
    assert chunk.prompts.column("messages").to_pylist() == [prompt]
    assert chunk.responses.column("content").to_pylist() == [
        _as_text(expected["chosen"]),
        _as_text(expected["rejected"]),
    ]
    (j,) = records_of(chunk)["judgments"]
    assert j.response_ids == (chosen_id, rejected_id) and j.pairwise.preferred == chosen_id
    assert j.judge_id == "trl-preference"


def test_unpaired_rows_standard_and_conversational(write_jsonl, records_of):
    rows = [
        {"prompt": "The sky is", "completion": " blue.", "label": True},
        {"prompt": [user("Sky?")], "completion": [assistant("Green.")], "label": False},
        {"completion": [user("Sky?"), assistant("Blue.")], "label": True},
    ]
    chunk = read("trl-unpaired", write_jsonl(rows))
    judgments = records_of(chunk)["judgments"]
    assert [(j.kind, j.binary.label) for j in judgments] == [
        ("binary", True),
        ("binary", False),
        ("binary", True),
    ]
    pid = make_prompt_id([user("Sky?")])
    assert judgments[2].binary.response_id == make_response_id(pid, "Blue.")
    assert chunk.prompts.num_rows == 2  # rows 2 and 3 share the prompt "Sky?"


def test_identical_chosen_and_rejected_are_dropped(write_jsonl):
    chunk = read("trl-preference", write_jsonl([{"prompt": "Q", "chosen": "A", "rejected": "A "}]))
    assert chunk.counts["dropped_identical"] == 1 and chunk.judgments.num_rows == 0


def test_implicit_conversational_row_with_chosen_equal_to_rejected_is_dropped(write_jsonl):
    same = [user("Q"), assistant("A")]
    rows = [
        {"chosen": same, "rejected": same},
        {"chosen": [user("Q"), assistant("A")], "rejected": [user("Q"), assistant("A  ")]},
        {"chosen": "Q: A", "rejected": "Q: A "},
        {"chosen": [user("Q"), assistant("B")], "rejected": [user("Q"), assistant("C")]},
    ]
    chunk = read("trl-preference", write_jsonl(rows))
    assert chunk.counts["dropped_identical"] == 3
    assert chunk.judgments.num_rows == 1
    assert [n.line for n in chunk.notes if n.reason == "dropped_identical"] == [1, 2, 3]


def test_implicit_prompt_with_nothing_shared_is_dropped(write_jsonl):
    chunk = read("trl-preference", write_jsonl([{"chosen": "Yes", "rejected": "No"}]))
    assert chunk.counts["dropped_no_prompt"] == 1


@pytest.mark.parametrize(
    ("row", "field", "text"),
    [
        ({"prompt": "Q", "chosen": "A"}, "rejected", "missing"),
        (
            {"prompt": "Q", "chosen": [assistant("A"), assistant("B")], "rejected": "C"},
            "chosen",
            "expected exactly one assistant message, got 2",
        ),
        (
            {"prompt": "Q", "chosen": [user("A")], "rejected": "C"},
            "chosen[0].role",
            "expected an assistant message",
        ),
        (
            {"prompt": [assistant("hi")], "chosen": "A", "rejected": "B"},
            "prompt",
            "last prompt message must be a user turn",
        ),
        (
            {"prompt": [{"role": "robot", "content": "x"}], "chosen": "A", "rejected": "B"},
            "prompt[0].role",
            "expected one of system, user, assistant",
        ),
        (
            {
                "chosen": [user("Q"), assistant("A"), user("more")],
                "rejected": [user("Q"), assistant("A"), user("less")],
            },
            "chosen",
            "must end with a user turn",
        ),
    ],
)
def test_bad_preference_rows_name_the_field(write_jsonl, row, field, text):
    with pytest.raises(InputError) as info:
        read("trl-preference", write_jsonl([row]))
    assert info.value.field == field
    assert text in str(info.value)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"prompt": "Q", "completion": "A", "label": "maybe"}, "label"),
        ({"prompt": "Q", "completion": "A"}, "label"),
        ({"completion": "A", "label": True}, "prompt"),
    ],
)
def test_bad_unpaired_rows_name_the_field(write_jsonl, row, field):
    with pytest.raises(InputError) as info:
        read("trl-unpaired", write_jsonl([row]))
    assert info.value.field == field


def test_implicit_unpaired_completion_must_end_with_the_assistant(write_jsonl):
    row = {"completion": [user("Sky?"), assistant("Blue."), user("Sure?")], "label": True}
    with pytest.raises(InputError) as info:
        read("trl-unpaired", write_jsonl([row]))
    assert info.value.field == "completion[2].role"
