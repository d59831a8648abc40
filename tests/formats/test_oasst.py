"""The OpenAssistant trees reader: sibling ranks → rankings with the multi-turn path as prompt."""

from __future__ import annotations

import pytest

from preflab.errors import InputError
from preflab.formats.registry import read
from preflab.records import make_prompt_id, make_response_id


def msg(mid, role, text, rank=None, replies=(), **extra):
    return {
        "message_id": mid,
        "parent_id": None,
        "user_id": "u",
        "created_date": "2023-02-05",
        "text": text,
        "role": role,
        "lang": "en",
        "review_count": 3,
        "review_result": True,
        "deleted": False,
        "rank": rank,
        "synthetic": False,
        "model_name": None,
        "emojis": {},
        "replies": list(replies),
        **extra,
    }


TREE = {
    "message_tree_id": "t1",
    "tree_state": "ready_for_export",
    "prompt": msg(
        "m1",
        "prompter",
        "Name a prime.",
        replies=[
            msg(
                "m2",
                "assistant",
                "Two.",
                rank=1,
                replies=[
                    msg(
                        "m4",
                        "prompter",
                        "Another?",
                        rank=0,
                        replies=[
                            msg("m5", "assistant", "Three.", rank=0),
                            msg("m6", "assistant", "Nine.", rank=2),
                            msg("m7", "assistant", "Five.", rank=1),
                            msg("m8", "assistant", "Seven.", rank=None),
                        ],
                    ),
                ],
            ),
            msg("m3", "assistant", "Eleven.", rank=0),
            msg("m9", "assistant", "Gone.", rank=2, deleted=True),
        ],
    ),
    "origin": "oasst",
}


def test_tree_gives_one_ranking_per_ranked_prompter_node(write_jsonl, records_of):
    chunk = read("oasst", write_jsonl([TREE]))
    root = [{"role": "user", "content": "Name a prime."}]
    deep = [
        *root,
        {"role": "assistant", "content": "Two."},
        {"role": "user", "content": "Another?"},
    ]
    p1, p2 = make_prompt_id(root), make_prompt_id(deep)
    r = {t: make_response_id(p1, t) for t in ("Two.", "Eleven.")}
    r.update({t: make_response_id(p2, t) for t in ("Three.", "Nine.", "Five.")})
    assert chunk.prompts.select(["prompt_id", "messages", "tags"]).to_pylist() == [
        {"prompt_id": p1, "messages": root, "tags": ["lang:en"]},
        {"prompt_id": p2, "messages": deep, "tags": ["lang:en"]},
    ]
    first, second = records_of(chunk)["judgments"]
    assert first.kind == "ranking" and first.prompt_id == p1
    assert first.response_ids == (r["Two."], r["Eleven."])  # shown in reply order
    assert first.ranking == ((r["Eleven."],), (r["Two."],))  # best (rank 0) first
    assert second.ranking == ((r["Three."],), (r["Five."],), (r["Nine."],))
    assert chunk.counts["skipped_deleted"] == 1 and chunk.counts["ranked_nodes"] == 2
    assert {row["origin"] for row in chunk.responses.to_pylist()} == {"human"}


def test_equal_ranks_share_a_group(write_jsonl):
    tree = {
        "prompt": msg(
            "a",
            "prompter",
            "Q",
            replies=[
                msg("b", "assistant", "x", rank=0),
                msg("c", "assistant", "y", rank=0),
                msg("d", "assistant", "z", rank=1),
            ],
        )
    }
    chunk = read("oasst", write_jsonl([tree]))
    ids = chunk.responses.column("response_id").to_pylist()
    assert chunk.judgments.column("ranking").to_pylist() == [[[ids[0], ids[1]], [ids[2]]]]


def test_node_with_one_ranked_reply_gives_no_judgment(write_jsonl):
    tree = {"prompt": msg("a", "prompter", "Q", replies=[msg("b", "assistant", "x", rank=0)])}
    chunk = read("oasst", write_jsonl([tree]))
    assert chunk.judgments.num_rows == 0 and chunk.counts["skipped_unranked"] == 1


