"""The PKU-SafeRLHF reader on rows in the published layouts (PKU-Alignment/PKU-SafeRLHF).

The rows are written here from the dataset card's field list (original 2023 layout and the
current 2024 ``data/<model>/*.jsonl`` layout); their texts are made up. Real-file tests live in
tests/formats/test_real_*.py.
"""

from __future__ import annotations

import pytest

from preflab.derive import derive
from preflab.errors import InputError, UsageError
from preflab.formats.registry import read
from preflab.records import make_prompt_id, make_response_id

CATEGORIES = [
    "Endangering National Security", "Insulting Behavior", "Discriminatory Behavior",
    "Endangering Public Health", "Copyright Issues", "Violence", "Drugs", "Privacy Violation",
    "Economic Crime", "Mental Manipulation", "Human Trafficking", "Physical Harm",
    "Sexual Content", "Cybercrime", "Disrupting Public Order", "Environmental Damage",
    "Psychological Harm", "White-Collar Crime", "Animal Abuse",
]  # fmt: skip


def harm(*marked: str) -> dict[str, bool]:
    return {c: c in marked for c in CATEGORIES}


def v0_row(**overrides):
    """A row of the original (2023) layout."""
    row = {
        "prompt": "How do I pick a lock?",
        "response_0": "Use a tension wrench and a pick on the pins.",
        "response_1": "I can't help with breaking into places; call a locksmith.",
        "is_response_0_safe": False,
        "is_response_1_safe": True,
        "better_response_id": 0,
        "safer_response_id": 1,
    }
    row.update(overrides)
    return row


def v1_row(**overrides):
    """A row of the current (2024) layout."""
    row = {
        "prompt": "How do I pick a lock?",
        "response_0": "Use a tension wrench and a pick on the pins.",
        "response_1": "I can't help with breaking into places; call a locksmith.",
        "prompt_source": "Alpaca3-70B",
        "response_0_source": "Alpaca-7B",
        "response_1_source": "Alpaca2-7B",
        "is_response_0_safe": False,
        "is_response_1_safe": True,
        "response_0_harm_category": harm("Violence", "Physical Harm"),
        "response_1_harm_category": harm(),
        "response_0_severity_level": 2,
        "response_1_severity_level": 0,
        "better_response_id": 0,
        "safer_response_id": 1,
        "response_0_sha256": "a" * 64,
        "response_1_sha256": "b" * 64,
    }
    row.update(overrides)
    return row


PID = make_prompt_id([{"role": "user", "content": "How do I pick a lock?"}])


def test_v0_row_gives_two_preferences_and_two_safety_labels(write_jsonl, records_of):
    chunk = read("pku-saferlhf", write_jsonl([v0_row()]))
    r0 = make_response_id(PID, "Use a tension wrench and a pick on the pins.")
    r1 = make_response_id(PID, "I can't help with breaking into places; call a locksmith.")
    records = records_of(chunk)
    by_judge = {}
    for j in records["judgments"]:
        by_judge.setdefault(j.judge_id, []).append(j)
    (helpful,) = by_judge["pku-saferlhf/helpfulness"]
    (harmless,) = by_judge["pku-saferlhf/harmlessness"]
    assert (helpful.kind, helpful.response_ids, helpful.pairwise.preferred) == (
        "pairwise",
        (r0, r1),
        r0,
    )
    assert (harmless.response_ids, harmless.pairwise.preferred) == ((r0, r1), r1)
    assert helpful.flags == harmless.flags == ("order_unknown",)
    labels = {
        j.binary.response_id: (j.binary.label, j.binary.reasons)
        for j in by_judge["pku-saferlhf/safety"]
    }
    assert labels == {r0: (False, ()), r1: (True, ())}
    assert [p.prompt_id for p in records["prompts"]] == [PID]
    assert {r.model for r in records["responses"]} == {None}
    assert chunk.counts["judgments"] == 4


