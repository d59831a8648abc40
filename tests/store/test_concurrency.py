"""SQLite: a second writer waits for the first (busy timeout) instead of failing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from preflab.collect import list_projects as collect_list_projects
from preflab.store.engine import open_workspace
from preflab.store.queries import ensure_project
from preflab.store.unit_of_work import read_scope, write_scope


def list_projects(engine: Engine) -> list:
    """The projects' rows, oldest first (the annotation layer's read)."""
    with read_scope(engine) as conn:
        return collect_list_projects(conn)


def test_concurrent_sqlite_writers_queue_on_the_lock(tmp_path: Path) -> None:
    engine = open_workspace(tmp_path / "ws")
    holding = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with write_scope(engine) as conn:
                ensure_project(conn, "a")
                holding.set()
                time.sleep(0.5)  # keep the write lock while the other writer starts
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    assert holding.wait(10)
    with write_scope(engine) as conn:
        ensure_project(conn, "b")
    thread.join()
    assert [] == errors
    assert ["a", "b"] == sorted(p.name for p in list_projects(engine))
    engine.dispose()
