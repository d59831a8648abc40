"""The UltraFeedback reader on rows built from the published fields (openbmb/UltraFeedback)."""

from __future__ import annotations

import json

import pytest

from preflab.errors import InputError
from preflab.formats.registry import read
from preflab.records import make_prompt_id, make_response_id


def aspect(rating):
    return {"Rating": rating, "Rationale": "because"}


def completion(model, response, ratings, fine, overall, **extra):
    names = ("helpfulness", "honesty", "instruction_following", "truthfulness")
    return {
        "model": model,
        "principle": "helpfulness",
        "custom_system_prompt": "Be useful.",
        "response": response,
        "annotations": {n: aspect(r) for n, r in zip(names, ratings, strict=True)},
        "fine-grained_score": fine,
        "overall_score": overall,
        "critique": "ok",
        **extra,
    }


ROW = {
    "source": "evol_instruct",
    "instruction": "Name a color.",
    "models": ["gpt-4", "alpaca-7b"],
    "completions": [
        completion("gpt-4", "Blue.", ["5", "N/A", "4", "5"], 4.666, 8.5),
        completion("alpaca-7b", "Banana.", ["1", "2", "2", "1"], 1.5, 2),
    ],
    "correct_answers": ["None"],
    "incorrect_answers": ["None"],
}


def test_row_gives_two_rating_judgments_with_exact_scores(write_jsonl, records_of):
    chunk = read("ultrafeedback", write_jsonl([ROW]))
    pid = make_prompt_id([{"role": "user", "content": "Name a color."}])
    a, b = make_response_id(pid, "Blue.", "gpt-4"), make_response_id(pid, "Banana.", "alpaca-7b")
    assert chunk.prompts.column("tags").to_pylist() == [["source:evol_instruct"]]
    responses = chunk.responses.to_pylist()
    assert [(r["response_id"], r["model"], r["origin"]) for r in responses] == [
        (a, "gpt-4", "model"),
        (b, "alpaca-7b", "model"),
    ]
    assert json.loads(responses[0]["params"]) == {
        "principle": "helpfulness",
        "system_prompt": "Be useful.",
    }
    aspects, overall = records_of(chunk)["judgments"]
    assert aspects.judge_id == "ultrafeedback/gpt-4/aspects"
    assert aspects.rating.scores == {
        a: {
            "helpfulness": 5,
            "instruction_following": 4,
            "truthfulness": 5,
            "fine_grained_score": 4.666,
        },
        b: {
            "helpfulness": 1,
            "honesty": 2,
            "instruction_following": 2,
            "truthfulness": 1,
            "fine_grained_score": 1.5,
        },
    }
    assert (aspects.rating.scale_min, aspects.rating.scale_max) == (1, 5)
    assert overall.judge_id == "ultrafeedback/gpt-4/critique"
    assert overall.rating.scores == {a: {"overall_score": 8.5}, b: {"overall_score": 2}}
    assert overall.rating.scale_max == 10
    assert chunk.counts["na_ratings"] == 1
    assert {j["kind"] for j in chunk.judges.to_pylist()} == {"ai"}


def test_list_wrapped_annotations_of_the_raw_release(write_jsonl):
    row = json.loads(json.dumps(ROW))
    for comp in row["completions"]:
        comp["annotations"] = {k: [v] for k, v in comp["annotations"].items()}
    wrapped = read("ultrafeedback", write_jsonl([row])).judgments
    plain = read("ultrafeedback", write_jsonl([ROW], "b.jsonl")).judgments
    assert wrapped.column("rating").equals(plain.column("rating"))
    assert wrapped.column("judgment_id").equals(plain.column("judgment_id"))


def test_empty_response_drops_that_completion_only(write_jsonl):
    row = json.loads(json.dumps(ROW))
    row["completions"][1]["response"] = "  "
    chunk = read("ultrafeedback", write_jsonl([row]))
    assert chunk.counts["dropped_empty_response"] == 1
    assert [len(ids) for ids in chunk.judgments.column("response_ids").to_pylist()] == [1, 1]


def test_row_without_completions_is_dropped(write_jsonl):
    chunk = read("ultrafeedback", write_jsonl([dict(ROW, completions=[])]))
    assert chunk.counts["dropped_no_completions"] == 1
    assert chunk.prompts.num_rows == 0


def test_out_of_range_rating_names_the_aspect(write_jsonl):
    row = json.loads(json.dumps(ROW))
    row["completions"][1]["annotations"]["honesty"]["Rating"] = "7"
    with pytest.raises(InputError) as info:
        read("ultrafeedback", write_jsonl([row]))
    assert info.value.field == "completions[1].annotations.honesty.Rating"
    assert 'expected a number within 1..5, got "7"' in str(info.value)
