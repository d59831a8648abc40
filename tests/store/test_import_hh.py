"""The real HH-RLHF sample through the real reader into both databases and back."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from sqlalchemy import Engine

from preflab.formats.registry import iter_read, read
from preflab.store.imports import import_chunks
from preflab.store.queries import (
    count_rows,
    read_judges,
    read_judgments,
    read_prompts,
    read_responses,
)


def _sorted(table: pa.Table, key: str) -> pa.Table:
    return table.sort_by(key).combine_chunks()


def test_hh_sample_round_trips_through_the_store_unchanged(engine: Engine, hh_sample: Path) -> None:
    expected = read("hh-rlhf", hh_sample)
    result = import_chunks(
        engine, iter_read("hh-rlhf", hh_sample, chunk_size=64), format="hh-rlhf", path=hh_sample
    )
    assert 400 == result.counts["rows"]
    assert expected.judgments.num_rows == result.counts["judgments"]
    assert _sorted(expected.prompts, "prompt_id").equals(read_prompts(engine))
    assert _sorted(expected.responses, "response_id").equals(read_responses(engine))
    assert _sorted(expected.judgments, "judgment_id").equals(read_judgments(engine))
    assert _sorted(expected.judges, "judge_id").equals(read_judges(engine))


def test_hh_sample_reimport_and_other_chunking_add_nothing(
    engine: Engine, hh_sample: Path, tmp_path: Path
) -> None:
    import_chunks(
        engine, iter_read("hh-rlhf", hh_sample, chunk_size=100), format="hh-rlhf", path=hh_sample
    )
    before = count_rows(engine)
    copy = tmp_path / "copy.jsonl.gz"
    copy.write_bytes(hh_sample.read_bytes() + b"")
    again = import_chunks(
        engine, iter_read("hh-rlhf", copy, chunk_size=7), format="hh-rlhf", path=copy
    )
    assert again.already_imported  # same bytes under another name
    assert before == count_rows(engine)


def test_hh_sample_into_a_project_queues_one_item_per_pair(engine: Engine, hh_sample: Path) -> None:
    result = import_chunks(
        engine,
        iter_read("hh-rlhf", hh_sample),
        format="hh-rlhf",
        path=hh_sample,
        project_id="harmless",
        create_project=True,
    )
    assert result.counts["judgments"] == result.counts["items"]
    assert {"prompts", "responses", "judges", "judgments", "items"} <= set(
        count_rows(engine, result.project_id)
    )
    assert result.counts["judgments"] == count_rows(engine, result.project_id)["items"]
