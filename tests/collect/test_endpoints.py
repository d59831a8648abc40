"""Project endpoints and the live config: validation, storage, and no key ever stored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from preflab import collect
from preflab.collect import EndpointCreate, EndpointUpdate, LiveConfig
from preflab.collect.core_tables import PROJECT_ENDPOINTS, PROJECTS
from preflab.collect.endpoints import NO_KEYS_MESSAGE
from preflab.errors import ConfigError, ConflictError, InputError, NotFoundError
from preflab.generate import EndpointConfig

from .conftest import Seeded

BASE = {"name": "small", "base_url": "http://127.0.0.1:8000/v1", "model": "tiny"}


def _rows(seeded: Seeded) -> list[tuple]:
    with seeded.db.connect() as conn:
        return [tuple(r) for r in conn.execute(select(PROJECT_ENDPOINTS)
                                               .order_by(PROJECT_ENDPOINTS.c.name))]


def test_added_endpoint_reads_back_with_every_field(seeded: Seeded) -> None:
    spec = collect.parse_endpoint_create({
        **BASE, "revision": "step-1200", "params": {"temperature": 0.7, "max_tokens": 256},
        "concurrency": 8, "timeout": 30, "api_key_env": "MY_KEY", "enabled": False})
    with seeded.db.transaction() as conn:
        added = collect.add_endpoint(conn, seeded.project_id, spec)
    with seeded.db.connect() as conn:
        got = collect.get_endpoint(conn, seeded.project_id, "small")
    assert added == got
    assert (got.base_url, got.model, got.revision, got.params, got.concurrency, got.timeout,
            got.api_key_env, got.enabled) == (
        "http://127.0.0.1:8000/v1", "tiny", "step-1200", {"temperature": 0.7, "max_tokens": 256},
        8, 30.0, "MY_KEY", False)


def test_duplicate_name_is_a_conflict_and_writes_nothing(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        collect.add_endpoint(conn, seeded.project_id, EndpointCreate(**BASE))
    before = _rows(seeded)
    with pytest.raises(ConflictError) as exc, seeded.db.transaction() as conn:
        collect.add_endpoint(conn, seeded.project_id, EndpointCreate(**{**BASE, "model": "x"}))
    assert exc.value.field == "name"
    assert before == _rows(seeded)


def test_same_name_in_two_projects_is_allowed(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        other = collect.create_project(conn, collect.ProjectCreate(name="Other"))
        collect.add_endpoint(conn, seeded.project_id, EndpointCreate(**BASE))
        collect.add_endpoint(conn, other.project_id, EndpointCreate(**BASE))
    assert 2 == len(_rows(seeded))


def test_add_to_missing_project_is_not_found(seeded: Seeded) -> None:
    with pytest.raises(NotFoundError), seeded.db.transaction() as conn:
        collect.add_endpoint(conn, "nope", EndpointCreate(**BASE))


@pytest.mark.parametrize(("change", "field"), [
    ({"name": "has space"}, "name"),
    ({"name": ""}, "name"),
    ({"base_url": "ftp://host/v1"}, "base_url"),
    ({"base_url": "not a url"}, "base_url"),
    ({"base_url": "http:///v1"}, "base_url"),
    ({"base_url": "http://127.0.0.1:99999/v1"}, "base_url"),
    ({"base_url": "https://user:sk-secret@host/v1"}, "base_url"),
    ({"base_url": "https://host/v1?api_key=sk-secret"}, "base_url"),
    ({"model": "  "}, "model"),
    ({"concurrency": -1}, "concurrency"),
    ({"concurrency": 0}, "concurrency"),
    ({"concurrency": 257}, "concurrency"),
    ({"timeout": 0}, "timeout"),
    ({"api_key_env": "sk-abc123"}, "api_key_env"),
    ({"api_key_env": "1ABC"}, "api_key_env"),
    ({"api_key_env": "my key"}, "api_key_env"),
    ({"params": {"temperature": 3}}, "params.temperature"),
    ({"params": {"max_tokens": 0}}, "params.max_tokens"),
    ({"params": {"max_tokens": 1.5}}, "params.max_tokens"),
    ({"params": {"stream": False}}, "params.stream"),
    ({"params": {"model": "other"}}, "params.model"),
    ({"unknown": 1}, "unknown"),
])
def test_bad_field_is_refused_naming_the_field(change: dict, field: str) -> None:
    with pytest.raises(InputError) as exc:
        collect.parse_endpoint_create({**BASE, **change})
    assert field == exc.value.field


@pytest.mark.parametrize("name", ["api_key", "key", "token", "secret", "API-Key", "password"])
def test_a_key_field_is_refused_with_the_env_var_advice(name: str) -> None:
    with pytest.raises(InputError) as exc:
        collect.parse_endpoint_create({**BASE, name: "sk-SENTINEL-123"})
    assert (name, NO_KEYS_MESSAGE) == (exc.value.field, exc.value.message)
    assert "sk-SENTINEL-123" not in str(exc.value)


def test_a_key_inside_params_is_refused() -> None:
    with pytest.raises(InputError) as exc:
        collect.parse_endpoint_create({**BASE, "params": {"api_key": "sk-SENTINEL-123"}})
    assert ("params.api_key", NO_KEYS_MESSAGE) == (exc.value.field, exc.value.message)


def test_a_key_pasted_as_the_env_var_name_is_not_echoed() -> None:
    with pytest.raises(InputError) as exc:
        collect.parse_endpoint_create({**BASE, "api_key_env": "sk-SENTINEL-123"})
    assert "sk-SENTINEL-123" not in str(exc.value)
    assert exc.value.value is None


def test_a_key_field_is_refused_by_the_models_themselves() -> None:
    from pydantic import ValidationError

    with pytest.raises((InputError, ValidationError)):
        EndpointCreate(**BASE, api_key="sk-x")  # type: ignore[call-arg]
    with pytest.raises((InputError, ValidationError)):
        EndpointUpdate(token="sk-x")  # type: ignore[call-arg]


def test_update_changes_only_given_fields_and_null_clears_revision(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        collect.add_endpoint(conn, seeded.project_id, EndpointCreate(
            **BASE, revision="r1", params={"temperature": 0.2}, api_key_env="MY_KEY"))
        changed = collect.update_endpoint(conn, seeded.project_id, "small",
                                          collect.parse_endpoint_update(
                                              {"revision": None, "concurrency": 2,
                                               "params": {"top_p": 0.9}}))
    with seeded.db.connect() as conn:
        stored = collect.get_endpoint(conn, seeded.project_id, "small")
    assert changed == stored
    assert (None, 2, {"top_p": 0.9}, "MY_KEY", "tiny") == (
        stored.revision, stored.concurrency, stored.params, stored.api_key_env, stored.model)


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "other"}, "name"),
    ({"model": None}, "model"),
    ({"concurrency": None}, "concurrency"),
    ({"base_url": "file:///etc/passwd"}, "base_url"),
    ({"secret": "x"}, "secret"),
])
def test_bad_update_is_refused_and_changes_nothing(seeded: Seeded, body: dict, field: str) -> None:
    with seeded.db.transaction() as conn:
        collect.add_endpoint(conn, seeded.project_id, EndpointCreate(**BASE))
    before = _rows(seeded)
    with pytest.raises(InputError) as exc:
        collect.parse_endpoint_update(body)
    assert field == exc.value.field
    assert before == _rows(seeded)


def test_update_or_remove_of_missing_endpoint_is_not_found(seeded: Seeded) -> None:
    with pytest.raises(NotFoundError), seeded.db.transaction() as conn:
        collect.update_endpoint(conn, seeded.project_id, "ghost", EndpointUpdate(enabled=False))
    with pytest.raises(NotFoundError), seeded.db.transaction() as conn:
        collect.remove_endpoint(conn, seeded.project_id, "ghost")


def test_disabled_endpoint_is_left_out_of_enabled_list(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        for name in ("b", "a", "c"):
            collect.add_endpoint(conn, seeded.project_id, EndpointCreate(**{**BASE, "name": name}))
        collect.update_endpoint(conn, seeded.project_id, "b", EndpointUpdate(enabled=False))
    with seeded.db.connect() as conn:
        every = [e.name for e in collect.list_endpoints(conn, seeded.project_id)]
        enabled = [e.name for e in collect.list_endpoints(conn, seeded.project_id,
                                                          enabled_only=True)]
    assert (["a", "b", "c"], ["a", "c"]) == (every, enabled)


def test_removed_endpoint_is_gone(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        collect.add_endpoint(conn, seeded.project_id, EndpointCreate(**BASE))
        collect.remove_endpoint(conn, seeded.project_id, "small")
    assert [] == _rows(seeded)


def test_endpoint_config_is_a_streaming_generate_config(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        ep = collect.add_endpoint(conn, seeded.project_id, EndpointCreate(
            **BASE, revision="r", params={"temperature": 0.5}, concurrency=3, timeout=9,
            api_key_env="MY_KEY"))
    cfg = collect.endpoint_config(ep)
    assert isinstance(cfg, EndpointConfig)
    assert (cfg.name, cfg.base_url, cfg.model, cfg.revision, cfg.params, cfg.concurrency,
            cfg.timeout, cfg.api_key_env, cfg.stream) == (
        "small", "http://127.0.0.1:8000/v1", "tiny", "r", {"temperature": 0.5}, 3, 9.0,
        "MY_KEY", True)
    assert "sk-live" == cfg.api_key({"MY_KEY": "sk-live"})


def test_key_status_names_set_or_not_set_never_the_value(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        keyed = collect.add_endpoint(conn, seeded.project_id,
                                     EndpointCreate(**BASE, api_key_env="MY_KEY"))
        keyless = collect.add_endpoint(conn, seeded.project_id,
                                       EndpointCreate(**{**BASE, "name": "local"}))
    assert "set" == collect.api_key_status(keyed, {"MY_KEY": "sk-SENTINEL"})
    assert "not set" == collect.api_key_status(keyed, {})
    assert "none" == collect.api_key_status(keyless, {"MY_KEY": "sk-SENTINEL"})


def test_no_stored_row_holds_the_key(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-SENTINEL-0xC0FFEE")
    with seeded.db.transaction() as conn:
        ep = collect.add_endpoint(conn, seeded.project_id,
                                  EndpointCreate(**BASE, api_key_env="MY_KEY"))
        collect.update_endpoint(conn, seeded.project_id, "small", EndpointUpdate(timeout=5))
    assert "set" == collect.api_key_status(ep)
    assert "sk-SENTINEL-0xC0FFEE" not in json.dumps(_rows(seeded), default=str)


# ---- live config -----------------------------------------------------------------------------

def test_live_config_defaults_when_project_has_none(seeded: Seeded) -> None:
    with seeded.db.connect() as conn:
        project = collect.get_project(conn, seeded.project_id)
    assert LiveConfig() == collect.get_live_config(project)
    assert (["chat"], 2, "models", 5) == (LiveConfig().modes, LiveConfig().k,
                                          LiveConfig().sampling, LiveConfig().turn_limit)


def test_live_config_round_trips_and_keeps_other_config(seeded: Seeded) -> None:
    cfg = collect.parse_live_config({"modes": ["chat", "arena"], "k": 3,
                                     "sampling": "temperatures", "temperatures": [0, 0.7, 1.2],
                                     "turn_limit": 9, "arena_policy": "fewest_battles",
                                     "leaderboard_for_annotators": True, "prompt_pool": False})
    with seeded.db.connect() as conn:
        before = collect.get_project(conn, seeded.project_id).config
    with seeded.db.transaction() as conn:
        project = collect.set_live_config(conn, seeded.project_id, cfg)
    with seeded.db.connect() as conn:
        stored = collect.get_project(conn, seeded.project_id)
    assert cfg == collect.get_live_config(project) == collect.get_live_config(stored)
    assert before == {k: v for k, v in stored.config.items() if k != "live"}


@pytest.mark.parametrize(("body", "field"), [
    ({"k": 1}, "k"),
    ({"k": 5}, "k"),
    ({"modes": ["chat", "battle"]}, "modes[1]"),
    ({"sampling": "random"}, "sampling"),
    ({"turn_limit": 0}, "turn_limit"),
    ({"turn_limit": 51}, "turn_limit"),
    ({"arena_policy": "elo"}, "arena_policy"),
    ({"bogus": True}, "bogus"),
])
def test_bad_live_config_names_the_field(body: dict, field: str) -> None:
    with pytest.raises(InputError) as exc:
        collect.parse_live_config(body)
    assert field == exc.value.field


@pytest.mark.parametrize("body", [
    {"sampling": "temperatures", "k": 3, "temperatures": [0.2, 1.0]},
    {"temperatures": [2.5]},
    {"temperatures": [0.5, 0.5]},
    {"modes": ["chat", "chat"]},
])
def test_inconsistent_live_config_is_refused(body: dict) -> None:
    with pytest.raises(InputError):
        collect.parse_live_config(body)


def test_empty_modes_turns_live_off() -> None:
    assert [] == collect.parse_live_config({"modes": []}).modes


def test_set_live_config_of_missing_project_is_not_found(seeded: Seeded) -> None:
    with pytest.raises(NotFoundError), seeded.db.transaction() as conn:
        collect.set_live_config(conn, "nope", LiveConfig())


def test_a_broken_stored_live_config_is_a_config_error(seeded: Seeded) -> None:
    from sqlalchemy import update

    with seeded.db.transaction() as conn:
        conn.execute(update(PROJECTS).where(PROJECTS.c.project_id == seeded.project_id)
                     .values(config={"live": {"k": 99}}))
    with seeded.db.connect() as conn:
        project = collect.get_project(conn, seeded.project_id)
    with pytest.raises(ConfigError) as exc:
        collect.get_live_config(project)
    assert "config.live.k" == exc.value.field
