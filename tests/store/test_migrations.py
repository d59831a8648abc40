"""Migrations: an empty database upgraded to head matches the tables, on both engines."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from preflab.store.engine import make_engine
from preflab.store.migrate import current_revision, downgrade, head_revision, upgrade_to_head
from preflab.store.tables import Base


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def test_upgrade_empty_database_to_head_matches_metadata(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade_to_head(engine)
    assert [] == _diff(engine)
    assert head_revision() == current_revision(engine)
    engine.dispose()


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade_to_head(engine)
    upgrade_to_head(engine)
    assert head_revision() == current_revision(engine)
    engine.dispose()


def test_downgrade_one_step_and_back_restores_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade_to_head(engine)
    downgrade(engine, "-1")
    tables_after_downgrade = set(inspect(engine).get_table_names()) - {"alembic_version"}
    upgrade_to_head(engine)
    assert set(Base.metadata.tables) > tables_after_downgrade
    assert [] == _diff(engine)
    engine.dispose()


def test_concurrent_upgrades_of_a_fresh_database_both_succeed(db_url: str) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from preflab.store.engine import make_engine; "
        "from preflab.store.migrate import upgrade_to_head; upgrade_to_head(make_engine(sys.argv[1]))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, db_url], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    for p in procs:
        if p.stderr:
            p.stderr.close()
    assert [0, 0, 0] == [code for code, _ in results], results
    engine = make_engine(db_url)
    assert [] == _diff(engine)
    assert head_revision() == current_revision(engine)
    engine.dispose()


def _schema(engine: Engine) -> dict[str, object]:
    """Every table's columns, keys, indexes and constraints as the inspector reads them."""
    insp = inspect(engine)
    out: dict[str, object] = {}
    for name in sorted(insp.get_table_names()):
        out[name] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default"))
                        for c in insp.get_columns(name)],
            "pk": insp.get_pk_constraint(name)["constrained_columns"],
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"],
                           tuple(f["referred_columns"]), (f.get("options") or {}).get("ondelete"))
                          for f in insp.get_foreign_keys(name)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in insp.get_indexes(name)),
            "uniques": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(name)),
            "checks": sorted(str(c["sqltext"]) for c in insp.get_check_constraints(name)),
        }
    return out


def test_new_sqlite_workspace_made_from_the_tables_equals_the_migrated_one(tmp_path: Path) -> None:
    from preflab.store.engine import open_workspace

    fast = open_workspace(tmp_path / "fast")  # a new, empty workspace: tables + stamp
    migrated = make_engine(f"sqlite:///{tmp_path / 'migrated.sqlite'}")
    upgrade_to_head(migrated)
    assert head_revision() == current_revision(fast)
    assert [] == _diff(fast)
    assert _schema(migrated) == _schema(fast)
    # and Alembic can take it from there: one step down and back up again
    downgrade(fast, "-1")
    upgrade_to_head(fast)
    assert _schema(migrated) == _schema(fast)
    fast.dispose()
    migrated.dispose()


def test_concurrent_opens_of_a_new_sqlite_workspace_create_it_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import sys; from preflab.store.engine import open_workspace; open_workspace(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "ws")],
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    engine = make_engine(f"sqlite:///{tmp_path / 'ws' / 'preflab.sqlite'}")
    assert head_revision() == current_revision(engine)
    assert [] == _diff(engine)
    engine.dispose()
