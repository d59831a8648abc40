"""The app's database handle: an engine, short read sessions and serialized write transactions.

On SQLite, writes from the app's threads take one in-process lock (SQLite allows one writer;
queuing in Python is fairer and faster than SQLite's busy-wait back-off), and each write
transaction starts with ``BEGIN IMMEDIATE`` so another process writing the same file waits
instead of failing on a stale snapshot. Several app processes on one SQLite file (``preflab
serve --workers N``) also queue on a lock file beside it (``<database>-writer.lock``, ``flock``):
a waiting writer is woken the moment the lock is free, where SQLite's own busy handler sleeps
and polls (1, 2, 5 … 100 ms) and would dominate tail latency. WAL checkpoints (copying the
write-ahead log back into the database file, with an fsync) run in a background thread
(:class:`_Checkpointer`) instead of inside whichever request's commit crossed SQLite's
1,000-page threshold, which made every hundredth submission wait several milliseconds.
PostgreSQL needs none of this.

:meth:`Database.run` runs a short unit of work for a request handler. On SQLite it runs on the
event loop itself: the queries take tens of microseconds and writes are serialized anyway, so
a hop to a worker thread (and the GIL hand-offs it brings) would cost more than the work. A
unit that would have to wait (the write lock is held by a thread, or another process holds
the file's write lock) stops before writing and runs again in a worker thread, so the loop
never waits on a lock. On PostgreSQL, where every statement is a network round trip, units
always run in worker threads.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, event, inspect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from preflab.errors import StoreError
from preflab.store.engine import make_engine, normalize_url
from preflab.store.migrate import upgrade_to_head

__all__ = ["POOL_SIZE", "Database", "open_database"]

P = ParamSpec("P")
T = TypeVar("T")


class _WriterBusy(Exception):
    """An inline unit of work met a held write lock before writing: run it in a thread."""


# How long a unit on the event loop polls for another process's hold of the writer lock
# (write transactions take well under a millisecond) before it moves to a worker thread.
_INLINE_LOCK_WAIT = 0.003


class _WriterFileLock:
    """An exclusive ``flock`` on a file beside the SQLite database, shared by app processes.

    One descriptor per process (re-opened after a fork, since a shared descriptor would share
    the lock); the threads of a process take the in-process lock first, so only one of them
    waits here at a time.
    """

    def __init__(self, path: str) -> None:
        import fcntl

        self._fcntl = fcntl
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def _fileno(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self, *, wait: float | None = None) -> bool:
        """Take the lock, waiting up to ``wait`` seconds (None: as long as it takes)."""
        fcntl, fd = self._fcntl, self._fileno()
        if wait is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return True
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.0001)

    def release(self) -> None:
        """Give the lock back."""
        self._fcntl.flock(self._fileno(), self._fcntl.LOCK_UN)


class _Checkpointer:
    """A daemon thread that checkpoints a SQLite database's WAL (PASSIVE) every ``interval``.

    PASSIVE checkpoints never wait for readers or writers. The app's connections keep a high
    automatic checkpoint threshold as a fallback (:data:`_AUTOCHECKPOINT_PAGES`), so the WAL
    stays bounded even if this thread cannot keep up.
    """

    def __init__(self, path: str, interval: float = 0.5) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="preflab-wal-checkpoint",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import sqlite3

        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None,
                               check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # busy or briefly locked: the next round (or autocheckpoint) catches up
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the thread (after its current checkpoint)."""
        self._stop.set()
        self._thread.join(timeout=10)


# Automatic checkpoint threshold of the app's connections (pages): a fallback only.
_AUTOCHECKPOINT_PAGES = 20_000


def _writer_file_lock(database: str) -> _WriterFileLock | None:
    try:
        import fcntl  # noqa: F401  (POSIX only; elsewhere SQLite's busy handler serializes)
    except ImportError:
        return None
    return _WriterFileLock(f"{database}-writer.lock")


# Connections kept open: at least one per request thread (app.REQUEST_THREADS), so that no
# request pays for a new connection (on SQLite: open the file, set the pragmas) under load.
POOL_SIZE = 16


def _app_engine(url: str) -> Engine:
    """The store's engine with a pool sized for the app's request threads."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            return make_engine(parsed)  # one in-memory database per connection: default pool
        return make_engine(parsed, pool_size=POOL_SIZE, max_overflow=16)
    # room for anyio's 40 worker threads
    return make_engine(parsed, pool_size=POOL_SIZE + 4, max_overflow=30)


def _prepare_schema(engine: Engine) -> None:
    """Bring the schema to head (Alembic) and check it has the queue's columns."""
    upgrade_to_head(engine)
    cols = {c["name"] for c in inspect(engine).get_columns("items")}
    missing = {"reserved", "is_open"} - cols
    if missing:
        raise StoreError(
            f"the database's items table lacks columns {sorted(missing)} that the queue needs; "
            "the migrations are older than the tables: regenerate them (store/migrations)"
        )


