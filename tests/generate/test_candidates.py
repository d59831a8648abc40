"""Candidates: n samples per prompt per model, the on-policy mix rule, duplicates never paired."""

from __future__ import annotations

from sqlalchemy import select

from preflab.generate.cache import open_engine
from preflab.generate.candidates import (
    MixRule,
    candidate_pairs,
    find_duplicate_responses,
    generate_candidates,
    plan_candidates,
)
from preflab.records import RESPONSE_SCHEMA, Message, Origin, Prompt, Response
from preflab.store.tables import PromptRow, ResponseRow


def _prompts(*texts: str) -> list[Prompt]:
    return [Prompt(messages=(Message(role="user", content=t),), source="test") for t in texts]


def test_n_samples_per_prompt_per_model_tagged_with_model_and_revision(fake, db_url) -> None:
    eps = {
        "policy": fake.endpoint(
            "policy", model="org/policy", revision="step-1200", params={"temperature": 0.8}
        ),
        "other": fake.endpoint("other", model="org/other"),
    }
    engine = open_engine(db_url)
    prompts = _prompts("What is 2+2?", "Name a colour.")
    result = generate_candidates(engine, prompts, eps, n=2, seed=10)
    assert result.summary.done == 8 and len(result.responses) == 8
    by = {(r.prompt_id, r.model, r.params["seed"]) for r in result.responses}
    assert by == {
        (p.prompt_id, m, s) for p in prompts for m in ("org/policy", "org/other") for s in (10, 11)
    }
    policy = [r for r in result.responses if r.model == "org/policy"]
    assert {r.model_revision for r in policy} == {"step-1200"}
    assert all(r.origin is Origin.MODEL and r.params["temperature"] == 0.8 for r in policy)
    assert result.table().schema == RESPONSE_SCHEMA
    with engine.connect() as conn:
        assert len(conn.execute(select(ResponseRow)).all()) == 8
        assert len(conn.execute(select(PromptRow)).all()) == 2
    engine.dispose()


def test_mix_rule_gives_every_prompt_an_on_policy_response(fake) -> None:
    eps = {name: fake.endpoint(name, model=name) for name in ("ckpt", "a", "b", "c", "d", "e")}
    prompts = _prompts(*(f"prompt {i}" for i in range(20)))
    reqs = plan_candidates(
        prompts, eps, n=1, mix=MixRule(on_policy="ckpt", models_per_prompt=2), seed=3
    )
    per_prompt: dict[str, list[str]] = {}
    for r in reqs:
        per_prompt.setdefault(r.meta["prompt_id"], []).append(r.endpoint)
    assert len(per_prompt) == 20
    for endpoints in per_prompt.values():
        assert endpoints.count("ckpt") == 1 and len(endpoints) == 3
    # the draw from the pool varies across prompts but is reproducible
    assert len({tuple(sorted(v)) for v in per_prompt.values()}) > 1
    again = plan_candidates(
        prompts, eps, n=1, mix=MixRule(on_policy="ckpt", models_per_prompt=2), seed=3
    )
    assert [r.key for r in again] == [r.key for r in reqs]


def test_prompts_left_without_on_policy_response_are_reported(fake, sqlite_url) -> None:
    eps = {
        "ckpt": fake.endpoint("ckpt", model="ckpt", max_attempts=1),
        "other": fake.endpoint("other", model="other"),
    }
    fake.script([{"pattern": "xyz", "reply": "ok"}])
    prompts = _prompts("fine prompt", "broken [[fault:500]]")
    result = generate_candidates(
        open_engine(sqlite_url), prompts, eps, mix=MixRule(on_policy="ckpt")
    )
    assert result.missing_on_policy == [prompts[1].prompt_id]
    assert result.summary.failed == 2


def test_duplicate_responses_are_detected_and_not_paired(fake, sqlite_url) -> None:
    fake.script([{"pattern": "capital", "reply": "The capital of France is Paris."}])
    eps = {name: fake.endpoint(name, model=name) for name in ("a", "b", "c")}
    prompts = _prompts("What is the capital of France?", "Tell me a joke.")
    result = generate_candidates(open_engine(sqlite_url), prompts, eps, n=1)
    capital = prompts[0].prompt_id
    groups = [g for g in result.duplicates if g.prompt_id == capital]
    assert len(groups) == 1 and len(groups[0].dropped) == 2
    pairs = candidate_pairs(result.responses, result.duplicates)
    assert [p for p in pairs if p[0].prompt_id == capital] == []
    assert len([p for p in pairs if p[0].prompt_id == prompts[1].prompt_id]) == 3


def test_near_duplicates_are_caught_by_similarity() -> None:
    a = Response(
        prompt_id="p",
        content="Sure! Here is a haiku about autumn leaves falling slowly down.",
        model="x",
    )
    b = Response(
        prompt_id="p",
        content="Sure! Here is a haiku about autumn leaves falling slowly down!",
        model="y",
    )
    c = Response(prompt_id="p", content="No.", model="z")
    groups = find_duplicate_responses([a, b, c])
    assert [(g.kept, g.dropped) for g in groups] == [(a.response_id, (b.response_id,))]
    assert {frozenset((x.response_id, y.response_id)) for x, y in candidate_pairs([a, b, c])} == {
        frozenset((a.response_id, c.response_id))
    }


def test_same_text_to_different_prompts_is_not_a_duplicate() -> None:
    a = Response(prompt_id="p1", content="Yes.", model="x")
    b = Response(prompt_id="p2", content="Yes.", model="x")
    assert find_duplicate_responses([a, b]) == []


def test_identical_samples_merge_into_one_response_and_are_counted(fake, sqlite_url) -> None:
    fake.script([{"pattern": "weather", "reply": "It is sunny."}])
    eps = {"a": fake.endpoint("a", model="a")}
    prompts = _prompts("How is the weather?", "Name a colour.")
    result = generate_candidates(open_engine(sqlite_url), prompts, eps, n=3)
    # three seeds of the same model: the weather answers are one text, so one response
    assert fake.total_calls() == 6
    assert result.merged == result.summary.merged == 2
    assert len(result.responses) == 1 + 3
    assert result.summary.done == 6
