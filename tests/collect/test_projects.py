"""Projects: one id rule for the app and imports, one create and one list, members, guidelines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from preflab import collect
from preflab.collect import ProjectCreate
from preflab.errors import ConflictError, NotFoundError
from preflab.store.imports import import_chunks
from preflab.store.queries import find_project, make_project_id
from tests.store.conftest import make_chunk

from .conftest import Seeded


def test_app_and_import_take_the_project_id_from_the_name_alike(
    seeded: Seeded, tmp_path: Path
) -> None:
    source = tmp_path / "a.jsonl"
    source.write_text("a")
    result = import_chunks(seeded.db.engine, [make_chunk(0, 2)], format="test", path=source,
                           project_id="Vendor batch, May", create_project=True)
    with seeded.db.transaction() as conn:
        made = collect.create_project(conn, ProjectCreate(name="Review: May"))
    assert (result.project_id, made.project_id) == ("vendor-batch-may", "review-may")
    assert make_project_id("Vendor batch, May") == result.project_id


def test_a_name_whose_id_is_taken_is_refused_and_nothing_is_written(seeded: Seeded) -> None:
    with seeded.db.connect() as conn:
        before = collect.list_projects(conn)
    with pytest.raises(ConflictError) as err, seeded.db.transaction() as conn:
        collect.create_project(conn, ProjectCreate(name="PAIRS"))  # id "pairs" is taken
    assert err.value.field == "name"
    with seeded.db.connect() as conn:
        assert before == collect.list_projects(conn)


def test_list_projects_shows_annotators_their_own_projects_only(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        collect.create_project(conn, ProjectCreate(name="Other"))
    with seeded.db.connect() as conn:
        alice = collect.get_user_by_username(conn, "alice")
        admin = collect.get_user_by_username(conn, "admin")
        assert alice is not None and admin is not None
        mine = [p.project_id for p in collect.list_projects(conn, alice)]
        every = [p.project_id for p in collect.list_projects(conn, admin)]
        assert every == [p.project_id for p in collect.list_projects(conn)]
    assert (mine, every) == ([seeded.project_id], [seeded.project_id, "other"])


def test_projects_come_back_as_one_frozen_row_from_every_read(seeded: Seeded) -> None:
    with seeded.db.connect() as conn:
        alice = collect.get_user_by_username(conn, "alice")
        assert alice is not None
        reads = [collect.get_project(conn, seeded.project_id),
                 collect.project_for_user(conn, seeded.project_id, alice),
                 collect.list_projects(conn, alice)[0]]
        row = find_project(conn, seeded.project_id)
    assert all(type(r) is collect.Project for r in reads) and reads[0] == reads[1] == reads[2]
    assert reads[0].overlap == row.overlap and reads[0].config == row.config
    with pytest.raises(dataclasses.FrozenInstanceError):
        reads[0].name = "changed"  # type: ignore[misc]
    assert not hasattr(reads[0], "__dict__")  # slotted


def test_outsiders_do_not_see_a_project(seeded: Seeded) -> None:
    with seeded.db.connect() as conn:
        mallory = collect.get_user_by_username(conn, "mallory")
        assert mallory is not None
        assert collect.project_for_user(conn, seeded.project_id, mallory) is None
        with pytest.raises(NotFoundError):
            collect.serve_task(conn, seeded.project_id, mallory)


def test_guideline_versions_count_up_and_members_keep_theirs(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        second = collect.add_guideline_version(conn, seeded.project_id, "# Rules v2", "admin")
        collect.set_member_guideline_version(conn, seeded.project_id, "human:alice", 1)
        collect.set_member_guideline_version(conn, seeded.project_id, "human:mallory", 2)
    with seeded.db.connect() as conn:
        current = collect.current_guideline(conn, seeded.project_id)
        first = collect.get_guideline(conn, seeded.project_id, 1)
        versions = (collect.member_guideline_version(conn, seeded.project_id, "human:alice"),
                    collect.member_guideline_version(conn, seeded.project_id, "human:mallory"))
        is_member = collect.is_member(conn, seeded.project_id, "human:mallory")
    assert (second.version, current, first and first.text) == (2, second, "# Rules\n\nBe kind.")
    assert versions == (1, 2) and is_member  # a guideline version makes a member row
