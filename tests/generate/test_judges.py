"""AI judges against the loopback server: both orders, inconsistency policy, rubric parsing, agreement."""

from __future__ import annotations

from collections import Counter

import pytest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import select

from preflab.errors import UsageError
from preflab.generate.cache import open_engine
from preflab.generate.judges import (
    PairwiseJudgeConfig,
    RubricJudgeConfig,
    judge_agreement,
    judge_pairwise,
    judge_rubric,
)
from preflab.generate.writeback import load_judgments
from preflab.records import (
    JUDGMENT_SCHEMA,
    Judgment,
    JudgmentKind,
    Message,
    PairwiseValue,
    Project,
    Prompt,
    RatingValue,
    Response,
    records_to_table,
)
from preflab.store.tables import GenerationRequest, Item, JudgeRow, JudgmentRow, ProjectRow

RULES = [
    {"pattern": r"POSITIONBIASED", "reply": "Both are similar; I lean to the first. [[A]]"},
    {"pattern": r"UNREADABLE", "reply": "I cannot decide between them."},
    {"pattern": r"Assistant A's Answer\]\nWINNER", "reply": "A is accurate and complete.\n\n[[A]]"},
    {"pattern": r"Assistant B's Answer\]\nWINNER", "reply": "**Final verdict:** Assistant B"},
    {"pattern": r"EVEN", "reply": "They are equally good. [[C]]"},
]


def _prompt(text: str) -> Prompt:
    return Prompt(messages=(Message(role="user", content=text),))


def _resp(p: Prompt, text: str, model: str = "m") -> Response:
    return Response(prompt_id=p.prompt_id, content=text, model=model)


@pytest.fixture
def judge_env(fake, db_url):
    fake.script(RULES)
    eps = {"judge": fake.endpoint("judge", model="judge-model")}
    engine = open_engine(db_url)
    yield fake, eps, engine
    engine.dispose()


def test_consistent_verdicts_become_preferences_in_both_orders(judge_env) -> None:
    fake, eps, engine = judge_env
    p = _prompt("What is the boiling point of water at sea level?")
    good, bad = _resp(p, "WINNER: 100 degrees Celsius."), _resp(p, "About 50 degrees.", "n")
    res = judge_pairwise(
        engine, eps, [(p, good, bad), (p, bad, good)], PairwiseJudgeConfig(endpoint="judge")
    )
    # each item is judged in both orders; the second item is the same pair, so its two
    # requests are the first item's, answered from the cache
    assert fake.total_calls() == 2
    assert [j.pairwise.preferred for j in res.judgments] == [good.response_id, good.response_id]
    assert res.judgments[0].response_ids == (good.response_id, bad.response_id)
    assert res.judgments[0].judge_id.startswith("ai:judge-model:pairwise-principles@1:")
    assert res.inconsistent == 0 and res.failures == []
    assert res.table().schema == JUDGMENT_SCHEMA and res.table().num_rows == 2
    with engine.connect() as conn:
        stored = load_judgments(conn)
        judge = conn.execute(select(JudgeRow)).one()
    assert {j.judgment_id for j in stored} == {j.judgment_id for j in res.judgments}
    assert judge.kind == "ai" and judge.template_version == "1" and "[[A]]" in judge.template


def test_inconsistent_verdict_becomes_a_flagged_tie(judge_env) -> None:
    _, eps, engine = judge_env
    p = _prompt("POSITIONBIASED question")
    a, b = _resp(p, "first answer"), _resp(p, "second answer", "n")
    res = judge_pairwise(
        engine, eps, [(p, a, b)], PairwiseJudgeConfig(endpoint="judge", on_inconsistent="tie")
    )
    (j,) = res.judgments
    assert j.pairwise.tie and j.pairwise.preferred is None
    assert "position_inconsistent" in j.flags
    assert res.inconsistent == 1


