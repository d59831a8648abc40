"""Critique and revise: response → critique → revision, revision preferred over the original."""

from __future__ import annotations

from sqlalchemy import select

from preflab.generate.cache import open_engine
from preflab.generate.revise import HARMLESS_PRINCIPLE, Principle, critique_and_revise
from preflab.records import Message, Origin, Prompt, Response
from preflab.store.tables import ResponseRow


def test_revision_is_chosen_over_the_original(fake, db_url) -> None:
    fake.script(
        [
            {"pattern": "^Identify specific ways", "reply": "The response insults the user."},
            {
                "pattern": "^Please rewrite",
                "reply": "I'm sorry you're stuck; here is how to reset the router.",
            },
        ]
    )
    eps = {"ckpt": fake.endpoint("ckpt", model="ckpt", revision="step-9")}
    engine = open_engine(db_url)
    p = Prompt(messages=(Message(role="user", content="My router is broken, help."),))
    original = Response(
        prompt_id=p.prompt_id, content="Figure it out yourself, idiot.", model="ckpt"
    )
    res = critique_and_revise(engine, eps, [(p, original)], "ckpt", HARMLESS_PRINCIPLE)
    (revised,) = res.revisions
    assert revised.origin is Origin.REVISION and revised.content.startswith("I'm sorry")
    assert revised.params == {"principle": "harmless", "revises": original.response_id}
    (j,) = res.judgments
    assert j.pairwise.preferred == revised.response_id
    assert j.response_ids == (original.response_id, revised.response_id)
    assert j.comment == "The response insults the user." and "critique_revision" in j.flags
    assert fake.total_calls() == 2
    # the revision request carried the whole exchange: prompt, response, critique request, critique
    with engine.connect() as conn:
        origins = dict(conn.execute(select(ResponseRow.response_id, ResponseRow.origin)).all())
    assert origins == {original.response_id: "import", revised.response_id: "revision"}
    again = critique_and_revise(engine, eps, [(p, original)], "ckpt", HARMLESS_PRINCIPLE)
    assert fake.total_calls() == 2 and again.critique_summary.cached == 1
    engine.dispose()


def test_revision_identical_to_the_original_is_not_paired(fake, sqlite_url) -> None:
    fake.script(
        [
            {"pattern": "^Critique", "reply": "Nothing wrong."},
            {"pattern": "^Rewrite", "reply": "Paris is the capital of France."},
        ]
    )
    eps = {"ckpt": fake.endpoint("ckpt", model="ckpt")}
    p = Prompt(messages=(Message(role="user", content="Capital of France?"),))
    original = Response(
        prompt_id=p.prompt_id, content="Paris is the capital of France.", model="ckpt"
    )
    principle = Principle("accuracy", "Critique the accuracy.", "Rewrite it accurately.")
    res = critique_and_revise(open_engine(sqlite_url), eps, [(p, original)], "ckpt", principle)
    assert res.revisions == [] and res.judgments == []
    assert res.skipped == {original.response_id: "revision is identical to the original"}
