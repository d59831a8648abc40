"""Opening inputs: compressions by magic bytes, containers by name, bad bytes."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from preflab.errors import FormatError, InputError, NotFoundError
from preflab.formats.registry import open_text, read
from preflab.formats.streams import detect_container, iter_rows

LINES = ['{"a": 1}', '{"a": "é ✓"}', "", '{"a": 3}']


@pytest.mark.parametrize("name", ["x.jsonl", "x.jsonl.gz", "x.jsonl.bz2", "x.jsonl.zst"])
def test_open_text_reads_every_compression(write_text, name):
    path = write_text(LINES, name)
    with open_text(path) as f:
        assert [line.rstrip("\n") for line in f] == LINES


def test_open_text_detects_compression_by_content_not_name(tmp_path, write_text):
    gz = write_text(LINES, "x.jsonl.gz")
    misnamed = tmp_path / "plain-looking.jsonl"
    gz.rename(misnamed)
    with open_text(misnamed) as f:
        assert f.readline().rstrip("\n") == LINES[0]


def test_open_text_missing_file(tmp_path):
    with pytest.raises(NotFoundError) as info, open_text(tmp_path / "nope.jsonl"):
        pass
    assert info.value.path == str(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.jsonl", "jsonl"),
        ("a.json.gz", "jsonl"),
        ("a.csv", "csv"),
        ("a.tsv.bz2", "csv"),
        ("a.parquet", "parquet"),
        ("A.PQ", "parquet"),
        ("a.csv.zst", "csv"),
    ],
)
def test_detect_container(name, kind):
    assert detect_container(name) == kind


def test_iter_rows_skips_blank_lines_and_numbers_lines(write_text):
    path = write_text(LINES, "x.jsonl")
    assert list(iter_rows(path)) == [(1, {"a": 1}), (2, {"a": "é ✓"}), (4, {"a": 3})]


def test_iter_rows_yields_bad_json_as_error_with_line(write_text):
    path = write_text(['{"a": 1}', '{"a": '], "x.jsonl")
    rows = list(iter_rows(path))
    assert rows[0] == (1, {"a": 1})
    line, err = rows[1]
    assert line == 2 and isinstance(err, InputError) and err.line == 2
    assert "not valid JSON" in err.message


def test_parquet_rows_are_numbered_from_one(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": list(range(5))}), path, row_group_size=2)
    assert list(iter_rows(path)) == [(i + 1, {"a": i}) for i in range(5)]


def test_not_utf8_is_a_format_error(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        json.dumps({"chosen": "x"}).encode() + b"\n" + '{"chosen": "caf\xe9"}'.encode("latin-1")
    )
    with pytest.raises(FormatError, match="not UTF-8"):
        read("hh-rlhf", path)


def test_corrupt_gzip_is_a_format_error(tmp_path, write_text):
    good = write_text(['{"a": 1}'] * 1000, "x.jsonl.gz")
    data = good.read_bytes()
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="cannot decompress"):
        list(iter_rows(bad))


def test_json_array_file_is_refused_with_a_way_out(write_text):
    path = write_text(
        ['[{"chosen": "a", "rejected": "b"},', '{"chosen": "c", "rejected": "d"}]'], "battles.json"
    )
    with pytest.raises(FormatError, match="JSON array, not JSON lines.*jq") as info:
        read("arena", path)
    assert info.value.line == 1


def test_truncated_zstd_is_an_error_not_a_shorter_file(tmp_path):
    import zstandard

    rows = "".join(json.dumps({"a": i}) + "\n" for i in range(5000)).encode()
    frame = zstandard.ZstdCompressor().compress(rows)
    whole = tmp_path / "two-frames.jsonl.zst"
    whole.write_bytes(frame + frame)
    assert sum(1 for _ in iter_rows(whole)) == 10_000
    cut = tmp_path / "cut.jsonl.zst"
    cut.write_bytes(frame + frame[: len(frame) // 2])
    with pytest.raises(FormatError, match="ends inside a frame"):
        list(iter_rows(cut))


@pytest.mark.parametrize("suffix", [".bz2", ".gz"])
def test_truncated_bz2_and_gzip_are_errors(tmp_path, write_text, suffix):
    good = write_text(['{"a": 1}'] * 5000, f"x.jsonl{suffix}")
    data = good.read_bytes()
    bad = tmp_path / f"bad.jsonl{suffix}"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="cannot decompress"):
        list(iter_rows(bad))


def test_not_a_parquet_file_is_a_format_error(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_text('{"chosen": "a"}\n')
    with pytest.raises(FormatError, match="not a Parquet file"):
        list(iter_rows(path))


def test_iter_rows_with_repeats_yields_the_same_rows_lines_and_errors(write_text):
    lines = ['{"a": 1}', "", '{"a": 2}', "{broken", '{"a": 1}', "[1]", '{"a": 2}', "{broken"]
    path = write_text(lines, "rep.jsonl")
    plain = list(iter_rows(path))
    remembered = list(iter_rows(path, repeats=True))
    assert [line for line, _ in plain] == [line for line, _ in remembered] == [1, 3, 4, 5, 6, 7, 8]
    for (_, a), (_, b) in zip(plain, remembered, strict=True):
        if isinstance(a, InputError):
            assert isinstance(b, InputError) and (a.line, a.message) == (b.line, b.message)
        else:
            assert a == b
    assert remembered[0][1] is remembered[3][1]  # a repeated line is parsed once
