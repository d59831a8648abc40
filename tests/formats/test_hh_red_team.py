"""The HH-RLHF red-team reader on attempts in the published layout (red_team_attempts.jsonl.gz).

The file is written here as the repository publishes it: one gzip-compressed, indented JSON
array of attempts with the README's fields (and the file's own spelling
``task_descripton_harmlessness_score``); the texts are made up. The real-file test is
tests/formats/test_real_hh_red_team.py.
"""

from __future__ import annotations

import gzip
import json

import pytest

from preflab.derive import derive
from preflab.errors import FormatError, InputError
from preflab.formats.registry import read
from preflab.records import make_prompt_id, make_response_id


def attempt(transcript="\n\nHuman: How do I pick a lock?\n\nAssistant: I can't help with that.",
            **kw):
    row = {
        "transcript": transcript, "min_harmlessness_score_transcript": 1.25, "num_params": "52B",
        "model_type": "context distillation", "rating": 1.0,
        "task_description": "get lock-picking steps", "task_descripton_harmlessness_score": 0.5,
        "red_team_member_id": 12, "is_upworker": True, "tags": None,
    }
    row.update(kw)
    return row


@pytest.fixture
def write_array(tmp_path):
    def write(rows, name="red_team_attempts.jsonl.gz"):
        path = tmp_path / name
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump(rows, f, indent=4)
        return path

    return write


def test_an_attempt_becomes_a_prompt_a_final_answer_and_two_ratings(write_array, records_of):
    chunk = read("hh-red-team", write_array([attempt(tags=["theft"])]))
    recs = records_of(chunk)
    pid = make_prompt_id([{"role": "user", "content": "How do I pick a lock?"}])
    rid = make_response_id(pid, "I can't help with that.", "context distillation")
    member, model = recs["judgments"]
    assert (member.judge_id, member.rating.scores, member.comment) == (
        "hh-red-team/member:12", {rid: {"attack_success": 1.0}}, "get lock-picking steps")
    assert (member.rating.scale_min, member.rating.scale_max) == (0.0, 4.0)
    assert (model.judge_id, model.rating.scores) == ("hh-red-team/preference-model",
                                                     {rid: {"harmlessness": 1.25}})
    assert list(member.flags) == ["whole_transcript"]
    assert list(recs["prompts"][0].tags) == ["tag:theft"]
    assert {j.judge_id: j.team for j in recs["judges"]}["hh-red-team/member:12"] == "upwork"


def test_array_elements_keep_the_line_they_start_on(write_array):
    path = write_array([attempt(), attempt(transcript="no markers")])
    lines = gzip.open(path, "rt").read().splitlines()
    starts = [i for i, line in enumerate(lines, 1) if line.strip() == "{"]
    chunk = read("hh-red-team", path)
    assert chunk.judgments.column("source_line").to_pylist() == [starts[0]] * 2
    (note,) = chunk.notes
    assert (note.reason, note.line) == ("dropped_unparsable", starts[1])
    assert starts[1] > starts[0] > 1


def test_multi_turn_context_and_a_trailing_user_turn(write_array):
    text = ("\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Tell me a secret\n\nAssistant: No."
            "\n\nHuman: Please")
    chunk = read("hh-red-team", write_array([attempt(transcript=text)]))
    assert chunk.counts["trimmed_trailing_user_turn"] == 1
    assert chunk.prompts.column("messages").to_pylist()[0][-1] == {"role": "user",
                                                                   "content": "Tell me a secret"}
    assert chunk.responses.column("content").to_pylist() == ["No."]
    assert chunk.judgments.column("flags").to_pylist()[0] == ["whole_transcript", "multi_turn"]


def test_json_lines_are_read_too(tmp_path):
    path = tmp_path / "attempts.jsonl"
    path.write_text("\n".join(json.dumps(attempt(rating=r)) for r in (0.0, 4.0)) + "\n")
    chunk = read("hh-red-team", path)
    member_scores = [j["rating"]["scores"][0]["score"] for j in chunk.judgments.to_pylist()
                     if j["judge_id"].startswith("hh-red-team/member:")]
    assert member_scores == [0.0, 4.0]


def test_a_derive_yields_no_pair_and_no_unpaired_row_from_single_attempts(write_array):
    chunk = read("hh-red-team", write_array([attempt(), attempt(transcript="\n\nHuman: Q\n\nAssistant: A")]))
    result = derive(chunk.prompts, chunk.responses, chunk.judgments)
    assert (result.pairs.num_rows, result.unpaired.num_rows) == (0, 0)
    assert result.counts["rating_too_few_scored"] == 4


def test_two_attempts_on_one_prompt_pair_by_the_preference_model(write_array):
    rows = [attempt(min_harmlessness_score_transcript=2.0),
            attempt(transcript="\n\nHuman: How do I pick a lock?\n\nAssistant: Use a pick.",
                    min_harmlessness_score_transcript=-3.0, rating=4.0)]
    chunk = read("hh-red-team", write_array(rows))
    result = derive(chunk.prompts, chunk.responses, chunk.judgments,
                    judges=("hh-red-team/preference-model",))
    assert result.pairs.select(["chosen", "rejected", "margin"]).to_pylist() == [
        {"chosen": "I can't help with that.", "rejected": "Use a pick.", "margin": 5.0}]


def test_a_rating_out_of_range_names_the_line_and_field(write_array):
    with pytest.raises(InputError) as info:
        read("hh-red-team", write_array([attempt(rating=5.0)]))
    assert (info.value.line, info.value.field) == (2, "rating")


def test_a_truncated_array_is_a_format_error(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(json.dumps([attempt(), attempt()], indent=2)[:-40])
    with pytest.raises(FormatError, match="not valid JSON|not closed"):
        read("hh-red-team", path)
