"""``preflab projects endpoints`` and ``preflab projects live-config``, run as real processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select
from tests.cli_process import run_cli

from preflab import collect
from preflab.collect.endpoints import NO_KEYS_MESSAGE
from preflab.store.engine import make_engine

SENTINEL = "sk-SENTINEL-cli-5eed"
ENV = {"MY_KEY": SENTINEL}


@pytest.fixture
def project_db(db_url: str) -> Iterator[str]:
    """A fresh database (SQLite and PostgreSQL) with the project ``hh-review``."""
    proc = run_cli("projects", "create", "HH review", "--db", db_url)
    assert 0 == proc.returncode, proc.stderr
    yield db_url


def _cli(db_url: str, *args: str):  # type: ignore[no-untyped-def]
    return run_cli("projects", *args, "--db", db_url, env=ENV)


def _endpoints(db_url: str) -> list[dict]:
    proc = _cli(db_url, "endpoints", "list", "hh-review", "--json")
    assert 0 == proc.returncode, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite workspace with the project ``hh-review`` and no endpoints, shared by the tests
    of refused commands (which must leave it so)."""
    folder = str(tmp_path_factory.mktemp("ws"))
    proc = run_cli("projects", "create", "HH review", "-w", folder)
    assert 0 == proc.returncode, proc.stderr
    return folder


def _stored(ws: str) -> tuple[list, object]:
    """The workspace's endpoint rows and the project's config, read from the database."""
    from preflab.collect.core_tables import PROJECT_ENDPOINTS, PROJECTS

    engine = make_engine(f"sqlite:///{Path(ws) / 'preflab.sqlite'}")
    try:
        with engine.connect() as conn:
            return ([tuple(r) for r in conn.execute(select(PROJECT_ENDPOINTS))],
                    conn.execute(select(PROJECTS.c.config)).scalar())
    finally:
        engine.dispose()


