"""``preflab demo``, ``preflab users`` and ``preflab projects`` on a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from preflab import collect
from preflab.cli.main import app
from preflab.server.db import Database
from preflab.server.demo import DEMO_PROJECT, setup_demo
from preflab.store.tables import Item

runner = CliRunner()


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.sqlite
def test_demo_imports_the_hh_sample(tmp_path: Path, hh_sample: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFLAB_DEMO_DATA", str(hh_sample))
    out = _run("demo", "--workspace", str(tmp_path / "ws"), "--no-serve")
    assert "alice" in out and "alice-demo-pass" in out and f"/projects/{DEMO_PROJECT}" in out
    db = Database(f"sqlite:///{tmp_path / 'ws' / 'preflab.sqlite'}")
    with db.read() as s:
        items, total = collect.list_items(s, DEMO_PROJECT, limit=1000)
        project = collect.get_project(s, DEMO_PROJECT)
        members = [u.username for u in collect.list_members(s, DEMO_PROJECT)]
        guideline = collect.current_guideline(s, DEMO_PROJECT)
    db.dispose()
    assert total >= 390  # 400 HH pairs (a duplicate pair collapses into one item)
    assert (project.kind, project.scale, project.allow_tie, project.allow_both_bad) == (
        "pairwise", 5, True, True)
    gold = [i for i in items if i.is_gold]
    assert 5 <= len(gold) <= 12 and all(i.gold_answer["preferred"] in i.response_ids
                                        for i in gold)
    share = sum(i.target == 2 for i in items) / total
    assert 0.2 < share < 0.4  # overlap 2 on ~30% of the items
    assert members == ["admin", "alice", "bob"]
    assert guideline is not None and guideline.version == 1
    again = _run("demo", "--workspace", str(tmp_path / "ws"), "--no-serve")
    assert "reopened" in again


@pytest.mark.sqlite
def test_demo_falls_back_to_builtin_items(tmp_path: Path) -> None:
    info = setup_demo(tmp_path / "ws", None)
    assert info.items == 4 and "built-in" in info.source
    db = Database(info.database_url)
    with db.read() as s:
        assert s.query(Item).filter(Item.is_gold.is_(True)).count() == 3
    db.dispose()


def test_users_and_projects_commands(db_url: str, tmp_path: Path) -> None:
    _run("users", "add", "carol", "--role", "annotator", "--password", "carol-pass-1",
         "--db", db_url)
    _run("users", "add", "root", "--role", "admin", "--password", "root-pass-12", "--db", db_url)
    bad = runner.invoke(app, ["users", "add", "dave", "--password", "short", "--db", db_url])
    assert bad.exit_code != 0
    listed = json.loads(_run("users", "list", "--json", "--db", db_url))
    assert [u["username"] for u in listed] == ["carol", "root"]
    _run("users", "disable", "carol", "--db", db_url)
    listed = json.loads(_run("users", "list", "--json", "--db", db_url))
    assert [u["active"] for u in listed] == [False, True]
    token = _run("users", "token", "root", "--db", db_url).strip()
    assert token.startswith("pfl_")
    _run("projects", "create", "Seven Point", "--scale", "7", "--overlap", "3",
         "--overlap-share", "0.2", "--db", db_url)
    _run("projects", "add-member", "seven-point", "carol", "--db", db_url)
    guide = tmp_path / "g.md"
    guide.write_text("# Be careful\n")
    assert "version 1" in _run("projects", "guidelines", "seven-point", str(guide), "--db", db_url)
    projects = json.loads(_run("projects", "list", "--json", "--db", db_url))
    assert projects[0]["project_id"] == "seven-point" and projects[0]["items"] == 0
    wrong = runner.invoke(app, ["projects", "create", "Six", "--scale", "6", "--db", db_url])
    assert wrong.exit_code != 0
