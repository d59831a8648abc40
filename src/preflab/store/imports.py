"""Import streams of record chunks into the store: one file, one transaction.

A reader (``preflab.formats``) turns a file into chunks of Arrow record tables;
:func:`import_chunks` writes them all inside one write transaction. Either every row of the
file is stored and the import is recorded in ``imports``, or — when the reader raises, a row
breaks a constraint, or the process dies — nothing is (SQLite's journal and PostgreSQL's
transaction guarantee the last case). Re-importing the same file (same SHA-256, format and
project) is a no-op reported as ``already_imported``; overlapping content never duplicates
because record ids are content hashes and every insert ignores existing keys.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from preflab.errors import NotFoundError, StoreError
from preflab.store.bulk import (
    SecondaryIndexes,
    item_columns_for_judgments,
    write_items,
    write_judges,
    write_judgments,
    write_prompts,
    write_responses,
)
from preflab.store.prefetch import prefetch
from preflab.store.queries.projects import ensure_project, find_project
from preflab.store.tables import (
    ImportRow,
    Item,
    JudgeRow,
    JudgmentRow,
    PromptRow,
    ResponseRow,
    utcnow,
)
from preflab.store.unit_of_work import write_scope

__all__ = ["ImportResult", "RecordChunk", "file_sha256", "import_chunks"]

_COUNTED = {
    "prompts": PromptRow.__table__,
    "responses": ResponseRow.__table__,
    "judges": JudgeRow.__table__,
    "judgments": JudgmentRow.__table__,
    "items": Item.__table__,
}


class RecordChunk(Protocol):
    """What the store needs from a chunk (``preflab.formats.base.ImportChunk`` fits)."""

    prompts: pa.Table
    responses: pa.Table
    judgments: pa.Table
    judges: pa.Table
    problems: list[Any]
    counts: dict[str, int]


@dataclass(slots=True)
class ImportResult:
    """What one import did (the fields of ``preflab.formats.base.ImportSummary``, plus ids).

    ``counts`` holds the reader's counts summed over chunks (``rows`` read, ``dropped_<rule>``
    rows left out by a stated rule, ``<table>_read`` records emitted), the rows this import
    added to each table (``prompts``, ``responses``, ``judges``, ``judgments``, ``items``;
    records already stored are not counted again) and ``skipped`` (invalid rows left out,
    listed in ``problems``). ``notes`` locates the rows a reader's rule dropped, skipped or
    merged (file, line or record id, and the count key), up to the reader's cap per chunk.
    """

    format: str
    path: str
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[Any] = field(default_factory=list)
    already_imported: bool = False
    notes: list[Any] = field(default_factory=list)
    import_id: str | None = None
    project_id: str | None = None
    project_created: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (problems as their one-line messages)."""
        return {
            "format": self.format,
            "path": self.path,
            "counts": dict(self.counts),
            "problems": [str(p) for p in self.problems],
            "notes": [str(n) for n in self.notes],
            "already_imported": self.already_imported,
            "import_id": self.import_id,
            "project_id": self.project_id,
            "project_created": self.project_created,
        }


def file_sha256(path: str | Path) -> str:
    """Return the SHA-256 of a file, or of a folder's files (names and bytes, sorted by name).

    Folders are Hugging Face datasets saved with ``save_to_disk``.

    Raises:
        NotFoundError: ``path`` does not exist.
    """
    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"{p} does not exist; check the path.", path=str(p))
    digest = hashlib.sha256()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    for f in files:
        if p.is_dir():
            digest.update(f.relative_to(p).as_posix().encode() + b"\0")
        with f.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _count(conn: Connection) -> dict[str, int]:
    return {
        name: conn.execute(select(func.count()).select_from(t)).scalar_one()
        for name, t in _COUNTED.items()
    }


# Tables whose plain indexes a bulk load drops and builds again at its end.
_BULK_TABLES = ("responses", "judgments", "items")
#: A load whose first chunk brings fewer judgments than this updates the indexes row by row.
BULK_CHUNK_ROWS = 5_000


def _is_bulk_load(chunk: RecordChunk, before: dict[str, int]) -> bool:
    """Return whether building the indexes after the load beats updating them row by row.

    True when the first chunk is large (a big file follows) and the tables hold fewer rows
    than a few chunks bring (rebuilding re-sorts what is already stored too).
    """
    n = chunk.judgments.num_rows
    if n < BULK_CHUNK_ROWS:
        return False
    return before["judgments"] <= 4 * n and before["responses"] <= 4 * max(
        n, chunk.responses.num_rows
    )


def _find_import(conn: Connection, fmt: str, sha256: str, project_id: str | None) -> Any:
    imports = ImportRow.__table__
    cond = (imports.c.format == fmt) & (imports.c.sha256 == sha256)
    cond &= (
        imports.c.project_id.is_(None) if project_id is None else imports.c.project_id == project_id
    )
    return conn.execute(select(imports).where(cond)).first()


