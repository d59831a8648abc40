"""Accept an engine or a connection in read functions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from preflab.store.unit_of_work import read_scope

__all__ = ["reading"]


@contextmanager
def reading(bind: Engine | Connection) -> Iterator[Connection]:
    """Yield ``bind`` itself when it is a connection, else a read transaction on the engine."""
    if isinstance(bind, Connection):
        yield bind
        return
    with read_scope(bind) as conn:
        yield conn
