"""Bulk writes: duplicates ignored, bad judgment rows named by file and line."""

from __future__ import annotations

import pyarrow as pa
import pytest
from sqlalchemy import Engine

from preflab.errors import InputError
from preflab.records import Judgment, records_to_table
from preflab.store.bulk import write_judgments, write_prompts, write_responses
from preflab.store.queries import count_rows, read_judgments
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


def test_judgment_tables_without_feedback_columns_read_back_with_empty_spans(
    engine: Engine,
) -> None:
    chunk = make_chunk(0, 2)
    old_shape = chunk.judgments.drop_columns(["spans", "critique"])
    with write_scope(engine) as conn:
        write_prompts(conn, chunk.prompts)
        write_responses(conn, chunk.responses)
        write_judgments(conn, old_shape)
    back = read_judgments(engine)
    assert ([[], []], [None, None]) == (
        back.column("spans").to_pylist(), back.column("critique").to_pylist())


def test_empty_critique_is_kept_and_null_spans_read_back_empty(engine: Engine) -> None:
    chunk = make_chunk(0, 2)
    j = chunk.judgments
    j = j.set_column(j.schema.get_field_index("spans"), "spans",
                     pa.nulls(2, j.schema.field("spans").type))
    j = j.set_column(j.schema.get_field_index("critique"), "critique", pa.array(["", None]))
    with write_scope(engine) as conn:
        write_prompts(conn, chunk.prompts)
        write_responses(conn, chunk.responses)
        write_judgments(conn, j)
    back = read_judgments(engine).sort_by("source_line")
    assert ([[], []], ["", None]) == (
        back.column("spans").to_pylist(), back.column("critique").to_pylist())
