"""The HH-RLHF reader on hand-written transcripts and on the real 400-pair sample."""

from __future__ import annotations

import gzip
import json

import pytest

from preflab.errors import InputError
from preflab.formats.hh_rlhf import parse_transcript
from preflab.formats.registry import iter_read, read
from preflab.records import make_prompt_id, make_response_id

CHOSEN = "\n\nHuman: What is 2+2?\n\nAssistant: 4?\n\nHuman: Sure?\n\nAssistant: Yes, 4."
REJECTED = "\n\nHuman: What is 2+2?\n\nAssistant: 4?\n\nHuman: Sure?\n\nAssistant: No, 5."


def test_parse_transcript_maps_roles_and_strips_turns():
    assert parse_transcript(CHOSEN) == [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4?"},
        {"role": "user", "content": "Sure?"},
        {"role": "assistant", "content": "Yes, 4."},
    ]


@pytest.mark.parametrize(
    "text",
    [
        "no markers at all",
        "preamble\n\nHuman: hi\n\nAssistant: hello",
        "\n\nAssistant: hello",
        "\n\nHuman: hi",
        "\n\nHuman: hi\n\nHuman: again\n\nAssistant: hello",
    ],
)
def test_parse_transcript_rejects_malformed(text):
    with pytest.raises(ValueError):
        parse_transcript(text)


def test_one_pair_gives_exact_records(write_jsonl, records_of):
    path = write_jsonl([{"chosen": CHOSEN, "rejected": REJECTED}])
    chunk = read("hh-rlhf", path)
    messages = [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4?"},
        {"role": "user", "content": "Sure?"},
    ]
    pid = make_prompt_id(messages)
    chosen_id, rejected_id = make_response_id(pid, "Yes, 4."), make_response_id(pid, "No, 5.")
    assert chunk.prompts.to_pylist() == [
        {
            "prompt_id": pid,
            "messages": messages,
            "source": str(path),
            "tags": [],
            "constraints": None,
            "reference": None,
        }
    ]
    assert chunk.responses.select(
        ["response_id", "prompt_id", "content", "origin"]
    ).to_pylist() == [
        {"response_id": chosen_id, "prompt_id": pid, "content": "Yes, 4.", "origin": "import"},
        {"response_id": rejected_id, "prompt_id": pid, "content": "No, 5.", "origin": "import"},
    ]
    (judgment,) = records_of(chunk)["judgments"]
    assert judgment.kind == "pairwise"
    assert judgment.response_ids == (chosen_id, rejected_id)
    assert judgment.pairwise.model_dump() == {
        "scale": 2,
        "preferred": chosen_id,
        "strength": 1,
        "tie": False,
        "both_bad": False,
    }
    assert (judgment.judge_id, judgment.source, judgment.source_line) == ("hh-rlhf", str(path), 1)
    assert judgment.flags == ("order_unknown",)  # HH does not say which side was shown first
    assert chunk.judges.to_pylist()[0]["kind"] == "imported"
    assert chunk.counts == {"rows": 1, "prompts": 1, "responses": 2, "judgments": 1, "judges": 1}


@pytest.mark.parametrize(
    ("chosen", "rejected", "reason"),
    [
        (
            CHOSEN,
            "\n\nHuman: What is 3+3?\n\nAssistant: 4?\n\nHuman: Sure?\n\nAssistant: No.",
            "dropped_divergent",
        ),
        (CHOSEN, "garbage", "dropped_unparsable"),
        (CHOSEN, "\n\nHuman: What is 2+2?\n\nAssistant: 4?\n\nHuman: Sure?", "dropped_unparsable"),
        (CHOSEN, REJECTED + "\n\nHuman: and then?", "dropped_unparsable"),
        (CHOSEN, CHOSEN, "dropped_identical"),
        (CHOSEN, CHOSEN.replace("Yes, 4.", "Yes, 4.\r\n"), "dropped_identical"),
        (
            "\n\nHuman: hi\n\nAssistant:",
            "\n\nHuman: hi\n\nAssistant: hello",
            "dropped_empty_response",
        ),
        ("\n\nHuman: \n\nAssistant: a", "\n\nHuman: \n\nAssistant: b", "dropped_empty_turn"),
    ],
)
def test_rows_that_cannot_be_pairs_are_dropped_and_counted(write_jsonl, chosen, rejected, reason):
    path = write_jsonl(
        [{"chosen": chosen, "rejected": rejected}, {"chosen": CHOSEN, "rejected": REJECTED}]
    )
    chunk = read("hh-rlhf", path)
    assert chunk.counts[reason] == 1
    assert chunk.judgments.column("source_line").to_pylist() == [2]
    assert chunk.problems == []


