"""Likely-flipped items go back to annotators with priority, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import polars as pl
import pytest
from sqlalchemy import select, update
from tests.cli_process import run_cli
from tests.flip_data import crowd_with_ai, flip_judgments

from preflab import collect
from preflab.audit.flipped import flip_scores
from preflab.collect import ProjectCreate
from preflab.errors import NotFoundError, UsageError
from preflab.loop.relabel import queue_likely_flipped
from preflab.store.bulk import write_judgments, write_prompts, write_responses
from preflab.store.engine import open_workspace
from preflab.store.queries import read_judgments
from preflab.store.tables import Item
from preflab.store.unit_of_work import write_scope


@pytest.fixture
def workspace(db_url):
    """A workspace with project "labels" (the crowd's judgments) and an empty project "review"."""
    engine = open_workspace(db_url)
    crowd, planted = flip_judgments(crowd_with_ai(8, n=150), k=15, seed=8)
    with write_scope(engine) as conn:
        source = collect.create_project(conn, ProjectCreate(name="labels", scale=2, overlap=1))
        review = collect.create_project(conn, ProjectCreate(name="review", scale=2, overlap=2))
        collect.create_project(conn, ProjectCreate(name="thumbs", kind="binary"))
        write_prompts(conn, crowd.prompts)
        write_responses(conn, crowd.responses)
        write_judgments(conn, crowd.judgments, project_id=source.project_id)
    yield engine, source.project_id, review.project_id, planted
    engine.dispose()


def _items(engine, project_id):
    with engine.connect() as conn:
        return conn.execute(select(Item).where(Item.project_id == project_id)).all()


def test_flagged_items_are_queued_worst_first_with_priority(workspace):
    engine, source, review, _ = workspace
    result = queue_likely_flipped(engine, "labels", "review", limit=5)
    scores, info = flip_scores(read_judgments(engine, source))
    worst = scores.filter(pl.col("flagged")).head(5)
    assert (info["flagged"], 5, 5) == (result.flagged, result.queued, len(result.item_ids))
    rows = _items(engine, review)
    assert set(worst["prompt_id"].to_list()) == {r.prompt_id for r in rows}
    assert {(2, 2, True)} == {(r.priority, r.target, r.is_open) for r in rows}
    assert all(r.source.startswith("likely-flipped:") for r in rows)
    assert all(sorted(r.response_ids) == r.response_ids for r in rows)


def test_queueing_again_adds_nothing_while_the_items_are_open(workspace):
    engine, _, review, _ = workspace
    queue_likely_flipped(engine, "labels", "review", limit=5)
    again = queue_likely_flipped(engine, "labels", "review", limit=5)
    assert (0, 0, 5) == (again.queued, again.reopened, again.skipped["still_open"])
    assert 5 == len(_items(engine, review))


def test_items_the_project_holds_are_reopened_for_one_more_judgment(workspace):
    engine, source, _, _ = workspace
    first = queue_likely_flipped(engine, "labels", limit=3)  # into the project itself: new items
    with write_scope(engine) as conn:  # as if annotators had judged them
        conn.execute(update(Item).where(Item.project_id == source).values(done=1, is_open=False))
    again = queue_likely_flipped(engine, "labels", limit=3, priority=5)
    assert (3, 0) == (first.queued, first.reopened)
    assert (0, 3) == (again.queued, again.reopened)
    assert {(5, 2, 1, True)} == {
        (r.priority, r.target, r.done, r.is_open) for r in _items(engine, source)
    }


def test_planted_flips_are_among_the_queued_items(workspace):
    engine, _, review, planted = workspace
    result = queue_likely_flipped(engine, "labels", "review", limit=100)
    queued = {r.prompt_id for r in _items(engine, review)}
    assert result.queued == len(queued) == result.flagged
    assert len(queued & planted) >= 0.5 * len(queued)


def test_unknown_and_binary_projects_are_refused_and_nothing_is_queued(workspace):
    engine, *_ = workspace
    with pytest.raises(NotFoundError, match="no project 'nope'"):
        queue_likely_flipped(engine, "labels", "nope")
    with pytest.raises(UsageError, match="binary"):
        queue_likely_flipped(engine, "labels", "thumbs")
    with pytest.raises(UsageError, match="limit"):
        queue_likely_flipped(engine, "labels", "review", limit=0)
    with engine.connect() as conn:
        assert [] == conn.execute(select(Item.item_id)).all()


def test_requeue_flipped_command(workspace, db_url):
    engine, _, review, _ = workspace
    proc = run_cli(
        "projects",
        "requeue-flipped",
        "labels",
        "--into",
        "review",
        "--limit",
        "4",
        "--json",
        "--db",
        db_url,
    )
    assert 0 == proc.returncode, proc.stderr
    out = json.loads(proc.stdout)
    assert (4, review) == (out["queued"], out["project_id"])
    assert 4 == len(_items(engine, review))
