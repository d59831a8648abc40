"""Record snapshots: ``write_parquet_snapshot`` out, the ``snapshot`` reader back in."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine

from preflab.errors import FormatError, InputError, NotFoundError
from preflab.formats.registry import iter_read, read
from preflab.store.engine import open_workspace
from preflab.store.imports import import_chunks
from preflab.store.queries import count_rows, read_judgments, read_prompts
from preflab.store.queries.snapshot import write_parquet_snapshot


@pytest.fixture
def source(hh_sample: Path, tmp_path: Path) -> Engine:
    """A SQLite workspace holding the real HH-RLHF sample."""
    engine = open_workspace(tmp_path / "source")
    import_chunks(engine, [read("hh-rlhf", hh_sample)], format="hh-rlhf", path=hh_sample)
    return engine


@pytest.fixture
def snap(source: Engine, tmp_path: Path) -> Path:
    write_parquet_snapshot(source, tmp_path / "snap")
    return tmp_path / "snap"


def _rewrite(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    pq.write_table(change(pq.read_table(path)), path)


def test_snapshot_moves_every_record_to_another_engine(
    source: Engine, snap: Path, db_url: str
) -> None:
    target = open_workspace(db_url)
    try:
        chunks = list(iter_read("snapshot", snap, chunk_size=150))
        assert len(chunks) > 4  # streamed: several chunks per file
        result = import_chunks(target, chunks, format="snapshot", path=snap)
        assert not result.already_imported
        expected = {k: v for k, v in count_rows(source).items() if k != "imports"}
        assert expected == {k: v for k, v in count_rows(target).items() if k != "imports"}
        assert read_judgments(source).equals(read_judgments(target))
        assert read_prompts(source).equals(read_prompts(target))
        again = import_chunks(target, iter_read("snapshot", snap), format="snapshot", path=snap)
        assert again.already_imported
    finally:
        target.dispose()


def test_an_older_snapshot_without_the_new_columns_still_reads(snap: Path) -> None:
    path = snap / "judgments.parquet"
    _rewrite(path, lambda t: t.drop_columns(["spans", "critique"]))
    chunk = read("snapshot", snap)
    assert chunk.judgments.num_rows == 399
    assert {0} == {len(s) for s in chunk.judgments.column("spans").to_pylist()}
    assert {None} == set(chunk.judgments.column("critique").to_pylist())


def test_an_unknown_column_is_named_with_its_file(snap: Path) -> None:
    path = snap / "responses.parquet"
    _rewrite(path, lambda t: t.append_column("score", pa.array([1.0] * t.num_rows)))
    with pytest.raises(FormatError) as err:
        read("snapshot", snap)
    assert (str(path), "score") == (err.value.path, err.value.field)


def test_a_bad_row_names_file_row_and_field_and_nothing_is_stored(
    snap: Path, tmp_path: Path
) -> None:
    path = snap / "responses.parquet"

    def empty_third(t: pa.Table) -> pa.Table:
        content = t.column("content").to_pylist()
        content[2] = "   "
        return t.set_column(t.schema.get_field_index("content"), "content", pa.array(content))

    _rewrite(path, empty_third)
    target = open_workspace(tmp_path / "target")
    try:
        with pytest.raises(InputError) as err:
            import_chunks(target, iter_read("snapshot", snap), format="snapshot", path=snap)
        assert (str(path), 3, "content") == (err.value.path, err.value.line, err.value.field)
        assert 0 == count_rows(target)["prompts"]  # the prompts read before it were rolled back
        chunk = read("snapshot", snap, skip_invalid=True)
        (problem,) = chunk.problems
        assert (str(path), 3, "content") == (problem.path, problem.line, problem.field)
        assert chunk.responses.num_rows == pq.read_metadata(path).num_rows - 1
    finally:
        target.dispose()


def test_a_missing_file_is_named(snap: Path) -> None:
    (snap / "judges.parquet").unlink()
    with pytest.raises(NotFoundError) as err:
        read("snapshot", snap)
    assert err.value.path == str(snap / "judges.parquet")
    assert "judges.parquet" in str(err.value)


def test_a_file_that_is_not_parquet_is_named(snap: Path) -> None:
    (snap / "prompts.parquet").write_text("prompt_id,messages\n")
    with pytest.raises(FormatError) as err:
        read("snapshot", snap)
    assert err.value.path == str(snap / "prompts.parquet")