def _dump(db_url: str) -> str:
    engine = make_engine(db_url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return json.dumps({n: [list(r) for r in conn.execute(select(t))]
                               for n, t in meta.tables.items()}, default=str)
    finally:
        engine.dispose()


def test_add_update_list_remove_and_no_key_anywhere(project_db: str) -> None:
    outputs = []
    add = _cli(project_db, "endpoints", "add", "hh-review", "llama-8b",
               "--base-url", "http://127.0.0.1:8000/v1", "--model", "meta-llama/Llama-3.1-8B",
               "--revision", "step-1200", "--param", "temperature=0.7",
               "--param", "stop=[\"\\n\"]", "--concurrency", "8", "--api-key-env", "MY_KEY")
    assert 0 == add.returncode, add.stderr
    [ep] = _endpoints(project_db)
    assert ("llama-8b", "meta-llama/Llama-3.1-8B", "step-1200",
            {"temperature": 0.7, "stop": ["\n"]}, 8, "MY_KEY", "set", True) == (
        ep["name"], ep["model"], ep["revision"], ep["params"], ep["concurrency"],
        ep["api_key_env"], ep["api_key_status"], ep["enabled"])

    update = _cli(project_db, "endpoints", "update", "hh-review", "llama-8b", "--revision", "",
                  "--param", "top_p=0.9", "--unset-param", "stop", "--disable")
    assert 0 == update.returncode, update.stderr
    [ep] = _endpoints(project_db)
    assert (None, {"temperature": 0.7, "top_p": 0.9}, False) == (
        ep["revision"], ep["params"], ep["enabled"])

    table = _cli(project_db, "endpoints", "list", "hh-review")
    assert 0 == table.returncode, table.stderr
    assert "MY_KEY (set in this shell)" in table.stdout
    assert SENTINEL not in _dump(project_db)

    remove = _cli(project_db, "endpoints", "remove", "hh-review", "llama-8b")
    assert 0 == remove.returncode, remove.stderr
    assert [] == _endpoints(project_db)
    outputs += [add, update, table, remove]
    assert all(SENTINEL not in p.stdout + p.stderr for p in outputs)


@pytest.mark.parametrize("flag", ["--api-key", "--key", "--token", "--secret"])
def test_a_key_on_the_command_line_is_refused_and_not_echoed(ws: str, flag: str) -> None:
    before = _stored(ws)
    proc = run_cli("projects", "endpoints", "add", "hh-review", "m", "--base-url",
                   "http://127.0.0.1:8000/v1", "--model", "m", flag, SENTINEL, "-w", ws)
    assert 2 == proc.returncode
    assert NO_KEYS_MESSAGE in " ".join(proc.stderr.split())
    assert SENTINEL not in proc.stdout + proc.stderr
    assert before == _stored(ws)


@pytest.mark.parametrize(("args", "field"), [
    (("--base-url", "localhost:8000"), "base_url"),
    (("--base-url", "http://h/v1", "--concurrency", "-1"), "concurrency"),
    (("--base-url", "http://h/v1", "--api-key-env", SENTINEL), "api_key_env"),
    (("--base-url", "http://h/v1", "--param", "temperature=9"), "params.temperature"),
    (("--base-url", "http://h/v1", "--param", "api_key=" + SENTINEL), "params.api_key"),
    (("--base-url", "http://h/v1", "--params", "{oops"), "params"),
])
def test_bad_options_name_the_field_and_write_nothing(ws: str, args: tuple[str, ...],
                                                      field: str) -> None:
    before = _stored(ws)
    proc = run_cli("projects", "endpoints", "add", "hh-review", "m", "--model", "m", *args,
                   "-w", ws)
    assert proc.returncode in (1, 2)
    assert f'field "{field}"' in " ".join(proc.stderr.split())
    assert SENTINEL not in proc.stdout + proc.stderr
    assert before == _stored(ws)


def test_missing_project_or_endpoint_fails_clearly(tmp_path: Path) -> None:
    ws = str(tmp_path)
    assert 0 == run_cli("projects", "create", "HH review", "-w", ws).returncode
    no_project = run_cli("projects", "endpoints", "add", "nope", "m", "--base-url",
                         "http://h/v1", "--model", "m", "-w", ws)
    no_endpoint = run_cli("projects", "endpoints", "remove", "hh-review", "ghost", "-w", ws)
    duplicate = [run_cli("projects", "endpoints", "add", "hh-review", "m", "--base-url",
                         "http://h/v1", "--model", "m", "-w", ws) for _ in range(2)]
    assert (1, 1, 0, 1) == (no_project.returncode, no_endpoint.returncode,
                            duplicate[0].returncode, duplicate[1].returncode)
    assert "no project 'nope'" in no_project.stderr
    assert "no endpoint 'ghost'" in no_endpoint.stderr
    assert "already has an endpoint named 'm'" in " ".join(duplicate[1].stderr.split())


def test_live_config_shows_defaults_then_changes_only_what_is_given(project_db: str) -> None:
    shown = _cli(project_db, "live-config", "hh-review", "--json")
    assert 0 == shown.returncode, shown.stderr
    assert collect.LiveConfig().model_dump(mode="json") == json.loads(shown.stdout)
    first = _cli(project_db, "live-config", "hh-review", "--modes", "chat,arena", "--k", "3",
                 "--sampling", "temperatures", "--temperatures", "0.2,0.7,1.1",
                 "--turn-limit", "8", "--arena-policy", "fewest_battles",
                 "--leaderboard-for-annotators", "--no-prompt-pool")
    assert 0 == first.returncode, first.stderr
    second = _cli(project_db, "live-config", "hh-review", "--turn-limit", "4", "--json")
    assert 0 == second.returncode, second.stderr
    assert {"modes": ["chat", "arena"], "k": 3, "sampling": "temperatures",
            "temperatures": [0.2, 0.7, 1.1], "turn_limit": 4, "arena_policy": "fewest_battles",
            "leaderboard_for_annotators": True, "prompt_pool": False} == json.loads(second.stdout)
    off = _cli(project_db, "live-config", "hh-review", "--modes", "none", "--json")
    assert [] == json.loads(off.stdout)["modes"]


@pytest.mark.parametrize(("args", "field"), [
    (("--k", "7"), "k"),
    (("--modes", "chat,battle"), "modes[1]"),
    (("--temperatures", "hot"), "temperatures"),
    (("--sampling", "temperatures", "--k", "4", "--temperatures", "0.5"), None),
])
def test_bad_live_config_fails_and_keeps_the_stored_one(ws: str, args: tuple[str, ...],
                                                        field: str | None) -> None:
    before = _stored(ws)
    proc = run_cli("projects", "live-config", "hh-review", *args, "-w", ws)
    assert proc.returncode in (1, 2)
    if field:
        assert f'field "{field}"' in " ".join(proc.stderr.split())
    assert before == _stored(ws)


def test_help_teaches_with_an_example() -> None:
    for args in (("endpoints", "add"), ("endpoints", "update"), ("endpoints", "list"),
                 ("endpoints", "remove"), ("live-config",)):
        proc = run_cli("projects", *args, "--help")
        assert 0 == proc.returncode, proc.stderr
        assert "Example: preflab projects " + " ".join(args) in " ".join(proc.stdout.split())
    add_help = run_cli("projects", "endpoints", "add", "--help").stdout
    assert "--api-key-env" in add_help and "--api-key " not in add_help
