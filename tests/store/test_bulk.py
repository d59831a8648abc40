"""Bulk writes: duplicates ignored, bad judgment rows named by file and line."""

from __future__ import annotations

import pyarrow as pa
import pytest
from sqlalchemy import Engine

from preflab.errors import InputError
from preflab.records import Judgment, records_to_table
from preflab.store.bulk import write_judgments, write_prompts
from preflab.store.queries import count_rows
from preflab.store.unit_of_work import write_scope

from .conftest import make_chunk, make_pair_records


def test_writing_the_same_prompts_twice_stores_them_once(engine: Engine) -> None:
    chunk = make_chunk(0, 5)
    with write_scope(engine) as conn:
        write_prompts(conn, chunk.prompts)
        write_prompts(conn, chunk.prompts)
    assert 5 == count_rows(engine)["prompts"]


def test_judgment_without_its_kinds_value_names_source_line(engine: Engine) -> None:
    chunk = make_chunk(0, 2)
    broken = chunk.judgments.set_column(
        chunk.judgments.schema.get_field_index("pairwise"),
        "pairwise",
        pa.nulls(2, chunk.judgments.schema.field("pairwise").type),
    )
    with pytest.raises(InputError) as err, write_scope(engine) as conn:
        write_prompts(conn, chunk.prompts)
        from preflab.store.bulk import write_responses

        write_responses(conn, chunk.responses)
        write_judgments(conn, broken)
    assert ("pairs.jsonl", 1, "pairwise") == (err.value.path, err.value.line, err.value.field)
    assert 0 == count_rows(engine)["prompts"]


def test_unknown_judgment_kind_is_an_input_error(engine: Engine) -> None:
    _, _, _, judgment = make_pair_records(0)
    table = records_to_table([judgment], Judgment)
    table = table.set_column(table.schema.get_field_index("kind"), "kind", pa.array(["likert"]))
    with pytest.raises(InputError) as err, write_scope(engine) as conn:
        write_judgments(conn, table)
    assert "kind" == err.value.field
    assert "likert" in str(err.value)
