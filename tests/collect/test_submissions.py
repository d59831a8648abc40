"""Submissions: the value built from the form, the guideline version recorded, idempotency."""

from __future__ import annotations

import pytest

from preflab import collect
from preflab.collect import JudgmentCreate
from preflab.errors import ConflictError, InputError, NotFoundError

from .conftest import Seeded


def _serve(seeded: Seeded, name: str) -> collect.TaskView:
    with seeded.db.transaction() as conn:
        user = collect.get_user_by_username(conn, name)
        assert user is not None
        view = collect.serve_task(conn, seeded.project_id, user)
    assert view is not None
    return view


def _submit(seeded: Seeded, name: str, assignment_id: str, **form: object):
    with seeded.db.transaction() as conn:
        return collect.submit(conn, f"human:{name}", assignment_id,
                              JudgmentCreate(**{"submission_id": "sub-0001", **form}))


def test_submit_stores_the_value_against_response_ids_and_the_guideline_version(
    seeded: Seeded
) -> None:
    view = _serve(seeded, "alice")
    left = view.task.responses[0].response_id
    judgment, created = _submit(seeded, "alice", view.task.assignment.assignment_id, choice="1")
    with seeded.db.connect() as conn:
        stored = collect.find_judgment_by_key(conn, "sub-0001")
        version = collect.member_guideline_version(conn, seeded.project_id, "human:alice")
    assert created and stored == judgment
    assert (judgment.value["preferred"], judgment.value["strength"]) == (left, 2)
    assert judgment.response_ids == [r.response_id for r in view.task.responses]
    assert (judgment.guideline_version, version, judgment.source) == (1, 1, "app")


def test_a_repeated_submission_returns_the_stored_judgment(seeded: Seeded) -> None:
    view = _serve(seeded, "alice")
    first, _ = _submit(seeded, "alice", view.task.assignment.assignment_id, choice="1")
    again, created = _submit(seeded, "alice", view.task.assignment.assignment_id, choice="5")
    with seeded.db.connect() as conn:
        _, total = collect.list_judgments(conn, seeded.project_id)
    assert (again, created, total) == (first, False, 1)


def test_a_bad_choice_names_the_field_and_stores_nothing(seeded: Seeded) -> None:
    view = _serve(seeded, "alice")
    with pytest.raises(InputError) as err:
        _submit(seeded, "alice", view.task.assignment.assignment_id, choice="9")
    with seeded.db.connect() as conn:
        rows, total = collect.list_judgments(conn, seeded.project_id)
        task = collect.get_task(conn, view.task.assignment.assignment_id, "human:alice")
    assert (err.value.field, rows, total, task.assignment.status) == ("choice", [], 0,
                                                                      "reserved")


def test_another_users_task_is_not_found(seeded: Seeded) -> None:
    view = _serve(seeded, "alice")
    with pytest.raises(NotFoundError):
        _submit(seeded, "bob", view.task.assignment.assignment_id, choice="1")


def test_a_submission_id_of_another_judge_is_a_conflict(seeded: Seeded) -> None:
    a = _serve(seeded, "alice")
    b = _serve(seeded, "bob")
    _submit(seeded, "alice", a.task.assignment.assignment_id, choice="1")
    with pytest.raises(ConflictError) as err:
        _submit(seeded, "bob", b.task.assignment.assignment_id, choice="1")
    assert err.value.field == "submission_id"


def test_judgment_pages_filter_by_judge(seeded: Seeded) -> None:
    a = _serve(seeded, "alice")
    b = _serve(seeded, "bob")
    _submit(seeded, "alice", a.task.assignment.assignment_id, choice="1")
    with seeded.db.transaction() as conn:
        collect.submit(conn, "human:bob", b.task.assignment.assignment_id,
                       JudgmentCreate(submission_id="sub-bob-1", choice="tie"))
    with seeded.db.connect() as conn:
        bobs, n_bob = collect.list_judgments(conn, seeded.project_id, judge_id="human:bob")
        _, n_all = collect.list_judgments(conn, seeded.project_id)
    assert ([j.judge_id for j in bobs], n_bob, n_all) == (["human:bob"], 1, 2)
    assert all(type(j) is collect.Judgment for j in bobs)
