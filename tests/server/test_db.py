"""The app's database handle: units of work inline on SQLite, in threads elsewhere; the
writer file lock shared by app processes; the background WAL checkpoints.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from preflab.server.db import Database, _WriterFileLock


def _counter_table(db: Database) -> None:
    with db.transaction() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS counter (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))


def _bump(db: Database) -> int:
    """A unit of work: one write transaction; return the thread it ran on."""
    with db.transaction() as conn:
        conn.execute(text("UPDATE counter SET n = n + 1"))
    return threading.get_ident()


def _count(db: Database) -> int:
    with db.connect() as conn:
        return int(conn.execute(text("SELECT n FROM counter")).scalar_one())


def test_units_run_inline_on_sqlite_and_in_threads_on_postgresql(db_url: str) -> None:
    db = Database(db_url)
    try:
        _counter_table(db)
        ran_on = asyncio.run(db.run(_bump, db))
        assert _count(db) == 1
        if db_url.startswith("sqlite"):
            assert db.runs_inline and ran_on == threading.get_ident()
        else:
            assert not db.runs_inline and ran_on != threading.get_ident()
    finally:
        db.dispose()


def _bump_while_held(db: Database, held_for: float, release: Callable[[], None]) -> tuple[int, int]:
    """Run :func:`_bump` through ``db.run`` while a lock is held; after ``held_for`` seconds
    (the unit must still be waiting) call ``release``. Return the unit's thread and how often a
    10 ms ticker ran on the event loop meanwhile."""

    async def scenario() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        unit = asyncio.create_task(db.run(_bump, db))
        await asyncio.sleep(held_for)
        assert not unit.done()  # waiting for the lock, in a worker thread
        release()
        ran_on = await unit
        tick_task.cancel()
        return ran_on, ticks

    return asyncio.run(scenario())


def test_inline_unit_moves_to_a_thread_when_a_thread_holds_the_write_lock(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.sqlite'}")
    try:
        _counter_table(db)
        holding, release = threading.Event(), threading.Event()

        def long_write() -> None:  # an admin import, say
            with db.transaction() as conn:
                conn.execute(text("UPDATE counter SET n = n + 100"))
                holding.set()
                release.wait(5)

        holder = threading.Thread(target=long_write)
        holder.start()
        holding.wait(5)

        ran_on, ticks = _bump_while_held(db, 0.2, release.set)
        holder.join()
        assert ran_on != threading.get_ident()
        assert db.inline_fallbacks == 1
        assert ticks >= 10  # the event loop kept running while the unit waited
        assert _count(db) == 101
    finally:
        db.dispose()


def test_inline_unit_does_not_block_the_loop_on_another_process_write(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    db = Database(f"sqlite:///{path}")
    try:
        _counter_table(db)
        other = sqlite3.connect(path, isolation_level=None)  # a CLI import in another process
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE counter SET n = n + 10")

        _, ticks = _bump_while_held(db, 0.3, lambda: other.execute("COMMIT"))
        assert ticks >= 15
        assert db.inline_fallbacks == 1
        assert _count(db) == 11
        other.close()
    finally:
        db.dispose()


def test_writer_file_lock_is_shared_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    db = Database(f"sqlite:///{path}")
    try:
        _counter_table(db)
        lock_path = f"{path}-writer.lock"
        probe = (
            "import sys; from preflab.server.db import _WriterFileLock;"
            "print(_WriterFileLock(sys.argv[1]).acquire(wait=0.05))"
        )
        with db.transaction():
            held = subprocess.run([sys.executable, "-c", probe, lock_path], capture_output=True,
                                  text=True, check=True).stdout.strip()
        free = subprocess.run([sys.executable, "-c", probe, lock_path], capture_output=True,
                              text=True, check=True).stdout.strip()
        assert (held, free) == ("False", "True")
    finally:
        db.dispose()


def test_writer_file_lock_times_out_and_frees(tmp_path: Path) -> None:
    a, b = _WriterFileLock(str(tmp_path / "l")), _WriterFileLock(str(tmp_path / "l"))
    b._fd = None  # each instance opens its own descriptor, as another process would
    assert a.acquire(wait=0)
    # same process, separate open file description: flock excludes it too
    import os

    b._fd, b._pid = os.open(b.path, os.O_RDWR), os.getpid()
    t0 = time.monotonic()
    assert not b.acquire(wait=0.05)
    assert time.monotonic() - t0 >= 0.05
    a.release()
    assert b.acquire(wait=0)
    b.release()


def test_wal_checkpoints_run_in_a_background_thread(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    db = Database(f"sqlite:///{path}")
    try:
        with db.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 20_000
        _counter_table(db)
        checkpointer = db._checkpointer
        assert checkpointer is not None and checkpointer._thread.is_alive()
        with db.transaction() as conn:  # a few hundred pages into the WAL
            conn.execute(text("CREATE TABLE big (x TEXT)"))
            conn.execute(text("INSERT INTO big VALUES (:x)"), [{"x": "x" * 2000}] * 500)
        wal = Path(f"{path}-wal")
        deadline = time.monotonic() + 5
        probe = sqlite3.connect(path)
        try:
            # once checkpointed, the next write starts the WAL over: its size stops growing
            while time.monotonic() < deadline:
                time.sleep(0.6)
                before = wal.stat().st_size
                rows = probe.execute("SELECT count(*) FROM big").fetchone()
                assert rows == (500,)
                with db.transaction() as conn:
                    conn.execute(text("INSERT INTO counter VALUES (1)"))
                if wal.stat().st_size == before:
                    break
            else:
                pytest.fail("the WAL kept growing: no checkpoint ran")
        finally:
            probe.close()
        db.dispose()
        assert not checkpointer._thread.is_alive()
    finally:
        db.dispose()
