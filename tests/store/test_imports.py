"""Importing chunks: one transaction per file, idempotent, never duplicating content."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from preflab.errors import InputError, NotFoundError, StoreError
from preflab.formats.base import ImportChunk, ImportProblem
from preflab.records import Response
from preflab.store.imports import file_sha256, import_chunks
from preflab.store.queries import count_rows, read_judgments
from preflab.store.tables import Item

from .conftest import chunk_stream, make_chunk

EMPTY = {
    "prompts": 0,
    "responses": 0,
    "judges": 0,
    "judgments": 0,
    "items": 0,
    "projects": 0,
    "imports": 0,
}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"some": "content"}\n')
    return path


def test_import_writes_every_record_and_reports_counts(engine: Engine, source: Path) -> None:
    result = import_chunks(engine, chunk_stream(25, 10), format="test", path=source)
    assert {
        "rows": 25,
        "prompts": 25,
        "responses": 50,
        "judges": 1,
        "judgments": 25,
        "items": 0,
        "skipped": 0,
    } == result.counts
    assert not result.already_imported
    assert {
        **EMPTY,
        "prompts": 25,
        "responses": 50,
        "judges": 1,
        "judgments": 25,
        "imports": 1,
    } == count_rows(engine)


def test_reimporting_the_same_file_is_a_no_op_reported_as_already_imported(
    engine: Engine, source: Path
) -> None:
    first = import_chunks(engine, chunk_stream(5, 2), format="test", path=source)
    consumed: list[int] = []

    def spy() -> Iterator[ImportChunk]:
        consumed.append(1)
        yield from chunk_stream(5, 2)

    again = import_chunks(engine, spy(), format="test", path=source)
    assert again.already_imported
    assert first.import_id == again.import_id
    assert first.counts == again.counts
    assert [] == consumed  # the file is not even read again
    assert 1 == count_rows(engine)["imports"]


def test_overlapping_content_from_another_file_never_duplicates(
    engine: Engine, tmp_path: Path
) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("a")
    b.write_text("b")
    import_chunks(engine, chunk_stream(10, 4), format="test", path=a)
    second = import_chunks(engine, [make_chunk(5, 15)], format="test", path=b)
    assert 5 == second.counts["prompts"]  # pairs 10..14 are new, 5..9 were stored
    assert 5 == second.counts["judgments"]  # same judgment ids: the pairs come from one source
    assert 15 == count_rows(engine)["prompts"]
    assert 30 == count_rows(engine)["responses"]


def test_error_mid_file_rolls_everything_back(engine: Engine, source: Path) -> None:
    def failing() -> Iterator[ImportChunk]:
        yield make_chunk(0, 10)
        yield make_chunk(10, 20)
        raise InputError("expected a string, got null", path=str(source), line=21, field="chosen")

    with pytest.raises(InputError) as err:
        import_chunks(engine, failing(), format="test", path=source)
    assert (21, "chosen") == (err.value.line, err.value.field)
    assert EMPTY == count_rows(engine)


def test_constraint_violation_is_a_store_error_and_writes_nothing(
    engine: Engine, source: Path
) -> None:
    orphan = Response(prompt_id="p_nowhere", content="an answer to nothing")
    chunks = [make_chunk(0, 3), make_chunk(3, 6, extra_responses=[orphan])]
    with pytest.raises(StoreError) as err:
        import_chunks(engine, chunks, format="test", path=source)
    assert str(source) == err.value.path
    assert "Nothing was imported" in str(err.value)
    assert EMPTY == count_rows(engine)


def test_skipped_rows_are_reported_with_their_reasons(engine: Engine, source: Path) -> None:
    problem = ImportProblem(path=str(source), line=4, field="rejected", message="empty response")
    result = import_chunks(
        engine, [make_chunk(0, 3, problems=[problem])], format="test", path=source
    )
    assert 1 == result.counts["skipped"]
    assert [f'{source}, line 4, field "rejected": empty response'] == result.to_dict()["problems"]


def test_project_import_creates_one_item_per_pair_and_tags_judgments(
    engine: Engine, source: Path
) -> None:
    result = import_chunks(
        engine,
        [make_chunk(0, 4), make_chunk(2, 6)],
        format="test",
        path=source,
        project_id="Harmless",
        create_project=True,
    )
    assert result.project_created
    assert 6 == result.counts["items"]
    assert {result.project_id} == set(read_judgments(engine).column("project_id").to_pylist())
    with engine.connect() as conn:
        items = conn.execute(select(Item.__table__)).mappings().all()
    assert {2} == {len(i["response_ids"]) for i in items}
    assert {0} == {i["done"] for i in items}


def test_same_file_into_another_project_is_a_new_import(engine: Engine, source: Path) -> None:
    import_chunks(
        engine, [make_chunk(0, 3)], format="test", path=source, project_id="a", create_project=True
    )
    other = import_chunks(
        engine, [make_chunk(0, 3)], format="test", path=source, project_id="b", create_project=True
    )
    assert not other.already_imported
    assert 3 == other.counts["items"]
    assert 6 == count_rows(engine)["items"]


def test_unknown_project_is_not_found_without_create(engine: Engine, source: Path) -> None:
    with pytest.raises(NotFoundError) as err:
        import_chunks(engine, [make_chunk(0, 3)], format="test", path=source, project_id="nope")
    assert "project" == err.value.field
    assert EMPTY == count_rows(engine)


def test_file_sha256_covers_file_bytes_and_folder_contents(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    f.write_bytes(b"abc")
    assert "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" == file_sha256(f)
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "a.arrow").write_bytes(b"1")
    before = file_sha256(folder)
    (folder / "a.arrow").write_bytes(b"2")
    assert before != file_sha256(folder)


def test_file_sha256_of_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        file_sha256(tmp_path / "missing.jsonl")


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_text_postgresql_cannot_hold_is_a_store_error_and_writes_nothing(
    engine: Engine, source: Path
) -> None:
    nul = Response(
        prompt_id=make_chunk(0, 1).prompts.column("prompt_id")[0].as_py(), content="a\x00b"
    )
    with pytest.raises(StoreError) as err:
        import_chunks(engine, [make_chunk(0, 1, extra_responses=[nul])], format="test", path=source)
    assert "Nothing was imported" in str(err.value)
    assert EMPTY == count_rows(engine)


def _index_statements(engine: Engine) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
            )
        ]


def test_bulk_load_builds_the_indexes_again_as_they_were(
    engine: Engine, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("indexes are dropped for a bulk load on SQLite only")
    from preflab.store import imports

    monkeypatch.setattr(imports, "BULK_CHUNK_ROWS", 5)  # these chunks count as a bulk load
    before = _index_statements(engine)
    assert any(name == "ix_judgments_prompt_id" for name, _ in before)
    result = import_chunks(engine, chunk_stream(30, 10), format="test", path=source)
    assert 30 == result.counts["judgments"]
    assert before == _index_statements(engine)
    with engine.connect() as conn:  # the rebuilt index answers queries (and is used)
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT judgment_id FROM judgments WHERE prompt_id = 'x'"
        ).all()
    assert "ix_judgments_prompt_id" in " ".join(str(r) for r in plan)


def test_failed_bulk_load_leaves_the_indexes_and_rows_as_they_were(
    engine: Engine, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("indexes are dropped for a bulk load on SQLite only")
    from preflab.store import imports

    monkeypatch.setattr(imports, "BULK_CHUNK_ROWS", 5)
    before = _index_statements(engine)

    def failing() -> Iterator[ImportChunk]:
        yield make_chunk(0, 10)
        raise InputError("expected a string, got null", path=str(source), line=11, field="chosen")

    with pytest.raises(InputError):
        import_chunks(engine, failing(), format="test", path=source)
    assert before == _index_statements(engine)
    assert EMPTY == count_rows(engine)
