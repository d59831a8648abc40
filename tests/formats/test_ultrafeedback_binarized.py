"""The UltraFeedback-binarized reader on rows in the published layout (HuggingFaceH4/ultrafeedback_binarized).

Rows are written here with the dataset card's columns (``prompt``, ``prompt_id``, ``chosen``,
``rejected``, ``messages``, ``score_chosen``, ``score_rejected``) as Parquet, the Hub's file
type; their texts are made up. The real-file test is tests/formats/test_real_ultrafeedback_binarized.py.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from preflab.derive import derive
from preflab.errors import InputError
from preflab.formats.registry import read
from preflab.records import make_prompt_id, make_response_id

MESSAGES = pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))
SCHEMA = pa.schema([
    ("prompt", pa.string()), ("prompt_id", pa.string()), ("chosen", MESSAGES),
    ("rejected", MESSAGES), ("messages", MESSAGES), ("score_chosen", pa.float64()),
    ("score_rejected", pa.float64()),
])  # fmt: skip


def row(prompt="Name a prime.", chosen="7 is prime.", rejected="8 is prime.", sc=8.5, sr=4.0, **kw):
    conv_c = [{"content": prompt, "role": "user"}, {"content": chosen, "role": "assistant"}]
    conv_r = [{"content": prompt, "role": "user"}, {"content": rejected, "role": "assistant"}]
    return {"prompt": prompt, "prompt_id": "ab12", "chosen": conv_c, "rejected": conv_r,
            "messages": conv_c, "score_chosen": sc, "score_rejected": sr, **kw}


@pytest.fixture
def write_parquet(tmp_path):
    def write(rows, name="test_prefs-00000-of-00001.parquet"):
        path = tmp_path / name
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
        return path

    return write


def test_a_row_becomes_one_rating_judgment_of_both_answers(write_parquet, records_of):
    chunk = read("ultrafeedback-binarized", write_parquet([row()]))
    recs = records_of(chunk)
    pid = make_prompt_id([{"role": "user", "content": "Name a prime."}])
    chosen, rejected = make_response_id(pid, "7 is prime."), make_response_id(pid, "8 is prime.")
    (j,) = recs["judgments"]
    assert (j.kind.value, j.judge_id, list(j.response_ids)) == ("rating", "ultrafeedback-binarized/gpt-4",
                                                          [chosen, rejected])
    assert j.rating.scores == {chosen: {"score": 8.5}, rejected: {"score": 4.0}}
    assert (j.rating.scale_min, j.rating.scale_max) == (1.0, 10.0)
    assert list(recs["prompts"][0].tags) == ["prompt_id:ab12"]


def test_derive_gives_back_the_published_pair_with_the_score_margin(write_parquet):
    chunk = read("ultrafeedback-binarized", write_parquet([row(), row(prompt="Q2", sc=5.0, sr=5.0)]))
    assert chunk.counts["equal_scores"] == 1
    result = derive(chunk.prompts, chunk.responses, chunk.judgments)
    pairs = result.pairs.select(["chosen", "rejected", "margin"]).to_pylist()
    assert pairs == [{"chosen": "7 is prime.", "rejected": "8 is prime.", "margin": 4.5}]
    assert result.counts["rating_no_lower_score"] == 1


def test_the_ultrafeedback_reader_recognises_the_binarized_layout(write_parquet):
    path = write_parquet([row()])
    assert read("ultrafeedback", path).judgments.column("rating").to_pylist() == (
        read("ultrafeedback-binarized", path).judgments.column("rating").to_pylist())


def test_identical_and_empty_answers_are_dropped_and_counted(write_parquet):
    chunk = read("ultrafeedback-binarized",
                 write_parquet([row(rejected="7 is prime. "), row(chosen=" "), row()]))
    assert (chunk.counts["dropped_identical"], chunk.counts["dropped_empty_response"]) == (1, 1)
    assert [n.line for n in chunk.notes] == [1, 2]
    assert chunk.judgments.num_rows == 1


def test_a_score_out_of_range_names_the_row_and_field(write_parquet):
    with pytest.raises(InputError) as info:
        read("ultrafeedback-binarized", write_parquet([row(), row(sr=11.0)]))
    assert (info.value.line, info.value.field) == (2, "score_rejected")
