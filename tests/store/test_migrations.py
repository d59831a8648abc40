"""Migrations: an empty database upgraded to head matches the tables, on both engines."""

from __future__ import annotations

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
