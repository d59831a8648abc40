"""Generated records written to the store and read back unchanged, on SQLite and PostgreSQL."""

from __future__ import annotations

from preflab.generate.cache import open_engine
from preflab.generate.writeback import (
    judgments_table,
    load_judgments,
    load_prompts,
    load_responses,
    save_judges,
    save_judgments,
    save_prompts,
    save_responses,
)
from preflab.records import (
    JUDGMENT_SCHEMA,
    Judge,
    Judgment,
    Message,
    Origin,
    PairwiseValue,
    Prompt,
    RatingValue,
    Response,
    Span,
)
from preflab.store.unit_of_work import write_scope


def test_records_round_trip_and_rewrites_are_no_ops(db_url) -> None:
    engine = open_engine(db_url)
    p = Prompt(
        messages=(Message(role="user", content="2+2?"),),
        constraints=('{"id": "x", "kwargs": {}}',),
        reference="4",
        tags=("math",),
    )
    a = Response(
        prompt_id=p.prompt_id,
        content="4",
        model="m",
        model_revision="r1",
        params={"seed": 1, "temperature": 0.7},
        origin=Origin.MODEL,
    )
    b = Response(prompt_id=p.prompt_id, content="5", model="m", origin=Origin.REVISION)
    judgments = [
        Judgment(
            judgment_id="j1",
            prompt_id=p.prompt_id,
            response_ids=(a.response_id, b.response_id),
            kind="pairwise",
            judge_id="verifier:math",
            pairwise=PairwiseValue(preferred=a.response_id),
            flags=("verifier",),
        ),
        Judgment(
            judgment_id="j2",
            prompt_id=p.prompt_id,
            response_ids=(a.response_id,),
            kind="rating",
            judge_id="ai:j:r@1",
            rating=RatingValue(scores={a.response_id: {"honesty": 4.0}}, scale_min=1, scale_max=5),
        ),
    ]
    for _ in range(2):
        with write_scope(engine) as conn:
            save_prompts(conn, [p])
            save_responses(conn, [a, b])
            save_judges(conn, [Judge(judge_id="verifier:math", kind="verifier")])
            save_judgments(conn, judgments)
    with engine.connect() as conn:
        assert load_prompts(conn) == [p]
        assert sorted(load_responses(conn), key=lambda r: r.response_id) == sorted(
            [a, b], key=lambda r: r.response_id
        )
        assert load_judgments(conn) == judgments
    assert judgments_table(judgments).schema == JUDGMENT_SCHEMA
    assert judgments_table([]).num_rows == 0
    engine.dispose()


def test_spans_and_critique_of_saved_judgments_load_back(db_url) -> None:
    engine = open_engine(db_url)
    p = Prompt(messages=(Message(role="user", content="Capital of France?"),))
    a = Response(prompt_id=p.prompt_id, content="Paris.", model="m")
    b = Response(prompt_id=p.prompt_id, content="Berlin, I think.", model="n")
    judgment = Judgment(
        judgment_id="j1",
        prompt_id=p.prompt_id,
        response_ids=(b.response_id, a.response_id),
        kind="pairwise",
        judge_id="human:alice",
        pairwise=PairwiseValue(preferred=a.response_id),
        spans=(Span(response_id=b.response_id, start=0, end=6, label="factual error",
                    text="Berlin"),),
        critique="Berlin is the capital of Germany.",
    )
    with write_scope(engine) as conn:
        save_prompts(conn, [p])
        save_responses(conn, [a, b])
        save_judges(conn, [Judge(judge_id="human:alice", kind="human")])
        save_judgments(conn, [judgment])
    with engine.connect() as conn:
        assert [judgment] == load_judgments(conn)
    engine.dispose()