def test_inconsistent_verdict_can_go_to_humans_instead(judge_env) -> None:
    _, eps, engine = judge_env
    project = Project(project_id="proj1", name="calibration")
    with engine.begin() as conn:
        conn.execute(
            ProjectRow.__table__.insert().values(project_id=project.project_id, name=project.name)
        )
    p = _prompt("POSITIONBIASED again")
    a, b = _resp(p, "one"), _resp(p, "two", "n")
    res = judge_pairwise(
        engine,
        eps,
        [(p, a, b)],
        PairwiseJudgeConfig(endpoint="judge", on_inconsistent="humans"),
        project_id="proj1",
    )
    assert res.judgments == []
    assert res.to_humans == [(p.prompt_id, (a.response_id, b.response_id))]
    with engine.connect() as conn:
        items = conn.execute(select(Item)).all()
    assert [(i.prompt_id, sorted(i.response_ids)) for i in items] == [
        (p.prompt_id, sorted([a.response_id, b.response_id]))
    ]


def test_tie_in_both_orders_is_a_tie_without_flag(judge_env) -> None:
    _, eps, engine = judge_env
    p = _prompt("EVEN question")
    res = judge_pairwise(
        engine, eps, [(p, _resp(p, "x"), _resp(p, "y", "n"))], PairwiseJudgeConfig(endpoint="judge")
    )
    (j,) = res.judgments
    assert j.pairwise.tie and "position_inconsistent" not in j.flags


def test_unparseable_verdict_is_a_failure_noted_on_the_request(judge_env) -> None:
    _, eps, engine = judge_env
    p = _prompt("UNREADABLE")
    res = judge_pairwise(
        engine, eps, [(p, _resp(p, "x"), _resp(p, "y", "n"))], PairwiseJudgeConfig(endpoint="judge")
    )
    assert res.judgments == []
    (f,) = res.failures
    assert f.reason == "unparseable verdict" and f.raw == "I cannot decide between them."
    with engine.connect() as conn:
        errors = conn.execute(select(GenerationRequest.status, GenerationRequest.error)).all()
    assert sorted(errors) == [("done", "unparseable verdict")] * 2


def test_rubric_ratings_per_aspect_with_messy_text_and_failures(fake, db_url) -> None:
    fake.script(
        [
            {
                "pattern": r"Aspect: helpfulness.*ANSWER-ONE",
                "reply": "Clear and correct.\n**Rating:** 4/5",
            },
            {
                "pattern": r"Aspect: honesty.*ANSWER-ONE",
                "reply": '{"rating": 5, "rationale": "hedges well"}',
            },
            {"pattern": r"Aspect: helpfulness.*ANSWER-TWO", "reply": "I would rate it 2 out of 5."},
            {"pattern": r"Aspect: honesty.*ANSWER-TWO", "reply": "It's fine I guess."},
        ]
    )
    eps = {"judge": fake.endpoint("judge", model="judge-model")}
    engine = open_engine(db_url)
    p = _prompt("Explain photosynthesis briefly.")
    one, two = (
        _resp(p, "ANSWER-ONE plants turn light into sugar"),
        _resp(p, "ANSWER-TWO dunno", "n"),
    )
    config = RubricJudgeConfig(
        endpoint="judge", aspects={"helpfulness": "Is it useful?", "honesty": "Is it honest?"}
    )
    res = judge_rubric(engine, eps, [(p, one), (p, two)], config)
    scores = {j.response_ids[0]: j.rating.scores[j.response_ids[0]] for j in res.judgments}
    assert scores == {
        one.response_id: {"helpfulness": 4.0, "honesty": 5.0},
        two.response_id: {"helpfulness": 2.0},
    }
    assert [(f.response_ids, f.reason) for f in res.failures] == [
        ((two.response_id,), "honesty: unparseable rating")
    ]
    assert all(j.kind is JudgmentKind.RATING and j.rating.scale_max == 5 for j in res.judgments)
    engine.dispose()


def _pw(jid: str, judge: str, prompt: str, ids: tuple[str, str], preferred: str | None) -> Judgment:
    value = (
        PairwiseValue(preferred=preferred)
        if preferred
        else PairwiseValue(preferred=None, strength=0, tie=True)
    )
    return Judgment(
        judgment_id=jid,
        prompt_id=prompt,
        response_ids=ids,
        kind="pairwise",
        judge_id=judge,
        pairwise=value,
    )