def test_missing_field_is_an_error_naming_file_line_and_field(write_jsonl):
    path = write_jsonl(
        [{"chosen": CHOSEN, "rejected": REJECTED}, {"chosen": CHOSEN, "rejected": None}]
    )
    with pytest.raises(InputError) as info:
        read("hh-rlhf", path)
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), 2, "rejected")
    assert str(err).startswith(f'{path}, line 2, field "rejected": expected a string, got null')
    assert "skip_invalid" in str(err)


def test_real_sample_counts(hh_sample, records_of):
    chunk = read("hh-rlhf", hh_sample)
    # 400 lines; line 87's chosen transcript ends with an empty "Assistant:" turn.
    assert chunk.counts == {
        "rows": 400,
        "dropped_empty_response": 1,
        "prompts": 399,
        "responses": 798,
        "judgments": 399,
        "judges": 1,
    }
    records = records_of(chunk)
    assert len(records["judgments"]) == 399
    assert all(j.pairwise.preferred == j.response_ids[0] for j in records["judgments"])
    assert {p.messages[-1].role for p in records["prompts"]} == {"user"}


def test_real_sample_first_pair_matches_the_file(hh_sample):
    with gzip.open(hh_sample, "rt", encoding="utf-8") as f:
        first = json.loads(f.readline())
    chunk = read("hh-rlhf", hh_sample)
    chosen = parse_transcript(first["chosen"])
    assert chunk.prompts.column("messages")[0].as_py() == chosen[:-1]
    assert chunk.responses.column("content")[0].as_py() == chosen[-1]["content"]


def test_rereading_gives_the_same_ids(hh_sample):
    first, second = read("hh-rlhf", hh_sample), read("hh-rlhf", hh_sample)
    for name in ("prompts", "responses", "judgments"):
        assert getattr(first, name).equals(getattr(second, name))


def test_chunks_hold_each_prompt_once_and_add_up(hh_sample):
    chunks = list(iter_read("hh-rlhf", hh_sample, chunk_size=64))
    assert [c.counts["rows"] for c in chunks] == [64] * 6 + [16]
    ids = [pid for c in chunks for pid in c.prompts.column("prompt_id").to_pylist()]
    assert len(ids) == len(set(ids)) == 399
    assert sum(c.judgments.num_rows for c in chunks) == 399


