"""Engines and workspaces: SQLite pragmas, URL handling, workspace creation."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from preflab.errors import ConfigError, UsageError
from preflab.store.engine import make_engine, normalize_url, open_workspace, resolve_database_url
from preflab.store.migrate import current_revision, head_revision


def test_sqlite_engine_sets_wal_foreign_keys_busy_timeout_and_synchronous(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    engine.dispose()
    assert {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 30_000,
        "synchronous": 1,
    } == pragma


def test_sqlite_transaction_is_rolled_back_as_a_whole(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        raise RuntimeError("stop")
    with engine.connect() as conn:
        assert 0 == conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
    engine.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@127.0.0.1:5432/db", "postgresql+psycopg://u@127.0.0.1:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///a.sqlite", "sqlite:///a.sqlite"),
    ],
)
def test_normalize_url_points_postgresql_at_psycopg(given: str, expected: str) -> None:
    assert expected == str(normalize_url(given))


def test_unsupported_database_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        make_engine("mysql://u@h/db")
    assert "database_url" == err.value.field
    assert "mysql" in str(err.value)


def test_postgresql_engine_uses_psycopg3(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert 1 == conn.exec_driver_sql("SELECT 1").scalar()
    assert engine.dialect.name in ("sqlite", "postgresql")
    if engine.dialect.name == "postgresql":
        assert "psycopg" == engine.dialect.driver
    engine.dispose()


def test_open_workspace_creates_folder_and_schema_at_head(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "ws"
    engine = open_workspace(folder)
    assert (folder / "preflab.sqlite").is_file()
    assert head_revision() == current_revision(engine)
    assert "judgments" in inspect(engine).get_table_names()
    engine.dispose()


def test_open_workspace_accepts_a_url(db_url: str) -> None:
    engine = open_workspace(db_url)
    assert head_revision() == current_revision(engine)
    engine.dispose()


def test_open_workspace_on_a_file_is_a_config_error(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ConfigError) as err:
        open_workspace(f)
    assert str(f) == err.value.path


def test_database_url_precedence_flag_then_env_then_workspace(tmp_path: Path) -> None:
    assert "sqlite:///flag.sqlite" == resolve_database_url(
        "sqlite:///flag.sqlite", env_url="sqlite:///env"
    )
    assert "sqlite:///env" == resolve_database_url(None, env_url="sqlite:///env")
    ws = resolve_database_url(None, tmp_path, env_url="sqlite:///env")
    assert f"sqlite:///{(tmp_path / 'preflab.sqlite').resolve()}" == ws


def test_db_and_workspace_together_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        resolve_database_url("sqlite:///x", tmp_path)


def test_shipped_head_read_from_the_files_is_alembics_head():
    from preflab.store.engine import _shipped_head
    from preflab.store.migrate import head_revision

    assert head_revision() == _shipped_head()


def test_opening_a_current_workspace_does_not_load_alembic(tmp_path):
    import subprocess
    import sys

    from preflab.store.engine import open_workspace

    open_workspace(tmp_path / "ws").dispose()  # created and upgraded: Alembic runs here
    code = (
        "import sys\nfrom preflab.store.engine import open_workspace\n"
        f"open_workspace({str(tmp_path / 'ws')!r}).dispose()\n"
        "print('alembic' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
