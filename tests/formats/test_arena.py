"""The Chatbot Arena battles reader (lmsys/chatbot_arena_conversations fields)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from preflab.errors import InputError
from preflab.formats.registry import read
from preflab.records import make_prompt_id, make_response_id


def turns(*texts):
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)
    ]


def battle(**overrides):
    row = {
        "question_id": "q1",
        "model_a": "gpt-4",
        "model_b": "vicuna-13b",
        "winner": "model_b",
        "judge": "arena_user_7",
        "conversation_a": turns("Hi", "Hello from A"),
        "conversation_b": turns("Hi", "Hello from B"),
        "turn": 1,
        "anony": True,
        "language": "English",
        "tstamp": 1682351591.5,
        "openai_moderation": {},
        "toxic_chat_tag": {},
    }
    row.update(overrides)
    return row


def test_battle_gives_exact_records(write_jsonl, records_of):
    chunk = read("arena", write_jsonl([battle()]))
    pid = make_prompt_id([{"role": "user", "content": "Hi"}])
    a = make_response_id(pid, "Hello from A", "gpt-4")
    b = make_response_id(pid, "Hello from B", "vicuna-13b")
    assert chunk.responses.select(["response_id", "model", "origin"]).to_pylist() == [
        {"response_id": a, "model": "gpt-4", "origin": "model"},
        {"response_id": b, "model": "vicuna-13b", "origin": "model"},
    ]
    (j,) = records_of(chunk)["judgments"]
    assert j.response_ids == (a, b) and j.pairwise.preferred == b
    assert j.judge_id == "arena:arena_user_7"
    assert j.submitted_at == datetime(2023, 4, 24, 15, 53, 11, 500000, tzinfo=UTC)
    assert j.flags == ("anonymous",)
    assert chunk.prompts.column("tags").to_pylist() == [["lang:English"]]
    assert chunk.judges.to_pylist()[0]["kind"] == "human"


@pytest.mark.parametrize(
    ("winner", "expected"),
    [
        ("model_a", {"preferred": 0, "strength": 1, "tie": False, "both_bad": False}),
        ("tie", {"preferred": None, "strength": 0, "tie": True, "both_bad": False}),
        ("tie (bothbad)", {"preferred": None, "strength": 0, "tie": False, "both_bad": True}),
    ],
)
def test_winner_values(write_jsonl, records_of, winner, expected):
    chunk = read("arena", write_jsonl([battle(winner=winner)]))
    (j,) = records_of(chunk)["judgments"]
    got = j.pairwise.model_dump()
    if expected["preferred"] is not None:
        expected = dict(expected, preferred=j.response_ids[expected["preferred"]])
    assert got == {"scale": 2, **expected}


def test_multi_turn_prompt_continues_with_the_preferred_side(write_jsonl):
    row = battle(
        conversation_a=turns("Hi", "A1", "More", "A2"),
        conversation_b=turns("Hi", "B1", "More", "B2"),
        turn=2,
    )
    chunk = read("arena", write_jsonl([row]))
    assert chunk.prompts.column("messages").to_pylist() == [
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "B1"},
            {"role": "user", "content": "More"},
        ]
    ]
    assert chunk.responses.column("content").to_pylist() == ["A2", "B2"]
    assert chunk.judgments.column("flags").to_pylist() == [
        ["multi_turn", "context_from_preferred", "anonymous"]
    ]
    dropped = read("arena", write_jsonl([row], "b.jsonl"), multi_turn="drop")
    assert dropped.counts["dropped_multi_turn"] == 1 and dropped.judgments.num_rows == 0


def test_different_user_turns_are_dropped_as_divergent(write_jsonl):
    row = battle(conversation_b=turns("Hey", "Hello from B"))
    chunk = read("arena", write_jsonl([row]))
    assert chunk.counts["dropped_divergent"] == 1


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"winner": "model_c"}, "winner"),
        ({"conversation_a": turns("Hi")}, "conversation_a"),
        (
            {
                "conversation_b": [
                    {"role": "user", "content": "Hi"},
                    {"role": "user", "content": "x"},
                ]
            },
            "conversation_b[1].role",
        ),
        ({"model_a": None}, "model_a"),
    ],
)
def test_bad_battles_name_the_field(write_jsonl, override, field):
    with pytest.raises(InputError) as info:
        read("arena", write_jsonl([battle(**override)]))
    assert info.value.field == field


def test_impossible_timestamp_is_named(write_jsonl):
    with pytest.raises(InputError) as info:
        read("arena", write_jsonl([battle(tstamp=1e20)]))
    assert info.value.field == "tstamp"


def test_repeated_question_id_first_occurrence_wins(write_jsonl):
    path = write_jsonl([battle(), battle(winner="model_a"), battle(question_id="q2")])
    chunk = read("arena", path)
    assert chunk.counts["skipped_repeated_source"] == 1
    assert chunk.judgments.column("source_line").to_pylist() == [1, 3]
    (note,) = chunk.notes
    assert (note.path, note.line, note.field) == (str(path), 2, "question_id")
    assert "battle 'q1' was already read at line 1" in note.message
