"""Record snapshots: the ``prompts``, ``responses``, ``judges`` and ``judgments`` Parquet files
that ``preflab snapshot`` (:func:`preflab.store.queries.snapshot.write_parquet_snapshot`)
writes, read back into a workspace (``preflab import snapshot FOLDER``).

The files hold the records in their own schemas (``PROMPT_SCHEMA``…), ids included, so a
re-import stores the same records under the same ids. Every row is checked as a record again
(a hand-edited file gets an error naming its file, row and field); columns the schema gained
since the snapshot was written (nullable ones only, such as ``spans`` and ``critique``) are
filled empty, and columns the schema does not know are an error. Judgments keep the
``project_id`` they had; projects, items, users and assignments are not part of a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from preflab.errors import FormatError, InputError, NotFoundError
from preflab.formats.base import ImportChunk, ImportProblem, empty_chunk
from preflab.records import (
    JUDGE_SCHEMA,
    JUDGMENT_SCHEMA,
    PROMPT_SCHEMA,
    RESPONSE_SCHEMA,
    Judge,
    Judgment,
    Prompt,
    Response,
    records_to_table,
    row_to_record,
)

__all__ = ["SNAPSHOT_TABLES", "read_snapshot"]

# In the order they are stored: what a row refers to comes before it.
SNAPSHOT_TABLES: dict[str, tuple[type[Any], pa.Schema]] = {
    "prompts": (Prompt, PROMPT_SCHEMA),
    "responses": (Response, RESPONSE_SCHEMA),
    "judges": (Judge, JUDGE_SCHEMA),
    "judgments": (Judgment, JUDGMENT_SCHEMA),
}


def _conform(batch: pa.RecordBatch, schema: pa.Schema, path: Path) -> pa.Table:
    """Return ``batch`` with ``schema``'s columns, in its order and types."""
    unknown = [n for n in batch.schema.names if n not in schema.names]
    if unknown:
        raise FormatError(
            f"column {unknown[0]!r} is not a {path.stem} column "
            f"(expected: {', '.join(schema.names)})",
            path=str(path),
            field=unknown[0],
        )
    columns = []
    for f in schema:
        if f.name in batch.schema.names:
            column = batch.column(f.name)
            try:
                columns.append(column.cast(f.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise FormatError(
                    f"column {f.name!r} holds {column.type}, not {f.type}: {exc}",
                    path=str(path),
                    field=f.name,
                ) from None
        elif f.nullable:
            columns.append(pa.nulls(batch.num_rows, f.type))
        else:
            raise FormatError(
                f"the {path.stem} file has no {f.name!r} column", path=str(path), field=f.name
            )
    return pa.Table.from_arrays(columns, schema=schema)


def read_snapshot(
    path: str | Path, *, chunk_size: int = 10_000, skip_invalid: bool = False
) -> Iterator[ImportChunk]:
    """Yield the records of a snapshot folder, table by table, ``chunk_size`` rows at a time.

    Args:
        path: the folder holding ``prompts.parquet``, ``responses.parquet``,
            ``judges.parquet`` and ``judgments.parquet``.
        chunk_size: rows per chunk.
        skip_invalid: leave bad rows out and report them in ``chunk.problems`` (row numbers
            count from 1 in each file) instead of raising.

    Raises:
        NotFoundError: the folder or one of its four files does not exist.
        FormatError: a file is not Parquet, or has a column the schema does not know, lacks a
            required one, or holds a type that does not convert.
        InputError: a row is not a valid record (file, row and field in the error), unless
            ``skip_invalid``.
    """
    import pyarrow.parquet as pq

    folder = Path(path)
    if not folder.is_dir():
        raise NotFoundError(f"no such snapshot folder: {folder}", path=str(folder))
    files = {name: folder / f"{name}.parquet" for name in SNAPSHOT_TABLES}
    for name, file in files.items():
        if not file.is_file():
            raise NotFoundError(
                f"the snapshot has no {name}.parquet (a snapshot holds "
                f"{', '.join(f'{n}.parquet' for n in SNAPSHOT_TABLES)})",
                path=str(file),
            )
    for name, (cls, schema) in SNAPSHOT_TABLES.items():
        file = files[name]
        try:
            reader = pq.ParquetFile(file)
        except (pa.ArrowInvalid, OSError) as exc:
            raise FormatError(f"not a Parquet file: {exc}", path=str(file)) from None
        row = 0
        for batch in reader.iter_batches(batch_size=chunk_size):
            table = _conform(batch, schema, file)
            records, problems = [], []
            for values in table.to_pylist():
                row += 1
                try:
                    records.append(row_to_record(cls, values, path=str(file), line=row))
                except InputError as exc:
                    if not skip_invalid:
                        raise
                    problems.append(
                        ImportProblem(str(file), row, exc.field, getattr(exc, "message", str(exc)))
                    )
            chunk = empty_chunk()
            setattr(chunk, name, records_to_table(records, cls))
            chunk.problems = problems
            chunk.counts = {"rows": table.num_rows}
            if problems:
                chunk.counts["skipped_invalid"] = len(problems)
            yield chunk
