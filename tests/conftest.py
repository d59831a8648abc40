"""Shared fixtures: a fresh empty database per test, on SQLite and on PostgreSQL.

PostgreSQL runs on 127.0.0.1:5432 with trust auth on these machines (``.ci/run`` starts it
where it is not running). The PostgreSQL half never skips: if the server is down the tests
fail, so CI cannot pass without exercising it.

Third-party data (the real HH-RLHF sample and the other published files) is found through
``tests/data_catalog.py``: ``$PREFLAB_TEST_DATA``, else a download-once cache, else the test
skips with one line saying how to get the file (a failure under ``PREFLAB_REQUIRE_TEST_DATA=1``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get(
    "PREFLAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
HH_SAMPLE_NAME = "hh-rlhf/harmless-base-test-first400.jsonl.gz"


def _fresh_pg_database() -> tuple[str, str]:
    import psycopg

    name = f"preflab_t_{uuid.uuid4().hex[:12]}"
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def _drop_pg_database(name: str) -> None:
    import psycopg

    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a fresh, empty database (no tables) on each engine."""
    yield from _fresh_database(request.param == "sqlite", tmp_path / "preflab.sqlite")


@pytest.fixture
def other_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a second fresh, empty database on the same engine as ``db_url``."""
    yield from _fresh_database(db_url.startswith("sqlite"), tmp_path / "other.sqlite")


def _fresh_database(sqlite: bool, sqlite_path: Path) -> Iterator[str]:
    if sqlite:
        yield f"sqlite:///{sqlite_path}"
        return
    name, url = _fresh_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(name)


def hh_sample_path() -> Path:
    """Path of the real HH-RLHF sample (400 pairs, gzip JSONL); skips when it cannot be had."""
    from tests.data_catalog import data_file

    return data_file(HH_SAMPLE_NAME)


@pytest.fixture
def hh_sample() -> Path:
    """Path of the real HH-RLHF sample (400 pairs, gzip JSONL); skips when it cannot be had."""
    return hh_sample_path()
