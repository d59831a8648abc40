"""Database engines and workspaces.

SQLite is the embedded default: one file per workspace, in WAL mode with foreign keys on, a
busy timeout so concurrent writers wait instead of failing, and ``synchronous=NORMAL`` (safe
with WAL: a power cut may lose the last commits but never corrupts the file; see
https://www.sqlite.org/pragma.html#pragma_synchronous). PostgreSQL is chosen by URL and driven
by psycopg 3.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from preflab.errors import ConfigError, StoreError, UsageError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "is_sqlite",
    "make_engine",
    "normalize_url",
    "open_workspace",
    "resolve_database_url",
]

BUSY_TIMEOUT_MS = 30_000
_WAL_SIZE_LIMIT = 64 * 1024 * 1024  # truncate the WAL back to this after a checkpoint
_CACHE_KIB = 64 * 1024  # page cache per connection; bulk imports touch many index pages


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def normalize_url(url: str | URL) -> URL:
    """Return ``url`` parsed, with PostgreSQL pointed at the psycopg 3 driver.

    ``postgresql://`` and ``postgres://`` URLs get ``+psycopg``; other drivers are kept.

    >>> str(normalize_url("postgresql://u@127.0.0.1:5432/db"))
    'postgresql+psycopg://u@127.0.0.1:5432/db'

    Raises:
        ConfigError: the URL cannot be parsed or names a database preflab does not support.
    """
    raw = str(url)
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw.removeprefix("postgres://")
    try:
        parsed = make_url(raw)
    except ArgumentError as exc:
        raise ConfigError(
            f"cannot parse database URL {raw!r}: {exc}. Use sqlite:///path/to/file.sqlite "
            "or postgresql://user@host:5432/dbname.",
            field="database_url",
            value=raw,
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"database {backend!r} is not supported; use SQLite (default) or PostgreSQL.",
            field="database_url",
            value=raw,
        )
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite(engine: Engine) -> bool:
    """Return whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


def make_engine(
    url: str | URL,
    *,
    echo: bool = False,
    pool_size: int | None = None,
    max_overflow: int | None = None,
) -> Engine:
    """Return an engine for ``url`` set up the way preflab expects.

    SQLite connections get WAL mode, ``foreign_keys=ON``, a busy timeout and
    ``synchronous=NORMAL``; transactions start with an explicit ``BEGIN`` (``BEGIN IMMEDIATE``
    when the connection has the ``preflab_write`` execution option), so a whole import is one
    transaction and concurrent writers queue on the busy timeout instead of deadlocking.
    PostgreSQL URLs use psycopg 3.

    Args:
        url: SQLAlchemy URL (``sqlite:///file.sqlite``, ``postgresql://user@host/db``).
        echo: log SQL statements.
        pool_size: connections kept open (SQLAlchemy's default when None).
        max_overflow: extra connections allowed under load (SQLAlchemy's default when None).

    Returns:
        The engine; dispose of it when done.

    >>> engine = make_engine("sqlite://")
    >>> with engine.connect() as conn:
    ...     conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
    1
    """
    parsed = normalize_url(url)
    pool: dict[str, int] = {
        k: v for k, v in (("pool_size", pool_size), ("max_overflow", max_overflow)) if v is not None
    }
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            echo=echo,
            json_serializer=_dumps,
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000},
            **pool,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(parsed, echo=echo, json_serializer=_dumps, pool_pre_ping=True, **pool)


def _configure_sqlite(engine: Engine) -> None:
    # SQLAlchemy's documented recipe for real SQLite transactions: stop pysqlite from issuing
    # its own BEGIN and emit ours (https://docs.sqlalchemy.org/en/20/dialects/sqlite.html,
    # "Serializable isolation / Savepoints / Transactional DDL").
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
        cur.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # BEGIN goes straight to the driver: it returns no rows, and the full statement path
        # costs more than the statement itself on every transaction
        opts = conn.get_execution_options()
        dbapi = conn.connection.dbapi_connection
        try:
            if not opts.get("preflab_write"):
                dbapi.execute("BEGIN DEFERRED")
            elif opts.get("preflab_nowait"):
                # the caller cannot afford to wait (it runs on an event loop): no busy wait for
                # another process's write lock; "database is locked" at once instead
                dbapi.execute("PRAGMA busy_timeout=0")
                try:
                    dbapi.execute("BEGIN IMMEDIATE")
                finally:
                    dbapi.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            else:
                dbapi.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise OperationalError("BEGIN", None, exc) from exc