@pytest.mark.parametrize("name", ["hh.jsonl", "hh.jsonl.bz2", "hh.jsonl.zst", "hh.jsonl.gz"])
def test_recompressed_sample_reads_to_the_same_ids(hh_sample, write_text, name):
    with gzip.open(hh_sample, "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    path = write_text(lines, name)
    copy = read("hh-rlhf", path)
    original = read("hh-rlhf", hh_sample)
    assert copy.judgments.column("judgment_id").equals(original.judgments.column("judgment_id"))
    assert copy.responses.column("response_id").equals(original.responses.column("response_id"))
    assert set(copy.prompts.column("source").to_pylist()) == {str(path)}


# Two Assistant turns in a row, as in 15 of the 2,354 real helpful-base test rows (the answer cut
# in two); texts made up.
SPLIT_CHOSEN = (
    "\n\nHuman: Name three composers.\n\nAssistant: Bach, Mozart\n\nAssistant: and Bartók."
)
SPLIT_REJECTED = "\n\nHuman: Name three composers.\n\nAssistant: I don't know any."


def test_consecutive_turns_are_dropped_by_default_with_file_and_line(write_jsonl):
    path = write_jsonl(
        [
            {"chosen": CHOSEN, "rejected": REJECTED},
            {"chosen": SPLIT_CHOSEN, "rejected": SPLIT_REJECTED},
        ]
    )
    chunk = read("hh-rlhf", path)
    assert chunk.counts["dropped_consecutive_turns"] == 1
    assert chunk.judgments.column("source_line").to_pylist() == [1]
    (note,) = chunk.notes
    assert (note.path, note.line, note.reason) == (str(path), 2, "dropped_consecutive_turns")
    assert "turns 2 and 3 are both Assistant: turns" in str(note)


def test_consecutive_turns_merge_joins_them_with_a_blank_line(write_jsonl):
    path = write_jsonl([{"chosen": SPLIT_CHOSEN, "rejected": SPLIT_REJECTED}])
    chunk = read("hh-rlhf", path, consecutive_turns="merge")
    assert chunk.counts["merged_consecutive_turns"] == 1
    assert "dropped_consecutive_turns" not in chunk.counts
    assert chunk.responses.column("content").to_pylist() == [
        "Bach, Mozart\n\nand Bartók.",
        "I don't know any.",
    ]
    assert [(n.line, n.reason) for n in chunk.notes] == [(1, "merged_consecutive_turns")]


def test_consecutive_turns_merge_in_the_shared_context_keeps_both_sides_aligned(write_jsonl):
    context = "\n\nHuman: Hi\n\nHuman: are you there?\n\nAssistant: Yes.\n\nHuman: Sure?"
    row = {"chosen": context + "\n\nAssistant: Quite.", "rejected": context + "\n\nAssistant: No."}
    chunk = read("hh-rlhf", write_jsonl([row]), consecutive_turns="merge")
    assert chunk.prompts.column("messages").to_pylist()[0][0] == {
        "role": "user",
        "content": "Hi\n\nare you there?",
    }
    assert chunk.counts["judgments"] == 1


def test_unknown_consecutive_turns_rule_is_a_usage_error(write_jsonl):
    from preflab.errors import UsageError

    with pytest.raises(UsageError, match="consecutive_turns must be drop or merge"):
        read("hh-rlhf", write_jsonl([{"chosen": CHOSEN, "rejected": REJECTED}]),
             consecutive_turns="keep")


def test_every_drop_is_noted_with_its_line(write_jsonl):
    rows = [
        {"chosen": CHOSEN, "rejected": CHOSEN},
        {"chosen": CHOSEN, "rejected": REJECTED},
        {"chosen": CHOSEN, "rejected": "garbage"},
    ]
    chunk = read("hh-rlhf", write_jsonl(rows), chunk_size=1)
    assert [(n.line, n.reason) for n in chunk.notes] == [
        (1, "dropped_identical"),
        (3, "dropped_unparsable"),
    ]


def _rows_with_repeats():
    """Pairs, drops and a merge, each repeated, interleaved (as a concatenated copy would be)."""
    good = {"chosen": CHOSEN, "rejected": REJECTED}
    other = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go."}
    empty = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant:"}
    nfc = {"chosen": "\n\nHuman: Hi\n\nAssistant: caf\u00e9", "rejected": "\n\nHuman: Hi\n\nAssistant: cafe\u0301"}
    split = {
        "chosen": "\n\nHuman: Hi\n\nAssistant: One\n\nAssistant: Two",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Three",
    }
    block = [good, other, empty, nfc, split]
    return [json.dumps(r) for _ in range(7) for r in block]


@pytest.mark.parametrize("rule", ["drop", "merge"])
def test_repeated_rows_read_exactly_as_without_the_memos(write_text, monkeypatch, rule):
    # every repeat is remembered (ids, drops, merges); the outcome must equal a plain reading
    import preflab.formats.hh_rlhf as hh
    from preflab.formats import chunk_builder, streams
    from preflab.formats.driver import concat_chunks

    path = write_text(_rows_with_repeats(), "rep.jsonl")
    remembered = concat_chunks(hh.read_hh_rlhf(path, chunk_size=4, consecutive_turns=rule))
    monkeypatch.setattr(hh, "ROW_MEMO_LIMIT", 0)  # memo given up at once
    monkeypatch.setattr(streams, "LINE_MEMO_LIMIT", 0)
    monkeypatch.setattr(chunk_builder, "ID_MEMO_LIMIT", -1)  # emptied at every chunk
    plain = concat_chunks(hh.read_hh_rlhf(path, chunk_size=4, consecutive_turns=rule))
    for name in ("prompts", "responses", "judgments", "judges"):
        assert getattr(plain, name).equals(getattr(remembered, name)), name
    assert plain.counts == remembered.counts
    assert [(n.line, n.reason, n.message) for n in plain.notes] == [
        (n.line, n.reason, n.message) for n in remembered.notes
    ]
    assert remembered.judgments.num_rows == 7 * (3 if rule == "merge" else 2)
    assert len(set(remembered.judgments.column("judgment_id").to_pylist())) == (
        remembered.judgments.num_rows
    )  # one judgment per line, each with its own id
    assert remembered.counts["dropped_empty_response"] == 7
    assert remembered.counts["dropped_identical"] == 7
    assert [n.line for n in remembered.notes if n.reason == "dropped_identical"] == list(
        range(4, 36, 5)
    )
