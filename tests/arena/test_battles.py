"""Battle tables: files in Chatbot Arena's spelling, record tables, and errors with locations."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from preflab.arena import battles_from_judgments, read_battles
from preflab.errors import FormatError, InputError, NotFoundError
from preflab.records import (
    Judgment,
    PairwiseValue,
    Response,
    records_to_table,
)

ARENA_ROWS = [
    {
        "model_a": "gpt-4",
        "model_b": "claude-2",
        "winner": "model_a",
        "judge": "u1",
        "anony": True,
        "question_id": "q1",
        "conversation_a": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello!"},
        ],
        "conversation_b": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hey."},
        ],
    },
    {
        "model_a": "claude-2",
        "model_b": "gpt-4",
        "winner": "tie (bothbad)",
        "judge": "u2",
        "anony": False,
        "question_id": "q2",
        "conversation_a": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "A"}],
        "conversation_b": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "B"}],
    },
]
EXPECTED = [
    {
        "model_a": "gpt-4",
        "model_b": "claude-2",
        "outcome": "a",
        "judge_id": "u1",
        "is_anonymous": True,
        "prompt_id": "q1",
        "response_a": "Hello!",
        "response_b": "Hey.",
    },
    {
        "model_a": "claude-2",
        "model_b": "gpt-4",
        "outcome": "both_bad",
        "judge_id": "u2",
        "is_anonymous": False,
        "prompt_id": "q2",
        "response_a": "A",
        "response_b": "B",
    },
]


def _rows(df: pl.DataFrame) -> list[dict]:
    return df.select(list(EXPECTED[0])).to_dicts()


def test_read_arena_jsonl_maps_winner_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ARENA_ROWS))
    assert _rows(read_battles(path)) == EXPECTED


def test_read_arena_json_array_gzipped(tmp_path: Path) -> None:
    path = tmp_path / "clean_battle.json.gz"
    path.write_bytes(gzip.compress(json.dumps(ARENA_ROWS).encode()))
    assert _rows(read_battles(path)) == EXPECTED


def test_read_parquet_and_csv_give_the_same_battles(tmp_path: Path) -> None:
    flat = pl.DataFrame(
        {
            "model_a": ["x", "y", "x"],
            "model_b": ["y", "x", "z"],
            "winner": ["model_b", "tie", "model_a"],
            "judge": ["j", "k", "j"],
        }
    )
    flat.write_parquet(tmp_path / "b.parquet")
    flat.write_csv(tmp_path / "b.csv")
    a = read_battles(tmp_path / "b.parquet")
    b = read_battles(tmp_path / "b.csv")
    assert a.to_dicts() == b.to_dicts()
    assert a["outcome"].to_list() == ["b", "tie", "a"]
    assert a["judge_id"].to_list() == ["j", "k", "j"]


def test_unknown_winner_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("model_a,model_b,winner\nx,y,model_a\nx,y,model_c\n")
    with pytest.raises(InputError) as err:
        read_battles(path)
    assert (err.value.path, err.value.line, err.value.field, err.value.value) == (
        str(path),
        3,
        "winner",
        "model_c",
    )
    assert 'bad.csv, line 3, field "winner"' in str(err.value)


def test_empty_model_name_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text(
        '{"model_a": "x", "model_b": "y", "outcome": "a"}\n'
        '{"model_a": "", "model_b": "y", "outcome": "b"}\n'
    )
    with pytest.raises(InputError) as err:
        read_battles(path)
    assert (err.value.line, err.value.field) == (2, "model_a")


def test_missing_columns_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"left": "x", "right": "y"}\n')
    with pytest.raises(FormatError, match="no 'model_a' column"):
        read_battles(path)
    other = tmp_path / "b.txt"
    other.write_text("x")
    with pytest.raises(FormatError, match="cannot tell the format"):
        read_battles(other)
    with pytest.raises(NotFoundError):
        read_battles(tmp_path / "absent.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"model_a": "x", \n')
    with pytest.raises(FormatError, match="could not parse"):
        read_battles(broken)


def _records() -> tuple[list[Response], list[Judgment]]:
    responses = [
        Response(prompt_id="p1", content="I am answer one", model="alpha"),
        Response(prompt_id="p1", content="Answer two", model="beta"),
        Response(prompt_id="p1", content="No model known", model=None),
    ]
    r1, r2, r3 = (r.response_id for r in responses)
    judgments = [
        Judgment(
            judgment_id="j1",
            prompt_id="p1",
            response_ids=(r1, r2),
            kind="pairwise",
            judge_id="h1",
            pairwise=PairwiseValue(preferred=r2),
        ),
        Judgment(
            judgment_id="j2",
            prompt_id="p1",
            response_ids=(r2, r1),
            kind="pairwise",
            judge_id="h2",
            pairwise=PairwiseValue(tie=True),
            flags=("non_anonymous",),
        ),
        Judgment(
            judgment_id="j3",
            prompt_id="p1",
            response_ids=(r1, r2),
            kind="pairwise",
            judge_id="ai",
            pairwise=PairwiseValue(both_bad=True),
        ),
        Judgment(
            judgment_id="j4",
            prompt_id="p1",
            response_ids=(r1, r2),
            kind="pairwise",
            judge_id="ai",
            pairwise=PairwiseValue(scale=5, preferred=r1, strength=2),
        ),
    ]
    return responses, judgments


def test_battles_from_judgments_use_shown_order_and_flags() -> None:
    responses, judgments = _records()
    battles = battles_from_judgments(
        records_to_table(judgments, Judgment), records_to_table(responses, Response)
    )
    got = battles.select("judgment_id", "model_a", "model_b", "outcome", "is_anonymous").rows()
    assert got == [
        ("j1", "alpha", "beta", "b", None),  # no anonymity flags in the table: unknown
        ("j2", "beta", "alpha", "tie", False),
        ("j3", "alpha", "beta", "both_bad", None),
        ("j4", "alpha", "beta", "a", None),
    ]
    assert battles["response_a"][0] == "I am answer one"


def test_positive_anonymous_flag_makes_unflagged_votes_non_anonymous() -> None:
    responses, judgments = _records()
    judgments[0] = judgments[0].model_copy(update={"flags": ("anonymous",)})
    battles = battles_from_judgments(
        records_to_table(judgments, Judgment), records_to_table(responses, Response)
    )
    assert battles["is_anonymous"].to_list() == [True, False, False, False]


def test_battles_from_the_arena_import_format(tmp_path: Path) -> None:
    from preflab.formats.registry import read

    path = tmp_path / "arena.jsonl"
    path.write_text(
        "".join(
            json.dumps(dict(r, tstamp=1_700_000_000 + n)) + "\n" for n, r in enumerate(ARENA_ROWS)
        )
    )
    chunk = read("arena", path)
    battles = battles_from_judgments(chunk.judgments, chunk.responses)
    got = battles.select("model_a", "model_b", "outcome", "is_anonymous").rows()
    assert got == [("gpt-4", "claude-2", "a", True), ("claude-2", "gpt-4", "both_bad", False)]


def test_battles_from_judgments_with_a_modelless_response_names_the_judgment() -> None:
    responses, judgments = _records()
    r1, _, r3 = (r.response_id for r in responses)
    bad = Judgment(
        judgment_id="j9",
        prompt_id="p1",
        response_ids=(r1, r3),
        kind="pairwise",
        judge_id="h1",
        pairwise=PairwiseValue(preferred=r3),
    )
    with pytest.raises(InputError, match="'j9'") as err:
        battles_from_judgments(
            records_to_table([*judgments, bad], Judgment),
            records_to_table(responses, Response),
        )
    assert err.value.field == "model"
