"""The request cache: one ``generation_requests`` row per model call, keyed by its content hash.

A request's key hashes (endpoint URL, model, revision, messages, parameters, seed); a row with
status ``done`` holds the reply, so any job that needs the same call again reads it instead of
calling. Rows are written only here, in short transactions of their own, so that a job killed
at any moment keeps every result that was committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, func, select, update
from sqlalchemy.engine import Connection

from preflab.generate.requests import request_key
from preflab.store.engine import open_workspace
from preflab.store.tables import GenerationRequest, JobRow, utcnow

__all__ = [
    "UNPARSEABLE",
    "CachedRow",
    "Outcome",
    "annotate_error",
    "insert_ignore",
    "insert_pending",
    "is_unparseable",
    "job_config",
    "job_token_counts",
    "load_requests",
    "open_engine",
    "record_outcomes",
    "request_key",
    "upsert_job",
]

_CHUNK = 500

UNPARSEABLE = "unparseable"
"""Prefix of the error a judge attaches to a ``done`` row whose reply it could not read."""
_REQUESTS = cast(Table, GenerationRequest.__table__)
_JOBS = cast(Table, JobRow.__table__)


def open_engine(url: str) -> Engine:
    """Return an engine on the workspace database ``url``, its schema upgraded to head.

    Goes through the store (``preflab.store.engine.open_workspace``: SQLite in WAL mode with a
    busy timeout, PostgreSQL via psycopg; Alembic migrations), so a workspace made here opens
    everywhere else and the other way round.
    """
    return open_workspace(url)


@dataclass(frozen=True, slots=True)
class CachedRow:
    """A stored request: its status, result or error, and token counts."""

    request_key: str
    status: str
    result: dict[str, Any] | None
    error: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of one request in this run: a result, or a failure with its reason.

    ``interrupted`` marks a request cut off by this process's own trouble (a worker process
    died): it is stored as ``interrupted``, and the next run calls it again without being
    asked, unlike a request the server failed (``failed``, called again with ``retry_failed``).
    """

    request_key: str
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    interrupted: bool = False

    @property
    def status(self) -> str:
        """Return the stored status: ``done``, ``failed`` or ``interrupted``."""
        if self.error is None:
            return "done"
        return "interrupted" if self.interrupted else "failed"


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def load_requests(conn: Connection, keys: Sequence[str]) -> dict[str, CachedRow]:
    """Return the stored rows of ``keys`` (missing keys are absent)."""
    out: dict[str, CachedRow] = {}
    t = _REQUESTS
    for chunk in _chunks(list(keys)):
        rows = conn.execute(
            select(t.c.request_key, t.c.status, t.c.result, t.c.error, t.c.attempts).where(
                t.c.request_key.in_(chunk)
            )
        )
        for r in rows:
            out[r.request_key] = CachedRow(r.request_key, r.status, r.result, r.error, r.attempts)
    return out


def insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table``, skipping rows whose primary key is already stored."""
    if not rows:
        return
    name = conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)
    else:  # other engines: skip what exists, row by row
        pk = next(iter(table.primary_key.columns))
        for row in rows:
            if conn.execute(select(pk).where(pk == row[pk.name])).first() is None:
                conn.execute(table.insert(), [row])


def insert_pending(conn: Connection, job_id: str, requests: Iterable[Mapping[str, Any]]) -> None:
    """Store ``requests`` (``{"request_key", "request"}`` each) as pending; keep existing keys."""
    now = utcnow()
    rows = [
        {
            "request_key": r["request_key"],
            "job_id": job_id,
            "status": "pending",
            "request": r["request"],
            "attempts": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "created_at": now,
        }
        for r in requests
    ]
    for i in range(0, len(rows), _CHUNK):
        insert_ignore(conn, _REQUESTS, rows[i : i + _CHUNK])


def record_outcomes(conn: Connection, outcomes: Sequence[Outcome]) -> None:
    """Store results (status ``done``) and failures (status ``failed`` with the reason)."""
    if not outcomes:
        return
    t = _REQUESTS
    stmt = (
        update(t)
        .where(t.c.request_key == bindparam("b_key"))
        .values(
            status=bindparam("b_status"),
            result=bindparam("b_result"),
            error=bindparam("b_error"),
            attempts=t.c.attempts + bindparam("b_attempts"),
            prompt_tokens=bindparam("b_pt"),
            completion_tokens=bindparam("b_ct"),
            finished_at=bindparam("b_at"),
        )
    )
    now = utcnow()
    conn.execute(
        stmt,
        [
            {
                "b_key": o.request_key,
                "b_status": o.status,
                "b_result": o.result,
                "b_error": o.error,
                "b_attempts": o.attempts,
                "b_pt": o.prompt_tokens,
                "b_ct": o.completion_tokens,
                "b_at": now,
            }
            for o in outcomes
        ],
    )


def annotate_error(conn: Connection, key: str, error: str) -> None:
    """Attach ``error`` to a done request whose reply could not be used (e.g. unparseable).

    The row stays ``done`` (its reply is kept); a job run with ``retry_unparseable`` calls a
    row whose error starts with :data:`UNPARSEABLE` again, and a usable reply clears it.
    """
    t = _REQUESTS
    conn.execute(update(t).where(t.c.request_key == key).values(error=error))


def is_unparseable(row: CachedRow) -> bool:
    """Return True if a judge marked the stored reply of ``row`` as unreadable."""
    return row.status == "done" and (row.error or "").startswith(UNPARSEABLE)


def upsert_job(
    conn: Connection, job_id: str, kind: str, config: Mapping[str, Any], status: str
) -> None:
    """Create the job row or update its status (``running``, ``done``, ``failed``).

    ``config`` is stored when the row is made; on an existing row it is merged into the stored
    config (so a batch job can record its remote batch ids as it submits them).
    """
    t = _JOBS
    existing = conn.execute(select(t.c.job_id).where(t.c.job_id == job_id)).first()
    finished = utcnow() if status != "running" else None
    if existing is None:
        conn.execute(
            t.insert().values(
                job_id=job_id,
                kind=kind,
                config=dict(config),
                status=status,
                created_at=utcnow(),
                finished_at=finished,
            )
        )
    else:
        values: dict[str, Any] = {"status": status, "finished_at": finished}
        if config:
            stored = conn.execute(select(t.c.config).where(t.c.job_id == job_id)).scalar_one()
            values["config"] = {**(stored or {}), **dict(config)}
        conn.execute(update(t).where(t.c.job_id == job_id).values(**values))


def job_config(conn: Connection, job_id: str) -> dict[str, Any]:
    """Return the stored config of a job ({} for an unknown job)."""
    t = _JOBS
    row = conn.execute(select(t.c.config).where(t.c.job_id == job_id)).first()
    return dict(row[0] or {}) if row is not None else {}


def job_token_counts(conn: Connection, job_id: str) -> dict[str, int]:
    """Return the prompt and completion tokens of the job's requests and how many there are."""
    t = _REQUESTS
    row = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(t.c.prompt_tokens), 0),
            func.coalesce(func.sum(t.c.completion_tokens), 0),
        ).where(t.c.job_id == job_id)
    ).one()
    return {"requests": int(row[0]), "prompt_tokens": int(row[1]), "completion_tokens": int(row[2])}
