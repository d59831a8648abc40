"""Alembic environment: migrates the engine handed over by :mod:`preflab.store.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine, text

from preflab.store.engine import make_engine
from preflab.store.tables import Base

target_metadata = Base.metadata


# any constant: serializes concurrent upgrades of one PostgreSQL database (app workers starting)
_MIGRATION_LOCK = 7_301_962_001


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    engine: Engine | None = context.config.attributes.get("engine")
    if engine is None:
        url = context.config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("preflab migrations need an engine or sqlalchemy.url")
        engine = make_engine(url)
    # on SQLite the preflab_write option makes the transaction BEGIN IMMEDIATE: a second
    # process upgrading at the same time waits, then finds the schema at head
    with engine.connect() as connection:
        connection = connection.execution_options(preflab_write=True)
        _run(connection)
        connection.commit()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


# Alembic executes this file under its own module name; a plain import (doc tools, pytest
# --doctest-modules) must not try to migrate anything.
if __name__ != "preflab.store.migrations.env":
    _run_offline() if context.is_offline_mode() else _run_online()