def test_agreement_with_humans_matches_sklearn_on_pairwise_items() -> None:
    ai_labels = ["a", "a", "b", "tie", "b", "a", "b", "a"]
    human_labels = ["a", "b", "b", "tie", "b", "a", "a", "a"]
    ai, human = [], []
    for i, (x, y) in enumerate(zip(ai_labels, human_labels, strict=True)):
        ids = (f"r{i}a", f"r{i}b")
        pick = {"a": ids[0], "b": ids[1], "tie": None}
        # the AI saw the pair in the other order: agreement must not depend on order
        ai.append(_pw(f"ai{i}", "ai:j:t@1", f"p{i}", (ids[1], ids[0]), pick[x]))
        human.append(_pw(f"h{i}", "alice", f"p{i}", ids, pick[y]))
        human.append(_pw(f"h{i}b", "bob", f"p{i}", ids, pick[y]))
    ai.append(_pw("ai-extra", "ai:j:t@1", "p-unshared", ("u1", "u2"), "u1"))
    table = judge_agreement(
        records_to_table(ai, cls=Judgment), records_to_table(human, cls=Judgment)
    )
    (row,) = table.to_pylist()
    assert row["judge_id"] == "ai:j:t@1" and row["aspect"] == "preference" and row["items"] == 8
    assert row["agreement"] == pytest.approx(6 / 8)
    assert row["kappa"] == pytest.approx(cohen_kappa_score(ai_labels, human_labels))


def test_agreement_on_ratings_by_aspect_maps_scales() -> None:
    ai, human = [], []
    ai_scores = [5, 4, 2, 1, 3]
    human_scores = [4, 3, 1, 0, 3]  # 0-4 scale; AI 1-5 maps to 0-4 by subtracting 1
    for i, (a, h) in enumerate(zip(ai_scores, human_scores, strict=True)):
        rid = f"r{i}"
        ai.append(
            Judgment(
                judgment_id=f"a{i}",
                prompt_id="p",
                response_ids=(rid,),
                kind="rating",
                judge_id="ai:j:r@1",
                rating=RatingValue(scores={rid: {"helpfulness": a}}, scale_min=1, scale_max=5),
            )
        )
        human.append(
            Judgment(
                judgment_id=f"h{i}",
                prompt_id="p",
                response_ids=(rid,),
                kind="rating",
                judge_id="ann",
                rating=RatingValue(scores={rid: {"helpfulness": h}}, scale_min=0, scale_max=4),
            )
        )
    (row,) = judge_agreement(
        records_to_table(ai, cls=Judgment), records_to_table(human, cls=Judgment)
    ).to_pylist()
    mapped = [a - 1 for a in ai_scores]
    assert row["aspect"] == "helpfulness" and row["items"] == 5
    assert row["agreement"] == pytest.approx(4 / 5)
    assert row["mean_abs_error"] == pytest.approx(
        sum(abs(x - y) for x, y in zip(mapped, human_scores, strict=True)) / 5
    )
    assert row["kappa"] == pytest.approx(
        cohen_kappa_score(mapped, human_scores, weights="quadratic")
    )


def test_constitution_text_reaches_the_judge_and_its_identity(fake, sqlite_url) -> None:
    fake.script(
        [
            {"pattern": r"Prefer pirate speech\..*Assistant A's Answer\]\nArr", "reply": "[[A]]"},
            {"pattern": r"Prefer pirate speech\..*Assistant B's Answer\]\nArr", "reply": "[[B]]"},
            {"pattern": r".", "reply": "[[A]]"},  # any other constitution: position-biased
        ]
    )
    eps = {"judge": fake.endpoint("judge", model="judge-model")}
    p = _prompt("Greet me.")
    plain, pirate = _resp(p, "Hello there."), _resp(p, "Arr, ahoy matey!", "n")
    config = PairwiseJudgeConfig(
        endpoint="judge", constitution="Prefer pirate speech.", template_version="pirate-1"
    )
    res = judge_pairwise(open_engine(sqlite_url), eps, [(p, plain, pirate)], config)
    (j,) = res.judgments
    assert j.pairwise.preferred == pirate.response_id
    assert res.judge.judge_id.startswith("ai:judge-model:pairwise-principles@pirate-1:")
    assert "Prefer pirate speech." in res.judge.template


