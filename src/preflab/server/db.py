"""The app's database handle: an engine, short read sessions and serialized write transactions.

On SQLite, writes from the app's threads take one in-process lock (SQLite allows one writer;
queuing in Python is fairer and faster than SQLite's busy-wait back-off), and each write
transaction starts with ``BEGIN IMMEDIATE`` so another process writing the same file waits
instead of failing on a stale snapshot. PostgreSQL needs neither.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.orm import Session, sessionmaker

from preflab.errors import StoreError
from preflab.store.engine import make_engine, normalize_url
from preflab.store.migrate import upgrade_to_head

__all__ = ["POOL_SIZE", "Database", "open_database"]

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
        if create:
            _prepare_schema(self.engine)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock() if self.is_sqlite else None

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
    def write(self) -> Iterator[Session]:
        """Yield a session inside one write transaction: commit on success, roll back on error."""
        lock = self._write_lock or nullcontext()
        with lock, self._factory() as session:
            if self.is_sqlite:
                session.connection(execution_options={"preflab_write": True})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def analyze(self) -> None:
        """Refresh the planner's statistics (after bulk imports, so the queue's index is used)."""
        with self.engine.begin() as conn:
            for table in ("items", "assignments"):
                conn.exec_driver_sql(f"ANALYZE {table}")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def open_database(url: str) -> Database:
    """Return a :class:`Database` for ``url`` with its schema migrated to head."""
    return Database(url)
