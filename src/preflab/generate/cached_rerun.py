"""A re-run of candidate generation answered wholly from the cache, read with plain sqlite3.

Why (issue 14, "the rerun that makes 0 calls under 0.5 s"): a re-run whose every request is
done makes no call and has nothing new to write, yet the job path imports SQLAlchemy's ORM and
the store (0.3–0.4 s of a ~0.8 s command), opens the workspace, stores its pending rows and
writes every prompt and response again (insert-or-ignore). Here the workspace's SQLite file is
read with the standard library, read-only, in one read transaction, and the answer is given
only when the job path would produce the very same result:

- every request is stored ``done`` with a reply (a pending, failed, interrupted or missing
  request: the job path must run);
- every prompt and response the replies make is stored already (a job that died between its
  last reply and its writes: the job path writes them).

Otherwise, or on another database (PostgreSQL, an unreadable file, a schema without these
tables), :func:`answer_from_cache` returns None and the caller runs the job as usual. Counts
come from the functions the job uses (:mod:`preflab.generate.candidate_rules`), so both report
alike; the job's row is left as it was, since nothing ran.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from preflab.generate.candidate_rules import (
    CandidateResult,
    MixRule,
    find_duplicate_responses,
    missing_on_policy,
    plan_candidates,
    responses_from_replies,
)
from preflab.generate.endpoints import EndpointConfig
from preflab.generate.requests import JobSummary, make_job_id
from preflab.records import Prompt

__all__ = ["answer_from_cache", "sqlite_file"]

_CHUNK = 500  # keys per IN (...) list: below SQLite's default limit of bound parameters


def sqlite_file(url: str) -> Path | None:
    """Return the file of a ``sqlite:///`` URL, or None (another database, in memory, a query).

    >>> sqlite_file("sqlite:////tmp/ws.sqlite")
    PosixPath('/tmp/ws.sqlite')
    >>> sqlite_file("postgresql+psycopg://127.0.0.1/test") is None
    True
    """
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            rest = url.removeprefix(prefix)
            if not rest or rest == ":memory:" or "?" in rest:
                return None
            return Path(unquote(rest))
    return None


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _done_replies(conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, Any] | None:
    """Return the stored reply of every key, or None if any key is not done with a reply."""
    replies: dict[str, Any] = {}
    for chunk in _chunks(keys):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT request_key, status, result FROM generation_requests "
            f"WHERE request_key IN ({marks})",
            list(chunk),
        )
        for key, status, result in rows:
            if status != "done" or result is None:
                return None
            reply = json.loads(result)
            if not isinstance(reply, dict):
                return None
            replies[key] = reply
    return replies if len(replies) == len(keys) else None


def _all_stored(conn: sqlite3.Connection, table: str, column: str, ids: Sequence[str]) -> bool:
    wanted = list(dict.fromkeys(ids))
    found = 0
    for chunk in _chunks(wanted):
        marks = ",".join("?" * len(chunk))
        found += conn.execute(
            f"SELECT count(*) FROM {table} WHERE {column} IN ({marks})", list(chunk)
        ).fetchone()[0]
    return found == len(wanted)


def answer_from_cache(
    url: str,
    prompts: Sequence[Prompt],
    endpoints: Mapping[str, EndpointConfig],
    *,
    n: int = 1,
    mix: MixRule | None = None,
    seed: int = 0,
    params: Mapping[str, object] | None = None,
) -> CandidateResult | None:
    """Return what ``generate_candidates`` would, if the cache answers every request; else None.

    Takes the arguments of :func:`preflab.generate.candidates.generate_candidates` that shape
    the requests (not ``dry_run``, ``retry_failed`` or ``via``: with those, run the job).

    Raises:
        UsageError: as :func:`~preflab.generate.candidate_rules.plan_candidates` (bad ``n``,
            unknown on-policy endpoint), before the database is read.
    """
    start = time.perf_counter()
    requests = plan_candidates(prompts, endpoints, n=n, mix=mix, seed=seed, params=params)
    path = sqlite_file(url)
    if path is None or not path.is_file():
        return None
    unique = list({r.key: r for r in requests}.values())  # one per key, as the job counts
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        conn.execute("BEGIN")  # one snapshot for every read below
        replies = _done_replies(conn, [r.key for r in unique])
        if replies is None:
            return None
        responses, merged, empty = responses_from_replies(requests, replies, endpoints)
        if responses and not (
            _all_stored(conn, "prompts", "prompt_id", [p.prompt_id for p in prompts])
            and _all_stored(conn, "responses", "response_id", [r.response_id for r in responses])
        ):
            return None
    except (sqlite3.Error, ValueError):  # no such table, a locked or damaged file, bad JSON
        return None
    finally:
        conn.close()
    summary = JobSummary(
        job_id=make_job_id("generate", unique), total=len(unique), cached=len(unique)
    )
    summary.merged = merged
    summary.elapsed = time.perf_counter() - start
    return CandidateResult(
        summary=summary,
        responses=responses,
        duplicates=find_duplicate_responses(responses),
        missing_on_policy=missing_on_policy(prompts, responses, endpoints, mix),
        merged=merged,
        empty=empty,
    )