def _close(chunks: Iterable[Any]) -> None:
    close = getattr(chunks, "close", None)
    if callable(close):
        close()


def import_chunks(
    engine: Engine,
    chunks: Iterable[RecordChunk],
    *,
    format: str,
    path: str | Path,
    project_id: str | None = None,
    create_project: bool = False,
    sha256: str | None = None,
    on_chunk: Callable[[RecordChunk], None] | None = None,
    read_ahead: bool = True,
) -> ImportResult:
    """Write every chunk of one input file inside one transaction; return what was done.

    Args:
        engine: the store (schema at head, see :func:`preflab.store.engine.open_workspace`).
        chunks: the reader's chunks; consumed lazily, so a file larger than memory imports.
            Not consumed at all when the file was imported before.
        format: the reader's format name (part of the re-import key).
        path: the input file (or dataset folder); its SHA-256 is the re-import key.
        project_id: id or name of a project: judgments without a project get it, and one
            annotation item is created per distinct (prompt, responses) of the judgments.
        create_project: create the project (named ``project_id``) when it does not exist.
        sha256: the input's digest when already known (skips hashing ``path``).
        on_chunk: called after each chunk is written (progress bars).
        read_ahead: read the next chunk in a thread while this one is written.

    Returns:
        The :class:`ImportResult`; ``already_imported`` is set for a repeat import.

    Raises:
        InputError: the reader or a row's content failed; nothing was written.
        NotFoundError: ``project_id`` names no project and ``create_project`` is off.
        StoreError: the database refused the rows (e.g. a response names a prompt that
            exists nowhere); nothing was written.
    """
    digest = sha256 or file_sha256(path)
    result = ImportResult(format=format, path=str(path))
    try:
        with write_scope(engine) as conn:
            if project_id is not None:
                project = find_project(conn, project_id)
                if project is None and not create_project:
                    _close(chunks)
                    raise NotFoundError(
                        f"project {project_id!r} does not exist; create it with "
                        "`preflab projects create` or pass --project with a new name to create it.",
                        field="project",
                        value=project_id,
                    )
                if project is None:
                    project = ensure_project(conn, project_id)
                    result.project_created = True
                result.project_id = project.project_id
                overlap = int(project.overlap or 1)
            previous = _find_import(conn, format, digest, result.project_id)
            if previous is not None:
                _close(chunks)
                result.already_imported = True
                result.import_id = previous.import_id
                result.counts = dict(previous.counts or {})
                return result
            before = _count(conn)
            reader_counts: dict[str, int] = {}
            indexes = SecondaryIndexes(conn, _BULK_TABLES)
            first = True
            for chunk in prefetch(chunks) if read_ahead else chunks:
                if first:
                    first = False
                    if _is_bulk_load(chunk, before):
                        indexes.drop()
                write_prompts(conn, chunk.prompts)
                write_responses(conn, chunk.responses)
                write_judges(conn, chunk.judges)
                write_judgments(conn, chunk.judgments, project_id=result.project_id)
                if result.project_id is not None:
                    items = item_columns_for_judgments(
                        chunk.judgments, project_id=result.project_id, target=overlap
                    )
                    write_items(conn, items)
                for key, value in chunk.counts.items():
                    reader_counts[key] = reader_counts.get(key, 0) + int(value)
                result.problems.extend(chunk.problems)
                result.notes.extend(getattr(chunk, "notes", ()))
                if on_chunk is not None:
                    on_chunk(chunk)
            indexes.rebuild()
            after = _count(conn)
            for name in _COUNTED:  # the reader's count of records emitted, kept apart
                if name in reader_counts:
                    reader_counts[f"{name}_read"] = reader_counts.pop(name)
            skipped = max(len(result.problems), reader_counts.pop("skipped_invalid", 0))
            result.counts = {
                **reader_counts,
                **{name: after[name] - before[name] for name in _COUNTED},
                "skipped": skipped,
            }
            result.import_id = uuid.uuid4().hex
            conn.execute(
                insert(ImportRow).values(
                    import_id=result.import_id,
                    format=format,
                    source_path=str(path),
                    sha256=digest,
                    project_id=result.project_id,
                    counts=result.counts,
                    created_at=utcnow(),
                )
            )
    except IntegrityError as exc:
        raise StoreError(
            f"the database refused the rows of {path}: {exc.orig}. Nothing was imported; "
            "a reader must emit each prompt in the same chunk as (or before) its responses "
            "and judgments.",
            path=str(path),
        ) from None
    except DBAPIError as exc:  # locked or lost database, text PostgreSQL cannot hold (NUL), …
        raise StoreError(
            f"the database failed while importing {path}: {exc.orig}. Nothing was imported.",
            path=str(path),
        ) from None
    return result
