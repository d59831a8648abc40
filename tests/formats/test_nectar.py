"""The Nectar reader on rows in the published layout (berkeley-nest/Nectar ``rlaif.parquet``).

The rows are written here from the dataset's features (prompt, answers {answer, model, rank},
turns, num_responses, source, good_natured); their texts are made up.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from preflab.derive import derive
from preflab.errors import InputError, UsageError
from preflab.formats.registry import read
from preflab.records import make_prompt_id, make_response_id

MODELS = ["gpt-4", "gpt-3.5-turbo", "llama-2-7b-chat", "mistral-7b-instruct",
          "gpt-3.5-turbo-instruct", "anthropic", "alpaca-13b"]  # fmt: skip


def nectar_row(**overrides):
    row = {
        "prompt": "\n\nHuman: Name a prime number.\n\nAssistant: ",
        "answers": [
            {"answer": f"Answer {i}.", "model": MODELS[i], "rank": float(i + 1)}
            for i in range(7)
        ],
        "turns": 1,
        "num_responses": 7,
        "source": ["sharegpt"],
        "good_natured": True,
    }
    row.update(overrides)
    return row


def test_row_gives_one_seven_way_ranking_best_first(write_jsonl, records_of):
    chunk = read("nectar", write_jsonl([nectar_row()]))
    pid = make_prompt_id([{"role": "user", "content": "Name a prime number."}])
    ids = [make_response_id(pid, f"Answer {i}.", MODELS[i]) for i in range(7)]
    records = records_of(chunk)
    (prompt,) = records["prompts"]
    assert (prompt.prompt_id, prompt.tags) == (pid, ("source:sharegpt", "good_natured:true"))
    assert [(r.response_id, r.model, r.origin) for r in records["responses"]] == [
        (ids[i], MODELS[i], "model") for i in range(7)
    ]
    (judgment,) = records["judgments"]
    assert (judgment.kind, judgment.judge_id) == ("ranking", "nectar/gpt-4")
    assert judgment.ranking == tuple((rid,) for rid in ids)
    assert judgment.flags == ("order_unknown",)
    (judge,) = records["judges"]
    assert (judge.kind, judge.model) == ("ai", "gpt-4")


def test_ranks_are_read_not_the_list_order(write_jsonl):
    answers = [
        {"answer": "Worst.", "model": "m1", "rank": 3.0},
        {"answer": "Best.", "model": "m2", "rank": 1.0},
        {"answer": "Middle.", "model": "m3", "rank": 2.0},
    ]
    chunk = read("nectar", write_jsonl([nectar_row(answers=answers, num_responses=3)]))
    result = derive(chunk.prompts, chunk.responses, chunk.judgments, ranking_rule="adjacent")
    pairs = result.pairs.select(["chosen", "rejected"]).to_pylist()
    assert sorted((p["chosen"], p["rejected"]) for p in pairs) == [
        ("Best.", "Middle."),
        ("Middle.", "Worst."),
    ]


def test_multi_turn_prompt_keeps_its_context(write_jsonl):
    prompt = (
        "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: Name a prime.\n\nAssistant:"
    )
    chunk = read("nectar", write_jsonl([nectar_row(prompt=prompt, turns=2)]))
    assert chunk.prompts.column("messages").to_pylist() == [
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Name a prime."},
        ]
    ]


def test_equal_ranks_share_a_group(write_jsonl, records_of):
    answers = [
        {"answer": "A.", "model": "m1", "rank": 1.0},
        {"answer": "B.", "model": "m2", "rank": 2.0},
        {"answer": "C.", "model": "m3", "rank": 2.0},
    ]
    chunk = read("nectar", write_jsonl([nectar_row(answers=answers)]))
    (judgment,) = records_of(chunk)["judgments"]
    assert [len(group) for group in judgment.ranking] == [1, 2]


def test_published_parquet_layout_is_read(tmp_path):
    path = tmp_path / "rlaif.parquet"
    rows = [nectar_row(), nectar_row(prompt="\n\nHuman: Bye\n\nAssistant:")]
    pq.write_table(pa.Table.from_pylist(rows), path)
    chunk = read("nectar", path)
    assert (chunk.counts["rows"], chunk.counts["judgments"], chunk.counts["prompts"]) == (2, 2, 2)


def test_consecutive_human_turns_drop_by_default_and_merge_on_request(write_jsonl):
    prompt = "\n\nHuman: First part.\n\nHuman: Second part.\n\nAssistant:"
    path = write_jsonl([nectar_row(prompt=prompt)])
    dropped = read("nectar", path)
    assert (dropped.counts.get("judgments"), dropped.counts["dropped_consecutive_turns"]) == (0, 1)
    assert [(n.line, n.field) for n in dropped.notes] == [(1, "prompt")]
    merged = read("nectar", path, consecutive_turns="merge")
    assert merged.counts["merged_consecutive_turns"] == 1
    assert merged.prompts.column("messages").to_pylist() == [
        [{"role": "user", "content": "First part.\n\nSecond part."}]
    ]


def test_answer_rules_are_counted_and_located(write_jsonl):
    answers = [
        {"answer": "A.", "model": "m1", "rank": 1.0},
        {"answer": "  ", "model": "m2", "rank": 2.0},
        {"answer": "A.", "model": "m1", "rank": 3.0},
        {"answer": "D.", "model": "m4", "rank": None},
        {"answer": "E.", "model": "m5", "rank": 5.0},
    ]
    chunk = read("nectar", write_jsonl([nectar_row(answers=answers)]))
    assert {k: chunk.counts[k] for k in ("dropped_empty_answer", "dropped_duplicate_answer",
                                         "unranked_answers", "judgments")} == {
        "dropped_empty_answer": 1, "dropped_duplicate_answer": 1, "unranked_answers": 1,
        "judgments": 1,
    }  # fmt: skip
    assert [(n.line, n.field) for n in chunk.notes] == [
        (1, "answers[1].answer"),
        (1, "answers[2].answer"),
        (1, "answers[3]"),
    ]


def test_row_with_one_usable_answer_is_dropped(write_jsonl):
    answers = [
        {"answer": "A.", "model": "m1", "rank": 1.0},
        {"answer": "", "model": "m2", "rank": 2.0},
    ]
    chunk = read("nectar", write_jsonl([nectar_row(answers=answers)]))
    assert (chunk.counts["dropped_too_few_answers"], chunk.prompts.num_rows) == (1, 0)
    assert [n.reason for n in chunk.notes] == ["dropped_too_few_answers"]


def test_prompt_that_is_not_a_transcript_is_dropped_as_unparsable(write_jsonl):
    chunk = read("nectar", write_jsonl([nectar_row(prompt="Name a prime number.")]))
    assert chunk.counts["dropped_unparsable"] == 1
    (note,) = chunk.notes
    assert "text before the first Human:/Assistant: marker" in note.message


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"answers": None}, "answers"),
        ({"answers": [{"answer": "A.", "model": "m", "rank": 0}]}, "answers[0].rank"),
        ({"good_natured": "yes"}, "good_natured"),
        ({"source": [3]}, "source[0]"),
    ],
)
def test_bad_fields_are_named_with_file_and_line(write_jsonl, override, field):
    path = write_jsonl([nectar_row(), nectar_row(**override)])
    with pytest.raises(InputError) as err:
        read("nectar", path)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 2, field)


def test_unknown_consecutive_turns_rule_is_a_usage_error(write_jsonl):
    with pytest.raises(UsageError, match="consecutive_turns must be drop or merge"):
        read("nectar", write_jsonl([nectar_row()]), consecutive_turns="join")
