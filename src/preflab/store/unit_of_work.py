"""Units of work: the one place that commits.

Library write functions take a :class:`~sqlalchemy.Connection` or
:class:`~sqlalchemy.orm.Session` and never commit; callers wrap them in one of these scopes,
which commit when the block ends normally and roll back when it raises (including
``KeyboardInterrupt``), so a failed operation leaves the database as it was.

>>> from sqlalchemy import text
>>> from preflab.store.engine import make_engine
>>> engine = make_engine("sqlite://")
>>> with write_scope(engine) as conn:
...     _ = conn.execute(text("CREATE TABLE t (x INTEGER)"))
>>> with read_scope(engine) as conn:
...     conn.execute(text("SELECT count(*) FROM t")).scalar()
0
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["make_session_factory", "read_scope", "session_scope", "write_scope"]


@contextmanager
def write_scope(engine: Engine) -> Iterator[Connection]:
    """Yield a connection inside one write transaction; commit at the end, roll back on error.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE`` so it takes the write lock up
    front (waiting up to the busy timeout) instead of failing halfway.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(preflab_write=True)
        with conn.begin():
            yield conn


@contextmanager
def read_scope(engine: Engine) -> Iterator[Connection]:
    """Yield a connection inside one read transaction (a consistent snapshot); never commits."""
    with engine.connect() as conn:
        conn.begin()
        yield conn  # closing the connection rolls the read transaction back


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory for ``engine`` (objects stay readable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | sessionmaker[Session]) -> Iterator[Session]:
    """Yield an ORM session; commit when the block ends normally, roll back when it raises."""
    factory = engine if isinstance(engine, sessionmaker) else make_session_factory(engine)
    with factory() as session, session.begin():
        session.connection(execution_options={"preflab_write": True})
        yield session
