"""The SHP reader on rows built from the published field list (stanfordnlp/SHP)."""

from __future__ import annotations

import json

import pytest

from preflab.errors import InputError
from preflab.formats.registry import read
from preflab.records import make_prompt_id, make_response_id


def shp_row(**overrides):
    row = {
        "post_id": "himc90",
        "domain": "askculinary_train",
        "upvote_ratio": 0.97,
        "history": "Why does pasta water need salt?",
        "c_root_id_A": "fu3xa0u",
        "c_root_id_B": "fu3xbbb",
        "created_at_utc_A": 1593541321,
        "created_at_utc_B": 1593541500,
        "score_A": 52,
        "score_B": 13,
        "human_ref_A": "Salt seasons the pasta from inside.",
        "human_ref_B": "It boils faster.",
        "labels": 1,
        "seconds_difference": 179.0,
        "score_ratio": 4.0,
    }
    row.update(overrides)
    return row


def test_row_gives_exact_records(write_jsonl, records_of):
    path = write_jsonl([shp_row()])
    chunk = read("shp", path)
    pid = make_prompt_id([{"role": "user", "content": "Why does pasta water need salt?"}])
    id_a = make_response_id(pid, "Salt seasons the pasta from inside.")
    id_b = make_response_id(pid, "It boils faster.")
    assert chunk.prompts.select(["prompt_id", "tags"]).to_pylist() == [
        {"prompt_id": pid, "tags": ["domain:askculinary_train"]}
    ]
    responses = chunk.responses.to_pylist()
    assert [(r["response_id"], r["origin"], json.loads(r["params"])) for r in responses] == [
        (id_a, "human", {"comment_id": "fu3xa0u", "score": 52}),
        (id_b, "human", {"comment_id": "fu3xbbb", "score": 13}),
    ]
    (j,) = records_of(chunk)["judgments"]
    assert j.response_ids == (id_a, id_b)
    assert (j.pairwise.preferred, j.pairwise.scale, j.judge_id) == (id_a, 2, "shp")
    assert j.comment == "score_ratio=4"


def test_label_zero_prefers_b(write_jsonl):
    chunk = read("shp", write_jsonl([shp_row(labels=0)]))
    j = chunk.judgments.to_pylist()[0]
    assert j["pairwise"]["preferred"] == j["response_ids"][1]


def test_identical_comments_are_dropped(write_jsonl):
    chunk = read("shp", write_jsonl([shp_row(human_ref_B="Salt seasons the pasta from inside. ")]))
    assert chunk.counts["dropped_identical"] == 1 and chunk.judgments.num_rows == 0


@pytest.mark.parametrize(
    ("override", "field", "text"),
    [
        ({"labels": 2}, "labels", "expected 1 (A preferred) or 0 (B preferred), got 2"),
        ({"labels": None}, "labels", "expected a number, got null"),
        ({"history": ""}, "history", "expected a non-empty string"),
        ({"human_ref_A": 5}, "human_ref_A", "expected a string, got a number 5"),
        ({"score_A": "many"}, "score_A", 'expected a number, got "many"'),
    ],
)
def test_bad_fields_are_named(write_jsonl, override, field, text):
    path = write_jsonl([shp_row(), shp_row(**override)])
    with pytest.raises(InputError) as info:
        read("shp", path)
    assert (info.value.line, info.value.field) == (2, field)
    assert text in str(info.value)


def test_repeated_comparison_first_occurrence_wins(write_jsonl):
    rows = [
        shp_row(),
        shp_row(labels=0),  # the same post and comments again, other label
        shp_row(c_root_id_A="fu3xbbb", c_root_id_B="fu3xa0u",
                human_ref_A="It boils faster.", human_ref_B="Salt seasons the pasta from inside.",
                labels=0),  # the same comparison, sides swapped
        shp_row(c_root_id_B="other", human_ref_B="Tradition."),  # another comparison of the post
    ]  # fmt: skip
    path = write_jsonl(rows)
    chunk = read("shp", path)
    assert chunk.counts["skipped_repeated_source"] == 2
    assert chunk.judgments.column("source_line").to_pylist() == [1, 4]
    assert [(n.line, n.field) for n in chunk.notes] == [(2, "post_id"), (3, "post_id")]
    assert "post 'himc90', comments 'fu3xa0u' and 'fu3xbbb' were already compared at line 1" in (
        chunk.notes[0].message
    )
