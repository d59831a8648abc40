"""The registry: names, option checks, read() = concatenated iter_read()."""

from __future__ import annotations

import pytest

from preflab.errors import UsageError
from preflab.formats.registry import iter_read, read, reader_names, register_reader

BUILTIN = [
    "arena",
    "arena-human-preference",
    "csv",
    "hf-disk",
    "helpsteer2",
    "hh-rlhf",
    "hh-red-team",
    "jsonl",
    "nectar",
    "oasst",
    "parquet",
    "pku-saferlhf",
    "shp",
    "trl-preference",
    "trl-unpaired",
    "ultrafeedback",
    "ultrafeedback-binarized",
]


def test_every_builtin_reader_is_registered_and_loads():
    assert set(BUILTIN) <= set(reader_names())
    from preflab.formats.registry import _READERS

    for name in BUILTIN:
        assert callable(_READERS[name].load())


def test_unknown_format_lists_the_known_ones(hh_sample):
    with pytest.raises(UsageError, match="unknown import format 'hh'.*hh-rlhf"):
        read("hh", hh_sample)


def test_unknown_option_is_a_usage_error(hh_sample):
    with pytest.raises(UsageError, match="takes no option 'multi_turn'"):
        read("hh-rlhf", hh_sample, multi_turn="drop")


def test_mapping_is_refused_by_readers_without_one(hh_sample):
    with pytest.raises(UsageError, match="'mapping'"):
        read("shp", hh_sample, mapping={"prompt": "q"})


def test_bad_chunk_size_is_a_usage_error(hh_sample):
    with pytest.raises(UsageError, match="chunk_size"):
        read("hh-rlhf", hh_sample, chunk_size=0)


def test_read_concatenates_chunks_and_sums_counts(hh_sample):
    whole = read("hh-rlhf", hh_sample, chunk_size=100)
    chunks = list(iter_read("hh-rlhf", hh_sample, chunk_size=100))
    assert len(chunks) == 4
    assert whole.counts["rows"] == sum(c.counts["rows"] for c in chunks) == 400
    assert whole.judgments.num_rows == sum(c.judgments.num_rows for c in chunks)


def test_register_reader_adds_a_format(write_jsonl):
    from preflab.formats.registry import _READERS
    from preflab.formats.trl_datasets import read_trl_preference

    register_reader("my-prefs", read_trl_preference, "same as trl-preference")
    try:
        path = write_jsonl([{"prompt": "q", "chosen": "a", "rejected": "b"}])
        assert read("my-prefs", path).judgments.num_rows == 1
    finally:
        del _READERS["my-prefs"]


def test_reader_specs_describe_every_reader():
    from preflab.formats.registry import reader_specs

    specs = reader_specs()
    assert [s.name for s in specs] == reader_names()
    assert all(s.description for s in specs if s.name in BUILTIN)