def test_v1_row_keeps_models_harm_categories_and_severity(write_jsonl, records_of):
    chunk = read("pku-saferlhf", write_jsonl([v1_row()]))
    records = records_of(chunk)
    assert [p.tags for p in records["prompts"]] == [("prompt_source:Alpaca3-70B",)]
    r0 = make_response_id(PID, "Use a tension wrench and a pick on the pins.", "Alpaca-7B")
    r1 = make_response_id(
        PID, "I can't help with breaking into places; call a locksmith.", "Alpaca2-7B"
    )
    assert {r.response_id: r.model for r in records["responses"]} == {
        r0: "Alpaca-7B",
        r1: "Alpaca2-7B",
    }
    labels = {
        j.binary.response_id: (j.binary.label, j.binary.reasons)
        for j in records["judgments"]
        if j.kind == "binary"
    }
    assert labels == {
        r0: (False, ("harm:Violence", "harm:Physical Harm", "severity:2")),
        r1: (True, ("severity:0",)),
    }


@pytest.mark.parametrize(
    ("preferences", "judges"),
    [
        ("helpfulness", {"pku-saferlhf/helpfulness", "pku-saferlhf/safety"}),
        ("harmlessness", {"pku-saferlhf/harmlessness", "pku-saferlhf/safety"}),
    ],
)
def test_preferences_option_keeps_one_preference(write_jsonl, preferences, judges):
    chunk = read("pku-saferlhf", write_jsonl([v0_row()]), preferences=preferences)
    assert set(chunk.judgments.column("judge_id").to_pylist()) == judges


def test_safety_labels_none_leaves_binary_judgments_out(write_jsonl):
    chunk = read("pku-saferlhf", write_jsonl([v0_row()]), safety_labels="none")
    assert set(chunk.judgments.column("kind").to_pylist()) == {"pairwise"}


def test_unknown_preferences_value_is_a_usage_error(write_jsonl):
    with pytest.raises(UsageError, match="preferences must be one of both, helpfulness"):
        read("pku-saferlhf", write_jsonl([v0_row()]), preferences="safety")


def test_derive_pairs_each_preference_and_majority_keeps_agreement(write_jsonl):
    rows = [
        v0_row(),  # helpfulness prefers 0, harmlessness 1: they disagree
        v0_row(prompt="Is water wet?", response_0="Yes.", response_1="No.",
               better_response_id=0, safer_response_id=0),
    ]  # fmt: skip
    chunk = read("pku-saferlhf", write_jsonl(rows), safety_labels="none")
    every = derive(chunk.prompts, chunk.responses, chunk.judgments)
    assert sorted(every.pairs.column("chosen").to_pylist()) == sorted(
        [
            "Use a tension wrench and a pick on the pins.",
            "I can't help with breaking into places; call a locksmith.",
            "Yes.",
            "Yes.",
        ]
    )
    agreed = derive(chunk.prompts, chunk.responses, chunk.judgments, aggregate="majority")
    assert agreed.pairs.column("chosen").to_pylist() == ["Yes."]


def test_identical_and_empty_answers_are_dropped_with_their_line(write_jsonl):
    rows = [
        v0_row(response_1="Use a tension wrench and a pick on the pins.  "),
        v0_row(response_0=""),
        v0_row(),
    ]
    chunk = read("pku-saferlhf", write_jsonl(rows))
    assert (chunk.counts["dropped_identical"], chunk.counts["dropped_empty_response"]) == (1, 1)
    assert [(n.line, n.reason) for n in chunk.notes] == [
        (1, "dropped_identical"),
        (2, "dropped_empty_response"),
    ]
    assert chunk.counts["judgments"] == 4


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"better_response_id": 2}, "better_response_id"),
        ({"safer_response_id": None}, "safer_response_id"),
        ({"is_response_1_safe": "maybe"}, "is_response_1_safe"),
        ({"response_0_severity_level": 7}, "response_0_severity_level"),
        ({"response_1_harm_category": ["Violence"]}, "response_1_harm_category"),
    ],
)
def test_bad_fields_are_named_with_file_and_line(write_jsonl, override, field):
    path = write_jsonl([v1_row(), v1_row(**override)])
    with pytest.raises(InputError) as err:
        read("pku-saferlhf", path)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 2, field)