class Database:
    """Sessions for one database URL.

    Args:
        url: SQLAlchemy URL (``sqlite:///…`` or ``postgresql+psycopg://…``).
        create: migrate the schema to head first (creates the tables of an empty database).
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = _app_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        database = self.engine.url.database
        # a SQLite file (in-memory SQLite gives each connection its own database: none of the
        # file's machinery below applies there)
        on_file = self.is_sqlite and database not in (None, "", ":memory:")
        sqlite_file = database if on_file else None
        self.runs_inline = sqlite_file is not None
        self._checkpointer: _Checkpointer | None = None
        self._checkpoint_path = sqlite_file  # its thread starts at the first write
        if sqlite_file is not None:

            @event.listens_for(self.engine, "connect")
            def _background_checkpoints(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")

        if create:
            _prepare_schema(self.engine)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self._file_lock = None if sqlite_file is None else _writer_file_lock(sqlite_file)
        self._local = threading.local()
        self.inline_fallbacks = 0  # units that met a held lock and went to a thread
        self.next_sweep = 0.0  # monotonic time of the next sweep of expired reservations

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a short unit of work for a request: inline on SQLite, else in a worker thread.

        ``fn`` must be safe to start again from the top when it stops at the beginning of a
        write transaction (:class:`_WriterBusy`): every write transaction it committed before
        must be harmless to repeat. The queue and submission functions are.
        """
        if self.runs_inline:
            local = self._local
            local.inline = True
            try:
                return fn(*args, **kwargs)
            except _WriterBusy:
                self.inline_fallbacks += 1
            finally:
                local.inline = False
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(fn, *args, **kwargs)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Yield a session for reading; it is closed (rolled back) afterwards."""
        with self._factory() as session:
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """Yield a plain connection for Core reads (no ORM session); rolled back afterwards."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _write_locks(self) -> Iterator[dict[str, bool]]:
        """Hold what a write transaction needs; yield the connection's execution options.

        In a thread: the in-process lock, then the writer file lock, waiting as long as it
        takes. Inline (on the event loop): both only if free (or freed within a few
        milliseconds), else :class:`_WriterBusy`, and SQLite is asked not to busy-wait.
        """
        if not self.is_sqlite:
            yield {}
            return
        lock, file_lock = self._write_lock, self._file_lock
        assert lock is not None
        inline = getattr(self._local, "inline", False)
        if not lock.acquire(blocking=not inline):
            raise _WriterBusy
        try:
            if self._checkpoint_path is not None:
                path, self._checkpoint_path = self._checkpoint_path, None
                self._checkpointer = _Checkpointer(path)
            if file_lock is not None and not file_lock.acquire(
                wait=_INLINE_LOCK_WAIT if inline else None
            ):
                raise _WriterBusy
            try:
                yield {"preflab_write": True, "preflab_nowait": inline}
            finally:
                if file_lock is not None:
                    file_lock.release()
        finally:
            lock.release()

    @staticmethod
    @contextmanager
    def _busy_if_locked(options: dict[str, bool]) -> Iterator[None]:
        """Turn "database is locked" at BEGIN of an inline unit into :class:`_WriterBusy`."""
        try:
            yield
        except OperationalError as exc:
            message = str(exc.orig)
            if options.get("preflab_nowait") and ("locked" in message or "busy" in message):
                raise _WriterBusy from None  # another process holds the file's write lock
            raise

    @contextmanager
    def write(self) -> Iterator[Session]:
        """Yield a session inside one write transaction: commit on success, roll back on error."""
        with self._write_locks() as options, self._factory() as session:
            if options:
                with self._busy_if_locked(options):
                    session.connection(execution_options=options)
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Like :meth:`write` with a plain connection (Core statements only; less overhead)."""
        with self._write_locks() as options, self.engine.connect() as conn:
            if options:
                conn.execution_options(**options)
            with self._busy_if_locked(options):
                trans = conn.begin()
            with trans:  # commits at the end, rolls back on an error
                yield conn

    def analyze(self) -> None:
        """Refresh the planner's statistics (after bulk imports, so the queue's index is used)."""
        with self.engine.begin() as conn:
            for table in ("items", "assignments"):
                conn.exec_driver_sql(f"ANALYZE {table}")

    def dispose(self) -> None:
        """Close every pooled connection (and stop the checkpoint thread)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.engine.dispose()


def open_database(url: str) -> Database:
    """Return a :class:`Database` for ``url`` with its schema migrated to head."""
    return Database(url)
