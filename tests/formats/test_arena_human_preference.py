"""The arena human-preference reader on rows in the published layout (lmarena-ai/arena-human-preference-55k).

The CSV is written here with the Kaggle file's header (``id, model_a, model_b, prompt,
response_a, response_b, winner_model_a, winner_model_b, winner_tie``) and its JSON-encoded
turn lists; the texts are made up. The real-file test is
tests/formats/test_real_arena_human_preference.py.
"""

from __future__ import annotations

import csv
import json

import pytest

from preflab.derive import derive
from preflab.errors import InputError
from preflab.formats.registry import read
from preflab.records import make_prompt_id, make_response_id

HEADER = ["id", "model_a", "model_b", "prompt", "response_a", "response_b",
          "winner_model_a", "winner_model_b", "winner_tie"]


def battle(id, prompt, a, b, winner="a", model_a="gpt-4-0613", model_b="llama-2-70b-chat"):
    votes = {"a": (1, 0, 0), "b": (0, 1, 0), "tie": (0, 0, 1)}[winner]
    return [id, model_a, model_b, json.dumps(prompt), json.dumps(a), json.dumps(b), *votes]


@pytest.fixture
def write_csv(tmp_path):
    def write(rows, name="train.csv"):
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            w.writerows(rows)
        return path

    return write


def test_a_battle_becomes_a_pairwise_judgment_in_shown_order(write_csv, records_of):
    chunk = read("arena-human-preference", write_csv([battle(30192, ["Hi?"], ["Hello!"], ["Yo."], "b")]))
    (j,) = records_of(chunk)["judgments"]
    pid = make_prompt_id([{"role": "user", "content": "Hi?"}])
    a = make_response_id(pid, "Hello!", "gpt-4-0613")
    b = make_response_id(pid, "Yo.", "llama-2-70b-chat")
    assert (j.judge_id, list(j.response_ids), j.pairwise.preferred, j.pairwise.tie) == (
        "arena-human-preference", [a, b], b, False)


def test_a_tie_is_a_tie_and_the_derive_drops_it(write_csv):
    chunk = read("arena-human-preference", write_csv([battle(1, ["Q"], ["A"], ["B"], "tie")]))
    assert chunk.judgments.column("pairwise").to_pylist()[0]["tie"] is True
    assert derive(chunk.prompts, chunk.responses, chunk.judgments).counts["ties_dropped"] == 1


def test_multi_turn_context_continues_with_the_preferred_side(write_csv):
    row = battle(2, ["Q1", "Q2"], ["A1", "A2"], ["B1", "B2"], "b")
    chunk = read("arena-human-preference", write_csv([row]))
    assert chunk.prompts.column("messages").to_pylist() == [[
        {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "B1"},
        {"role": "user", "content": "Q2"}]]
    assert chunk.judgments.column("flags").to_pylist() == [["multi_turn", "context_from_preferred"]]
    dropped = read("arena-human-preference", write_csv([row], "t2.csv"), multi_turn="drop")
    assert dropped.counts["dropped_multi_turn"] == 1


def test_null_turns_are_dropped_by_reason_with_line_and_id(write_csv):
    chunk = read("arena-human-preference", write_csv([
        battle(3, ["Q"], [None], ["B"]),
        battle(4, ["Q1", "Q2"], [None, "A2"], ["B1", "B2"]),
        battle(5, ["Q"], ["A"], ["A"], model_b="gpt-4-0613"),
    ]))
    assert {k: chunk.counts[k] for k in ("dropped_empty_response", "dropped_missing_turn",
                                         "dropped_identical")} == {
        "dropped_empty_response": 1, "dropped_missing_turn": 1, "dropped_identical": 1}
    assert [(n.line, n.reason) for n in chunk.notes] == [
        (2, "dropped_empty_response"), (3, "dropped_missing_turn"), (4, "dropped_identical")]
    assert "battle '4'" in chunk.notes[1].message


def test_a_repeated_id_keeps_the_first_battle(write_csv):
    chunk = read("arena-human-preference", write_csv([
        battle(7, ["Q"], ["A"], ["B"], "a"), battle(7, ["Q"], ["A"], ["B"], "b")]))
    assert chunk.counts["skipped_repeated_source"] == 1
    (pw,) = chunk.judgments.column("pairwise").to_pylist()
    assert pw["preferred"] == chunk.judgments.column("response_ids").to_pylist()[0][0]
    assert "line 2" in chunk.notes[0].message


def test_a_lone_surrogate_becomes_a_replacement_character(write_csv):
    row = battle(8, ["Q"], ["A"], ["B"])
    row[4] = '["smile \\ud83d"]'
    chunk = read("arena-human-preference", write_csv([row]))
    assert chunk.counts["replaced_lone_surrogates"] == 1
    assert "smile \ufffd" in chunk.responses.column("content").to_pylist()


@pytest.mark.parametrize(("change", "field"), [
    ({6: 1, 7: 1}, "winner_model_a"),
    ({3: "not json"}, "prompt"),
    ({4: json.dumps(["A", "A2"])}, "response_a"),
])
def test_bad_rows_name_the_field(write_csv, change, field):
    row = battle(9, ["Q"], ["A"], ["B"])
    for i, v in change.items():
        row[i] = v
    with pytest.raises(InputError) as info:
        read("arena-human-preference", write_csv([row]))
    assert (info.value.line, info.value.field) == (2, field)
