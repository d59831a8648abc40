"""The battles of a project: its live arena votes as the arena's battle table (SQLite and PG)."""

from __future__ import annotations

import polars as pl
import pytest
from tests.arena.live_votes import Side, store_vote
from tests.collect.conftest import Seeded

from preflab import collect
from preflab.arena import build_leaderboard, count_markdown
from preflab.collect.battles import BATTLE_COLUMNS, project_battles
from preflab.collect.core_tables import JUDGMENTS
from preflab.errors import InputError
from preflab.records import make_prompt_id, make_response_id

A = Side("ep-alpha", "alpha-7b", "ckpt-100")
B = Side("ep-beta", "beta-13b", None)
C = Side("ep-gamma", "gamma-2", "v2")


def _uid(seeded: Seeded, name: str) -> str:
    with seeded.db.read() as s:
        user = collect.get_user_by_username(s, name)
    assert user is not None
    return user.user_id


def _battles(seeded: Seeded, **kw: bool) -> pl.DataFrame:
    with seeded.db.connect() as conn:
        return project_battles(conn, seeded.project_id, **kw)


def test_no_votes_give_an_empty_table_with_the_battle_columns(seeded: Seeded) -> None:
    df = _battles(seeded)
    assert df.height == 0
    assert tuple(df.columns) == BATTLE_COLUMNS
    assert df.schema["is_anonymous"] == pl.Boolean


def test_each_vote_is_one_battle_with_models_revisions_outcome_and_endpoints(
    seeded: Seeded,
) -> None:
    alice, bob = _uid(seeded, "alice"), _uid(seeded, "bob")
    j1 = store_vote(seeded.db, seeded.project_id, alice, A, B, "a", n=1)
    j2 = store_vote(seeded.db, seeded.project_id, bob, B, C, "b", n=2)
    j3 = store_vote(seeded.db, seeded.project_id, alice, C, A, "tie", n=3)
    j4 = store_vote(seeded.db, seeded.project_id, bob, A, C, "both_bad", n=4)
    df = _battles(seeded)
    assert tuple(df.columns) == BATTLE_COLUMNS
    rows = df.select(
        "judgment_id", "judge_id", "model_a", "model_b", "revision_a", "revision_b", "outcome",
        "is_anonymous", "endpoint_a", "endpoint_b", "excluded_reason",
    ).rows()
    assert rows == [
        (j1, alice, "alpha-7b", "beta-13b", "ckpt-100", None, "a", True, "ep-alpha", "ep-beta",
         None),
        (j2, bob, "beta-13b", "gamma-2", None, "v2", "b", True, "ep-beta", "ep-gamma", None),
        (j3, alice, "gamma-2", "alpha-7b", "v2", "ckpt-100", "tie", True, "ep-gamma",
         "ep-alpha", None),
        (j4, bob, "alpha-7b", "gamma-2", "ckpt-100", "v2", "both_bad", True, "ep-alpha",
         "ep-gamma", None),
    ]


def test_battles_carry_the_answers_and_their_style_counts(seeded: Seeded) -> None:
    alice = _uid(seeded, "alice")
    text_a = "# Plan\n\n- one\n- two\n\n**done**"
    text_b = "Just prose."
    store_vote(seeded.db, seeded.project_id, alice, A, B, "b", n=1, answer_a=text_a,
               answer_b=text_b)
    row = _battles(seeded).row(0, named=True)
    assert (row["response_a"], row["response_b"]) == (text_a, text_b)
    counts = count_markdown(text_a)
    assert (row["style_length_a"], row["style_headers_a"], row["style_lists_a"],
            row["style_bold_a"]) == (counts.length, counts.headers, counts.lists, counts.bold)
    assert row["style_length_b"] == len(text_b)
    assert row["prompt_id"] == make_prompt_id([{"role": "user", "content": "Question number 1?"}])


def test_without_texts_there_are_no_answers_and_no_style_columns(seeded: Seeded) -> None:
    store_vote(seeded.db, seeded.project_id, _uid(seeded, "alice"), A, B, "a", n=1)
    df = _battles(seeded, texts=False)
    assert df.get_column("response_a").to_list() == [None]
    assert not [c for c in df.columns if c.startswith("style_")]
    assert df.get_column("model_a").to_list() == ["alpha-7b"]


def test_exclusions_and_non_anonymous_votes_are_kept_with_their_reason(seeded: Seeded) -> None:
    alice = _uid(seeded, "alice")
    store_vote(seeded.db, seeded.project_id, alice, A, B, "a", n=1)
    store_vote(seeded.db, seeded.project_id, alice, A, B, "a", n=2, anonymous=False,
               excluded_reason="names_seen_before_vote")
    store_vote(seeded.db, seeded.project_id, alice, A, B, "b", n=3,
               answer_b="As beta-13b, I think so.", excluded_reason="answer_names_model")
    df = _battles(seeded)
    assert df.select("is_anonymous", "excluded_reason").rows() == [
        (True, None), (False, "names_seen_before_vote"), (True, "answer_names_model"),
    ]
    store_vote(seeded.db, seeded.project_id, alice, B, C, "a", n=4)
    store_vote(seeded.db, seeded.project_id, alice, C, A, "a", n=5)
    board = build_leaderboard(_battles(seeded), rounds=10)
    assert board.settings["battles"] == 3  # the two excluded votes do not count
    step = next(s for s in board.hygiene.steps if s.name == "excluded")
    assert step.dropped == 2
    assert "names_seen_before_vote: 1" in step.note and "answer_names_model: 1" in step.note


def test_only_live_arena_votes_of_the_project_are_battles(seeded: Seeded) -> None:
    alice = _uid(seeded, "alice")
    store_vote(seeded.db, seeded.project_id, alice, A, B, "a", n=1)
    # an ordinary pairwise judgment of the same project (the seeded items) is not a battle
    with seeded.db.read() as s:
        item = collect.get_item(s, seeded.item_ids[0])
    with seeded.db.transaction() as conn:
        conn.execute(JUDGMENTS.insert().values(
            judgment_id="plain-1", prompt_id=item.prompt_id, response_ids=item.response_ids,
            kind="pairwise", judge_id=alice, project_id=seeded.project_id, flags=[],
            value={"scale": 2, "preferred": item.response_ids[0], "strength": 1, "tie": False,
                   "both_bad": False}, source=None))
    other = collect.ProjectCreate(name="Other arena", scale=2)
    with seeded.db.write() as s:
        other_id = collect.create_project(s, other).project_id
    store_vote(seeded.db, other_id, alice, B, C, "b", n=2, prompt="Elsewhere?")
    df = _battles(seeded)
    assert df.get_column("model_b").to_list() == ["beta-13b"]
    with seeded.db.connect() as conn:
        assert project_battles(conn, other_id).get_column("model_a").to_list() == ["beta-13b"]


def test_a_vote_whose_response_has_no_model_is_an_input_error(seeded: Seeded) -> None:
    alice = _uid(seeded, "alice")
    store_vote(seeded.db, seeded.project_id, alice, A, B, "a", n=1)
    prompt_id = make_prompt_id([{"role": "user", "content": "Question number 1?"}])
    rid = make_response_id(prompt_id, "Answer 1 from side A\n\n- point one\n- point two",
                           A.model, A.revision)
    from preflab.collect.core_tables import RESPONSES

    with seeded.db.transaction() as conn:
        conn.execute(RESPONSES.update().where(RESPONSES.c.response_id == rid).values(model=None))
    with pytest.raises(InputError) as err:
        _battles(seeded)
    assert err.value.field == "model"