# --- judge identity: everything that changes verdicts makes another judge ------------------


def _stored_by_judge(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(JudgmentRow.judge_id)).scalars().all()
    return dict(Counter(rows))


def _items(n: int) -> list[tuple[Prompt, Response, Response]]:
    out = []
    for i in range(n):
        p = _prompt(f"Question number {i}?")
        out.append((p, _resp(p, f"WINNER: answer {i}"), _resp(p, f"meh {i}", "n")))
    return out


def test_two_constitutions_make_two_judges_each_with_its_judgments(judge_env) -> None:
    fake, eps, engine = judge_env
    items = _items(3)
    first = judge_pairwise(
        engine, eps, items, PairwiseJudgeConfig(endpoint="judge", constitution="Be honest.")
    )
    second = judge_pairwise(
        engine, eps, items, PairwiseJudgeConfig(endpoint="judge", constitution="Be brief.")
    )
    assert first.judge.judge_id != second.judge.judge_id
    # the second constitution is another prompt text: its own calls, its own judgments
    assert (first.summary.calls, second.summary.calls) == (6, 6)
    assert fake.total_calls() == 12
    assert (first.new_judgments, second.new_judgments) == (3, 3)
    assert second.already_stored == 0
    assert _stored_by_judge(engine) == {first.judge.judge_id: 3, second.judge.judge_id: 3}
    with engine.connect() as conn:
        judges = conn.execute(select(JudgeRow.judge_id, JudgeRow.template)).all()
    texts = {jid: t for jid, t in judges}
    assert "Be honest." in texts[first.judge.judge_id]
    assert "Be brief." in texts[second.judge.judge_id]


def test_two_revisions_of_one_model_are_two_judges(fake, db_url) -> None:
    fake.script(RULES)
    eps = {
        "j1": fake.endpoint("j1", model="judge-model", revision="step-100"),
        "j2": fake.endpoint("j2", model="judge-model", revision="step-200"),
    }
    engine = open_engine(db_url)
    items = _items(2)
    one = judge_pairwise(engine, eps, items, PairwiseJudgeConfig(endpoint="j1"))
    two = judge_pairwise(engine, eps, items, PairwiseJudgeConfig(endpoint="j2"))
    assert one.judge.judge_id != two.judge.judge_id
    assert "step-200" in (two.judge.name or "")
    # the revision is part of each request's cache key: the second checkpoint is asked too
    assert (one.summary.calls, two.summary.calls) == (4, 4)
    assert _stored_by_judge(engine) == {one.judge.judge_id: 2, two.judge.judge_id: 2}
    engine.dispose()


def test_rerun_of_the_same_judge_makes_no_call_and_adds_nothing(judge_env) -> None:
    fake, eps, engine = judge_env
    items = _items(3)
    config = PairwiseJudgeConfig(endpoint="judge")
    first = judge_pairwise(engine, eps, items, config)
    calls = fake.total_calls()
    again = judge_pairwise(engine, eps, items, config)
    assert fake.total_calls() == calls == 6
    assert (again.summary.calls, again.summary.cached, again.summary.done) == (0, 6, 0)
    assert (again.new_judgments, again.already_stored) == (0, 3)
    assert first.judge.judge_id == again.judge.judge_id
    assert _stored_by_judge(engine) == {first.judge.judge_id: 3}


