"""Run the Alembic migrations programmatically (no ``alembic.ini`` on the user's side)."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade_to_head",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    """Return an Alembic config pointing at preflab's migrations (and ``engine``, if given)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("version_path_separator", "os")
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


# Alembic keeps the running migration in module globals: one command at a time per process.
# Across processes, env.py serializes upgrades with a database lock.
_ALEMBIC_LOCK = threading.Lock()


def upgrade_to_head(engine: Engine) -> None:
    """Bring the database of ``engine`` to the newest schema (a no-op when it is there).

    Safe to call from several processes or threads at once: one upgrades, the others wait
    and find the schema at head.
    """
    if current_revision(engine) == head_revision():
        return
    with _ALEMBIC_LOCK:
        command.upgrade(alembic_config(engine), "head")


def downgrade(engine: Engine, revision: str = "-1") -> None:
    """Step the schema of ``engine`` back to ``revision`` (default: one step)."""
    with _ALEMBIC_LOCK:
        command.downgrade(alembic_config(engine), revision)


def head_revision() -> str | None:
    """Return the newest revision id shipped with preflab."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database of ``engine`` is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
