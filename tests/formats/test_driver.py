"""Bad input, skip_invalid, the problem cap, and streaming (chunk sizes, bounded memory)."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from preflab.errors import InputError
from preflab.formats.driver import InvalidRowsError
from preflab.formats.registry import iter_read, read

GOOD = {"prompt": "Q", "chosen": "A", "rejected": "B"}


def _rows_with_bad(n_good: int, bad_at: dict[int, object]) -> list[object]:
    rows: list[object] = [dict(GOOD, prompt=f"Q{i}") for i in range(n_good)]
    for index, row in sorted(bad_at.items()):
        rows.insert(index, row)
    return rows


def test_first_problem_is_in_the_message_and_all_are_collected(write_jsonl):
    path = write_jsonl(
        _rows_with_bad(
            5,
            {
                1: {"prompt": "Q", "chosen": 3, "rejected": "B"},
                3: {"prompt": "Q", "chosen": "A"},
                4: [1, 2],
            },
        )
    )
    with pytest.raises(InvalidRowsError) as info:
        read("trl-preference", path)
    err = info.value
    assert isinstance(err, InputError)
    assert (err.path, err.line, err.field) == (str(path), 2, "chosen")
    assert [(p.line, p.field) for p in err.problems] == [(2, "chosen"), (4, "rejected"), (5, None)]
    assert str(err).startswith(f'{path}, line 2, field "chosen": expected a string or a list')
    assert "2 more problems" in str(err) and "line 4" in str(err)


def test_problem_cap_stops_reading(write_jsonl):
    path = write_jsonl([{"chosen": None}] * 50)
    with pytest.raises(InvalidRowsError) as info:
        read("trl-preference", path, max_problems=7)
    assert len(info.value.problems) == 7 and info.value.truncated
    assert "6+ more problems" in str(info.value)


def test_skip_invalid_reads_the_rest_and_reports_each_skipped_line(write_jsonl):
    path = write_jsonl(
        _rows_with_bad(4, {0: {"prompt": "Q", "chosen": "A", "rejected": ""}, 2: "not an object"})
    )
    chunk = read("trl-preference", path, skip_invalid=True)
    assert chunk.judgments.column("source_line").to_pylist() == [2, 4, 5, 6]
    assert chunk.counts["skipped_invalid"] == 2
    assert [str(p) for p in chunk.problems] == [
        f'{path}, line 1, field "rejected": expected a non-empty string, got an empty one',
        f'{path}, line 3: expected a JSON object, got "not an object"',
    ]


def test_bad_json_line_is_a_problem_with_its_line(write_text):
    path = write_text([json.dumps(GOOD), '{"prompt": "Q", "chosen": ', json.dumps(GOOD)], "d.jsonl")
    chunk = read("trl-preference", path, skip_invalid=True)
    assert [(p.line, p.field) for p in chunk.problems] == [(2, None)]
    assert "not valid JSON" in chunk.problems[0].message


def test_a_row_failing_halfway_leaves_no_records_behind(write_jsonl):
    # the prompt is valid (added first), then the completion fails: the prompt must go too
    path = write_jsonl(
        [
            {"prompt": "only here", "chosen": "A", "rejected": [{"role": "user", "content": "x"}]},
            GOOD,
        ]
    )
    chunk = read("trl-preference", path, skip_invalid=True)
    assert chunk.prompts.column("messages").to_pylist() == [[{"role": "user", "content": "Q"}]]
    assert chunk.responses.num_rows == 2
    assert chunk.problems[0].field == "rejected[0].role"


def test_empty_file_gives_one_empty_chunk(write_text):
    path = write_text([], "empty.jsonl")
    chunks = list(iter_read("hh-rlhf", path))
    assert len(chunks) == 1 and chunks[0].judgments.num_rows == 0
    assert chunks[0].counts["judgments"] == 0


def test_generated_file_streams_in_chunks_of_the_asked_size(write_text):
    n, size = 2_500, 300
    path = write_text(
        (
            json.dumps({"prompt": f"question {i}", "chosen": f"yes {i}", "rejected": f"no {i}"})
            for i in range(n)
        ),
        "big.jsonl.gz",
    )
    sizes = [c.judgments.num_rows for c in iter_read("trl-preference", path, chunk_size=size)]
    assert sizes == [size] * (n // size) + [n % size]


def test_streaming_memory_stays_far_below_the_file_size(write_text):
    # ~12 MB of text read 200 rows at a time: traced memory stays a small fraction of it,
    # because no chunk, row list or file content is kept between chunks.
    filler = "x" * 2_000
    path = write_text(
        (
            json.dumps(
                {
                    "prompt": f"q{i} {filler}",
                    "chosen": f"a{i} {filler}",
                    "rejected": f"b{i} {filler}",
                }
            )
            for i in range(2_000)
        ),
        "big.jsonl",
    )
    assert path.stat().st_size > 12_000_000
    tracemalloc.start()
    try:
        judgments = 0
        for chunk in iter_read("trl-preference", path, chunk_size=200):
            judgments += chunk.judgments.num_rows
            del chunk
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert judgments == 2_000
    assert peak < path.stat().st_size / 4


def test_an_unforeseen_reader_failure_still_names_file_and_line(write_jsonl):
    from preflab.errors import FormatError
    from preflab.formats.driver import read_rows
    from preflab.formats.streams import iter_rows

    def parse(b, row):
        raise KeyError("boom")

    path = write_jsonl([GOOD])
    with pytest.raises(FormatError) as info:
        list(read_rows(str(path), iter_rows(path), parse, format="x"))
    assert (info.value.path, info.value.line) == (str(path), 1)
    assert isinstance(info.value.__cause__, KeyError)


def test_lone_surrogates_are_a_reported_problem_not_a_crash(write_text):
    rows = [
        '{"prompt": "Q\\ud800", "chosen": "A", "rejected": "B"}',
        '{"prompt": "Q", "chosen": "A", "rejected": "B", "judge": "x\\udfff"}',
        json.dumps(GOOD),
    ]
    path = write_text(rows, "s.jsonl")
    chunk = read("jsonl", path, skip_invalid=True)
    assert [(p.line, p.field) for p in chunk.problems] == [(1, None), (2, "judge")]
    assert all("lone surrogate" in p.message for p in chunk.problems)
    assert chunk.judgments.num_rows == 1