def resolve_database_url(
    db: str | None = None, workspace: str | Path | None = None, *, env_url: str | None = None
) -> str:
    """Return the database URL to use: ``db`` > ``env_url`` > the workspace's SQLite file.

    Args:
        db: the ``--db`` flag (a URL), if given.
        workspace: the ``--workspace`` folder, if given.
        env_url: ``PREFLAB_DATABASE_URL`` as read by :class:`preflab.settings.Settings`.

    Raises:
        UsageError: both ``db`` and ``workspace`` were given.
    """
    if db and workspace:
        raise UsageError("give either --db or --workspace, not both.", field="db")
    if db:
        return db
    if workspace is None and env_url:
        return env_url
    from preflab.settings import Settings, default_database_url

    folder = Path(workspace) if workspace is not None else Settings().workspace
    return default_database_url(folder)


def open_workspace(target: str | Path, *, upgrade: bool = True) -> Engine:
    """Open (creating if needed) a workspace folder or database URL, schema upgraded to head.

    Args:
        target: a folder (its SQLite file ``preflab.sqlite`` is created inside) or a
            database URL (anything containing ``://``).
        upgrade: run the Alembic migrations up to head (default).

    Returns:
        An engine on the workspace's database.

    Raises:
        ConfigError: the folder cannot be created or the URL is not supported.
    """
    text = str(target)
    if "://" in text:
        url = text
        parsed = normalize_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            _make_folder(Path(parsed.database).parent)
    else:
        from preflab.settings import default_database_url

        folder = Path(target)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(
                f"workspace {folder} is a file, not a folder; give a folder (it is created "
                "when missing) or a database URL.",
                path=str(folder),
            )
        _make_folder(folder)
        url = default_database_url(folder)
    engine = make_engine(url)
    if upgrade and not _at_shipped_head(engine) and not _create_empty_sqlite(engine):
        from preflab.store.migrate import upgrade_to_head

        try:
            upgrade_to_head(engine)
        except OperationalError as exc:
            engine.dispose()
            raise StoreError(
                f"cannot open the database {engine.url.render_as_string(hide_password=True)}: "
                f"{exc.orig}. Check --db / PREFLAB_DATABASE_URL and that the server is running.",
                field="database_url",
            ) from None
    return engine


_MIGRATIONS = Path(__file__).resolve().parent / "migrations" / "versions"
_REVISION = re.compile(r"^(down_revision|revision)\b[^=\n]*=\s*(None|\"([^\"]+)\"|'([^']+)')\s*$", re.MULTILINE)


def _shipped_head() -> str | None:
    """Return the newest migration shipped, read from the files; None if that is not plain.

    (Alembic takes ~0.5 s to import: every command would pay it to learn the schema is current.)
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in _MIGRATIONS.glob("*.py"):
        found = {m.group(1): m.group(3) or m.group(4) for m in _REVISION.finditer(path.read_text())}
        if "revision" not in found or found["revision"] is None or "down_revision" not in found:
            return None  # a file this reading does not understand: let Alembic decide
        revisions.add(found["revision"])
        if found["down_revision"] is not None:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def _at_shipped_head(engine: Engine) -> bool:
    """Return whether the database already records the newest shipped migration."""
    head = _shipped_head()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").fetchall()
    except DBAPIError:
        return False  # no version table yet (a new database) or not reachable: Alembic says
    return [row[0] for row in rows] == [head]


def _create_empty_sqlite(engine: Engine) -> bool:
    """Create the schema of a new, empty SQLite database from the tables; return whether it did.

    A new workspace would otherwise import Alembic and replay every migration (~0.4 s a
    command). The result is the migrated schema (tests/store/test_migrations.py compares the
    two table by table) stamped at the newest shipped revision, so later migrations apply as
    usual. The check and the creation are one ``BEGIN IMMEDIATE`` transaction: a second
    process opening the same new file waits, then finds the tables. Anything else (PostgreSQL,
    a database with tables, a head the files do not say plainly) is left to Alembic.
    """
    head = _shipped_head()
    if head is None or engine.dialect.name != "sqlite":
        return False
    from preflab.store.tables import Base

    with engine.connect() as conn:
        conn = conn.execution_options(preflab_write=True)
        with conn.begin():
            if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table'").first():
                return False
            Base.metadata.create_all(conn)
            # the table Alembic itself creates (alembic.runtime.migration.MigrationContext)
            conn.exec_driver_sql(
                "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
            )
            conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES (?)", (head,))
    return True


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create workspace folder {folder}: {exc.strerror}.", path=str(folder)
        ) from None
