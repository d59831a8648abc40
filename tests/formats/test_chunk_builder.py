"""The column builder: same rules as the records, rollback of a bad row, ids remembered."""

from __future__ import annotations

import pytest

from preflab.formats.chunk_builder import ChunkBuilder, make_judgment_id
from preflab.formats.fields import RowError
from preflab.records import Prompt, Response, table_to_records


def _pair(b, prompt="Q", a="A", c="C"):
    pid = b.add_prompt([{"role": "user", "content": prompt}])
    ra, rc = b.add_response(pid, a), b.add_response(pid, c)
    b.add_judge("j", "imported")
    return b.add_judgment(
        prompt_id=pid,
        response_ids=[ra, rc],
        kind="pairwise",
        judge_id="j",
        pairwise={"scale": 2, "preferred": ra, "strength": 1, "tie": False, "both_bad": False},
    )


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([], "prompt"),
        ([{"role": "user", "content": " "}], "prompt[0].content"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "prompt"),
    ],
)
def test_prompt_rules_match_the_record(messages, field):
    with pytest.raises(RowError) as info:
        ChunkBuilder(path="f", format="x").add_prompt(messages)
    assert info.value.field == field
    with pytest.raises(ValueError):
        Prompt(messages=messages)


def test_ids_match_the_records_own():
    b = ChunkBuilder(path="f", format="x")
    pid = b.add_prompt([{"role": "user", "content": " Q "}])
    rid = b.add_response(pid, "A", model="m")
    assert pid == Prompt(messages=[{"role": "user", "content": "Q"}]).prompt_id
    assert rid == Response(prompt_id=pid, content="A", model="m").response_id


def test_rollback_removes_the_rows_records_and_forgets_their_ids():
    b = ChunkBuilder(path="f", format="x")
    b.begin_row(1)
    _pair(b)
    b.begin_row(2)
    _pair(b, prompt="Q2")
    b.rollback_row()
    chunk = b.flush()
    assert chunk.prompts.num_rows == 1 and chunk.judgments.num_rows == 1
    b.begin_row(3)
    _pair(b, prompt="Q2")  # forgotten by the rollback, so emitted now
    assert b.flush().prompts.num_rows == 1


def test_records_are_emitted_once_across_chunks():
    b = ChunkBuilder(path="f", format="x")
    b.begin_row(1)
    _pair(b)
    first = b.flush()
    b.begin_row(2)
    _pair(b)
    second = b.flush()
    assert (first.prompts.num_rows, second.prompts.num_rows) == (1, 0)
    assert (first.judges.num_rows, second.judges.num_rows) == (1, 0)
    assert second.judgments.num_rows == 1  # another line: another judgment


def test_mixed_kinds_keep_values_in_their_rows():
    b = ChunkBuilder(path="f", format="x")
    b.begin_row(1)
    pid = b.add_prompt([{"role": "user", "content": "Q"}])
    r1, r2 = b.add_response(pid, "A"), b.add_response(pid, "B")
    b.add_judge("j", "imported")
    b.add_judgment(
        prompt_id=pid,
        response_ids=[r1],
        kind="binary",
        judge_id="j",
        binary={"response_id": r1, "label": True, "reasons": []},
    )
    b.add_judgment(
        prompt_id=pid, response_ids=[r1, r2], kind="ranking", judge_id="j", ranking=[[r2], [r1]]
    )
    b.add_judgment(
        prompt_id=pid,
        response_ids=[r2],
        kind="binary",
        judge_id="j",
        binary={"response_id": r2, "label": False, "reasons": []},
        id_extra=2,
    )
    from preflab.records import Judgment

    judgments = table_to_records(b.flush().judgments, Judgment)
    assert [j.kind for j in judgments] == ["binary", "ranking", "binary"]
    assert judgments[1].ranking == ((r2,), (r1,))
    assert (judgments[0].binary.label, judgments[2].binary.label) == (True, False)


def test_same_response_twice_is_refused():
    b = ChunkBuilder(path="f", format="x")
    with pytest.raises(RowError, match="twice"):
        b.add_judgment(
            prompt_id="p", response_ids=["r", "r"], kind="ranking", judge_id="j", ranking=[["r"]]
        )


def test_judgment_id_depends_on_position_and_content_not_path():
    base = make_judgment_id("f", 1, "j", "p", ["a", "b"], {"preferred": "a"})
    assert base == make_judgment_id("f", 1, "j", "p", ["a", "b"], {"preferred": "a"})
    assert base != make_judgment_id("f", 2, "j", "p", ["a", "b"], {"preferred": "a"})
    assert base != make_judgment_id("f", 1, "j", "p", ["b", "a"], {"preferred": "a"})
    assert base != make_judgment_id("f", 1, "j", "p", ["a", "b"], {"preferred": "b"})


def test_rollback_also_undoes_the_rows_counts():
    b = ChunkBuilder(path="f", format="x")
    b.begin_row(1)
    b.count("na_ratings")
    b.begin_row(2)
    b.count("na_ratings")
    b.drop("identical")
    b.rollback_row()
    assert b.counts == {"na_ratings": 1}


def test_remembered_ids_are_bounded():
    b = ChunkBuilder(path="f", format="x", seen_limit=1)
    b.begin_row(1)
    _pair(b)
    assert b.flush().responses.num_rows == 2
    b.begin_row(2)
    _pair(b)  # 2 response ids > limit 1: forgotten at the last flush, emitted again
    again = b.flush()
    assert again.responses.num_rows == 2
    assert again.prompts.num_rows == 0  # 1 prompt id is within the limit: still remembered


def test_drop_and_note_record_file_line_and_reason_and_reach_the_chunk():
    b = ChunkBuilder(path="data.jsonl", format="x")
    b.begin_row(3)
    b.drop("identical", "both answers are the same", field="rejected")
    b.begin_row(4)
    b.note("merged_consecutive_turns", "joined")
    chunk = b.flush()
    assert [(n.path, n.line, n.field, n.reason) for n in chunk.notes] == [
        ("data.jsonl", 3, "rejected", "dropped_identical"),
        ("data.jsonl", 4, None, "merged_consecutive_turns"),
    ]
    assert str(chunk.notes[0]) == 'data.jsonl, line 3, field "rejected": both answers are the same'
    assert (chunk.counts["dropped_identical"], chunk.counts["merged_consecutive_turns"]) == (1, 1)
    assert b.flush().notes == []  # a new chunk starts without the old notes


def test_rollback_removes_the_rows_notes_and_gives_its_source_claim_up():
    b = ChunkBuilder(path="f", format="x")
    b.begin_row(1)
    assert b.claim_source("tree", "t1") is None
    b.note("skipped_unranked", "m1")
    b.rollback_row()
    assert b.notes == [] and "skipped_unranked" not in b.counts
    b.begin_row(2)
    assert b.claim_source("tree", "t1") is None  # the rolled-back row did not keep it
    b.flush()
    b.begin_row(9)
    assert b.claim_source("tree", "t1") == 2  # remembered across chunks: the first line
    assert b.claim_source("post", "t1") is None  # kinds are apart
