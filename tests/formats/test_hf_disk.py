"""Hugging Face datasets saved with save_to_disk."""

from __future__ import annotations

import pytest

datasets = pytest.importorskip("datasets")  # the hf extra; installed in development and CI

from preflab.errors import NotFoundError, UsageError  # noqa: E402
from preflab.formats.registry import read  # noqa: E402

ROWS = {"prompt": ["Q1", "Q2", "Q3"], "chosen": ["A1", "A2", "A3"], "rejected": ["B1", "B2", "B3"]}


def test_dataset_dict_reads_every_split_with_its_source(tmp_path, records_of):
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({k: v[:2] for k, v in ROWS.items()}),
            "test": datasets.Dataset.from_dict({k: v[2:] for k, v in ROWS.items()}),
        }
    )
    dd.save_to_disk(str(tmp_path / "ds"))
    chunk = read("hf-disk", tmp_path / "ds")
    records = records_of(chunk)
    assert [(j.source, j.source_line) for j in records["judgments"]] == [
        (f"{tmp_path / 'ds'}#train", 1),
        (f"{tmp_path / 'ds'}#train", 2),
        (f"{tmp_path / 'ds'}#test", 3),
    ]
    only_test = read("hf-disk", tmp_path / "ds", split="test")
    assert only_test.prompts.column("messages").to_pylist() == [[{"role": "user", "content": "Q3"}]]


def test_single_dataset_with_another_readers_rows(tmp_path, hh_sample):
    import gzip
    import json

    with gzip.open(hh_sample, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(20), f, strict=False)]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "hh"))
    from_disk = read("hf-disk", tmp_path / "hh", rows="hh-rlhf")
    from_file = read("hh-rlhf", hh_sample)
    assert from_disk.judgments.num_rows == 20
    assert (
        from_disk.judgments.column("judgment_id").to_pylist()
        == from_file.judgments.column("judgment_id").to_pylist()[:20]
    )


def test_bad_options_and_paths(tmp_path):
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(UsageError, match="holds a single dataset"):
        read("hf-disk", tmp_path / "ds", split="train")
    with pytest.raises(UsageError, match="rows must be"):
        read("hf-disk", tmp_path / "ds", rows="nope")
    with pytest.raises(NotFoundError):
        read("hf-disk", tmp_path / "missing")


def test_pku_saferlhf_and_nectar_rows_from_a_saved_dataset(tmp_path):
    pku = {
        "prompt": "Is it safe to mix bleach and ammonia?", "response_0": "Yes, go ahead.",
        "response_1": "No: it releases toxic chloramine gas.", "is_response_0_safe": False,
        "is_response_1_safe": True, "better_response_id": 1, "safer_response_id": 1,
    }  # fmt: skip
    datasets.Dataset.from_list([pku]).save_to_disk(str(tmp_path / "pku"))
    chunk = read("hf-disk", tmp_path / "pku", rows="pku-saferlhf")
    assert sorted(chunk.judgments.column("kind").to_pylist()) == [
        "binary", "binary", "pairwise", "pairwise",
    ]  # fmt: skip
    nectar = {
        "prompt": "\n\nHuman: Say hi.\n\nAssistant:", "turns": 1, "num_responses": 2,
        "answers": [{"answer": "Hi!", "model": "gpt-4", "rank": 1.0},
                    {"answer": "No.", "model": "llama-2-7b-chat", "rank": 2.0}],
        "source": ["sharegpt"], "good_natured": True,
    }  # fmt: skip
    datasets.Dataset.from_list([nectar]).save_to_disk(str(tmp_path / "nectar"))
    chunk = read("hf-disk", tmp_path / "nectar", rows="nectar")
    assert chunk.judgments.column("kind").to_pylist() == ["ranking"]