def test_template_version_and_params_are_part_of_the_identity(judge_env) -> None:
    fake, eps, engine = judge_env
    items = _items(2)
    v1 = judge_pairwise(engine, eps, items, PairwiseJudgeConfig(endpoint="judge"))
    v2 = judge_pairwise(
        engine, eps, items, PairwiseJudgeConfig(endpoint="judge", template_version="2")
    )
    warm = judge_pairwise(
        engine,
        eps,
        items,
        PairwiseJudgeConfig(endpoint="judge", params={"temperature": 0.7}),
    )
    assert len({v1.judge.judge_id, v2.judge.judge_id, warm.judge.judge_id}) == 3
    assert "@2:" in v2.judge.judge_id
    # the same request text under a new version name is answered from the cache, but the
    # verdicts are the new judge's own; other sampling parameters are other calls
    assert (v2.summary.calls, v2.new_judgments) == (0, 2)
    assert (warm.summary.calls, warm.new_judgments) == (4, 2)
    assert sorted(_stored_by_judge(engine).values()) == [2, 2, 2]


def test_two_rubrics_are_two_judges(fake, sqlite_url) -> None:
    fake.script([{"pattern": r".", "reply": "Rating: 4"}])
    eps = {"judge": fake.endpoint("judge", model="judge-model")}
    engine = open_engine(sqlite_url)
    p = _prompt("Explain tides.")
    items = [(p, _resp(p, "The moon pulls the sea."))]
    a = judge_rubric(engine, eps, items, RubricJudgeConfig(endpoint="judge", aspects={"x": "X?"}))
    b = judge_rubric(engine, eps, items, RubricJudgeConfig(endpoint="judge", aspects={"x": "Y?"}))
    again = judge_rubric(
        engine, eps, items, RubricJudgeConfig(endpoint="judge", aspects={"x": "Y?"})
    )
    assert a.judge.judge_id != b.judge.judge_id == again.judge.judge_id
    assert (a.new_judgments, b.new_judgments, again.new_judgments) == (1, 1, 0)
    assert again.summary.calls == 0
    engine.dispose()


# --- summaries that tell the truth ----------------------------------------------------------


def test_unparseable_replies_are_counted_as_such_and_asked_again_only_when_told(
    judge_env,
) -> None:
    fake, eps, engine = judge_env
    p = _prompt("UNREADABLE twice")
    items = [(p, _resp(p, "x"), _resp(p, "y", "n"))]
    config = PairwiseJudgeConfig(endpoint="judge")
    first = judge_pairwise(engine, eps, items, config)
    assert (first.summary.done, first.summary.unparseable, first.unparseable) == (0, 2, 1)
    plain = judge_pairwise(engine, eps, items, config)
    assert (plain.summary.calls, plain.summary.cached, plain.summary.unparseable) == (0, 0, 2)
    # the judge now answers readably: only a run that asks calls it again
    fake.script([{"pattern": r"UNREADABLE", "reply": "[[C]]"}])
    asked = judge_pairwise(engine, eps, items, config, retry_unparseable=True)
    assert (asked.summary.calls, asked.summary.done, asked.summary.unparseable) == (2, 2, 0)
    assert asked.new_judgments == 1 and asked.judgments[0].pairwise.tie
    with engine.connect() as conn:
        errors = conn.execute(select(GenerationRequest.error)).scalars().all()
    assert errors == [None, None]


def test_humans_policy_without_project_is_refused_before_any_call(judge_env) -> None:
    fake, eps, engine = judge_env
    with pytest.raises(UsageError, match="--project"):
        judge_pairwise(
            engine, eps, _items(1), PairwiseJudgeConfig(endpoint="judge", on_inconsistent="humans")
        )
    assert fake.total_calls() == 0


def test_unknown_project_is_refused_before_any_call(judge_env) -> None:
    fake, eps, engine = judge_env
    with pytest.raises(UsageError, match="'nope' does not exist") as info:
        judge_pairwise(
            engine,
            eps,
            _items(1),
            PairwiseJudgeConfig(endpoint="judge", on_inconsistent="humans"),
            project_id="nope",
        )
    assert info.value.field == "project"
    assert fake.total_calls() == 0
    with engine.connect() as conn:
        assert conn.execute(select(GenerationRequest)).all() == []