def test_root_message_per_line_is_accepted(write_jsonl):
    chunk = read("oasst", write_jsonl([TREE["prompt"]]))
    assert chunk.judgments.num_rows == 2


def test_bad_role_names_its_path_in_the_tree(write_jsonl):
    bad = {"prompt": msg("a", "prompter", "Q", replies=[msg("b", "robot", "x", rank=0)])}
    with pytest.raises(InputError) as info:
        read("oasst", write_jsonl([TREE, bad]))
    assert (info.value.line, info.value.field) == (2, "prompt.replies[0].role")
    assert "expected prompter or assistant" in str(info.value)


def _flatten(node, tree_id, parent=None):
    row = {k: v for k, v in node.items() if k not in ("replies", "emojis")}
    row.update(parent_id=parent, message_tree_id=tree_id, tree_state="ready_for_export")
    rows = [row]
    for reply in node["replies"]:
        rows += _flatten(reply, tree_id, node["message_id"])
    return rows


def test_flat_message_rows_give_the_same_judgments_as_the_tree(write_jsonl, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    other = {
        "prompt": msg(
            "x1",
            "prompter",
            "Q",
            replies=[msg("x2", "assistant", "a", rank=0), msg("x3", "assistant", "b", rank=1)],
        )
    }
    flat = _flatten(TREE["prompt"], "t1") + _flatten(other["prompt"], "t2")
    pq.write_table(pa.Table.from_pylist(flat), tmp_path / "flat.parquet")
    from_flat = read("oasst", tmp_path / "flat.parquet")
    from_trees = read("oasst", write_jsonl([TREE, other]))
    assert from_flat.counts["rows"] == 2  # one row per assembled tree
    assert from_flat.judgments.column("ranking").equals(from_trees.judgments.column("ranking"))
    assert from_flat.judgments.column("source_line").to_pylist() == [1, 1, 10]


def test_flat_rows_of_a_tree_must_be_contiguous(write_jsonl):
    from preflab.errors import FormatError

    rows = _flatten(TREE["prompt"], "t1")
    rows = rows[:2] + [dict(rows[0], message_id="y", message_tree_id="t2")] + rows[2:]
    with pytest.raises(FormatError, match="not contiguous"):
        read("oasst", write_jsonl(rows))


def test_repeated_tree_id_first_occurrence_wins_and_the_repeat_is_noted(write_jsonl):
    changed = {**TREE, "prompt": msg(
        "m1", "prompter", "Name a prime.",
        replies=[msg("z2", "assistant", "Four.", rank=0), msg("z3", "assistant", "Six.", rank=1)],
    )}  # fmt: skip
    path = write_jsonl([TREE, changed, TREE])
    once = read("oasst", write_jsonl([TREE], name="once.jsonl"))
    chunk = read("oasst", path, chunk_size=1)
    assert chunk.counts["skipped_repeated_source"] == 2
    assert chunk.judgments.column("ranking").equals(once.judgments.column("ranking"))
    assert set(chunk.judgments.column("source_line").to_pylist()) == {1}
    notes = [n for n in chunk.notes if n.reason == "skipped_repeated_source"]
    assert [(n.path, n.line, n.field) for n in notes] == [
        (str(path), 2, "message_tree_id"),
        (str(path), 3, "message_tree_id"),
    ]
    assert "message tree 't1' was already read at line 1" in notes[0].message


def test_an_invalid_first_copy_does_not_claim_the_tree(write_jsonl):
    bad = {**TREE, "prompt": {**TREE["prompt"], "role": "robot"}}
    chunk = read("oasst", write_jsonl([bad, TREE]), skip_invalid=True)
    assert chunk.counts["skipped_invalid"] == 1
    assert "skipped_repeated_source" not in chunk.counts
    assert set(chunk.judgments.column("source_line").to_pylist()) == {2}
