"""Export folders: one per split, all-or-nothing, never over an existing folder by accident."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from preflab.errors import UsageError
from preflab.formats.writers import split_tables, write_export


@pytest.fixture
def splits():
    return {"train": pa.table({"x": [1, 2], "s": ["é", "b"]}), "test": pa.table({"x": [3], "s": ["c"]})}


def test_parquet_export_writes_one_folder_per_split(splits, tmp_path):
    files = write_export(splits, tmp_path / "out", card="# card\n")
    assert files == {"train": "train/data.parquet", "test": "test/data.parquet"}
    assert pq.read_table(tmp_path / "out" / "train" / "data.parquet").column("x").to_pylist() == [1, 2]
    assert (tmp_path / "out" / "README.md").read_text() == "# card\n"


def test_jsonl_export_is_utf8_json_lines(splits, tmp_path):
    write_export(splits, tmp_path / "out", format="jsonl")
    lines = (tmp_path / "out" / "train" / "data.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"x": 1, "s": "é"}, {"x": 2, "s": "b"}]


def test_hf_export_loads_from_disk(splits, tmp_path):
    import datasets

    write_export(splits, tmp_path / "out", format="hf")
    ds = datasets.load_from_disk(str(tmp_path / "out"))
    assert (ds["train"]["x"], ds["test"]["x"]) == ([1, 2], [3])


def test_existing_folder_is_refused_and_left_untouched(splits, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UsageError) as info:
        write_export(splits, out)
    assert "--overwrite" in str(info.value)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_overwrite_replaces_the_whole_folder(splits, tmp_path):
    out = tmp_path / "out"
    write_export(splits, out)
    write_export({"only": pa.table({"x": [9]})}, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["only"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failure_midway_leaves_nothing_behind(splits, tmp_path):
    def broken_card(files, digest):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_export(splits, tmp_path / "out", card=broken_card)
    assert list(tmp_path.iterdir()) == []


def test_failure_on_overwrite_keeps_the_previous_export(splits, tmp_path):
    out = tmp_path / "out"
    write_export(splits, out)

    def broken_card(files, digest):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_export({"other": pa.table({"x": [0]})}, out, card=broken_card, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["test", "train"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("name", ["../evil", "", ".hidden", "a/b"])
def test_split_names_that_are_not_folder_names_are_refused(tmp_path, name):
    with pytest.raises(UsageError):
        write_export({name: pa.table({"x": [1]})}, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_side_tables_go_under_their_own_folder(splits, tmp_path):
    write_export(splits, tmp_path / "out", extras={"ties": {"train": pa.table({"y": [1]})}})
    assert pq.read_table(tmp_path / "out" / "ties" / "train" / "data.parquet").num_rows == 1


def test_push_to_hub_needs_the_hf_format(splits, tmp_path):
    with pytest.raises(UsageError):
        write_export(splits, tmp_path / "out", push_to_hub="me/data")


def test_split_tables_groups_rows_and_fills_missing_split():
    t = pa.table({"x": [1, 2, 3, 4], "split": ["a", None, "b", "a"]})
    out = split_tables(t)
    assert {k: v.column("x").to_pylist() for k, v in out.items()} == {"a": [1, 4], "train": [2], "b": [3]}


def test_unknown_file_format_is_a_usage_error(splits, tmp_path):
    with pytest.raises(UsageError) as info:
        write_export(splits, tmp_path / "out", format="csv")  # type: ignore[arg-type]
    assert info.value.field == "format"
    assert list(tmp_path.iterdir()) == []
