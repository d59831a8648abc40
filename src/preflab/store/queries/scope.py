"""Accept an engine, a session or a connection where a query needs a connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from preflab.store.unit_of_work import read_scope

__all__ = ["connection_of", "reading"]


@contextmanager
def reading(bind: Engine | Connection) -> Iterator[Connection]:
    """Yield ``bind`` itself when it is a connection, else a read transaction on the engine."""
    if isinstance(bind, Connection):
        yield bind
        return
    with read_scope(bind) as conn:
        yield conn


def connection_of(bind: Session | Connection) -> Connection:
    """Return ``bind`` itself when it is a connection, else the session's connection."""
    return bind if isinstance(bind, Connection) else bind.connection()
