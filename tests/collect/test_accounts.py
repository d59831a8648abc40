"""Accounts: users, the human judge of each, token hashes, enabling and disabling."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from preflab import collect
from preflab.errors import ConflictError, InputError, NotFoundError
from preflab.server.db import Database
from preflab.store.tables import JudgeRow


@pytest.fixture
def db(db_url: str):
    database = Database(db_url)
    yield database
    database.dispose()


def test_a_new_user_is_also_a_human_judge(db: Database) -> None:
    with db.transaction() as conn:
        user = collect.create_user(conn, "carol", "hash", vendor="acme")
    with db.connect() as conn:
        judge = conn.execute(select(JudgeRow.kind, JudgeRow.vendor)
                             .where(JudgeRow.judge_id == "human:carol")).one()
        assert collect.get_user(conn, "human:carol") == user  # timestamps aware on both
    assert (user.user_id, tuple(judge)) == ("human:carol", ("human", "acme"))


@pytest.mark.parametrize(("name", "role", "error"), [
    ("", "annotator", InputError), ("two words", "annotator", InputError),
    ("carol", "boss", InputError)])
def test_bad_usernames_and_roles_are_refused(db: Database, name: str, role: str,
                                             error: type[Exception]) -> None:
    with pytest.raises(error), db.transaction() as conn:
        collect.create_user(conn, name, "hash", role=role)
    with db.connect() as conn:
        assert [] == collect.list_users(conn)


def test_a_taken_username_is_a_conflict(db: Database) -> None:
    with db.transaction() as conn:
        collect.create_user(conn, "carol", "hash")
    with pytest.raises(ConflictError), db.transaction() as conn:
        collect.create_user(conn, "carol", "other")
    with db.connect() as conn:
        assert ["carol"] == [u.username for u in collect.list_users(conn)]


def test_tokens_find_their_user_until_the_user_is_disabled(db: Database) -> None:
    with db.transaction() as conn:
        collect.create_user(conn, "carol", "hash")
        collect.create_api_token(conn, "human:carol", "cli", "token-hash")
    with db.transaction() as conn:
        found = collect.get_user_by_token_hash(conn, "token-hash")
        disabled = collect.set_user_active(conn, "carol", False)
        after = collect.get_user_by_token_hash(conn, "token-hash")
        unknown = collect.get_user_by_token_hash(conn, "other-hash")
    assert found is not None and found.is_active and found.username == "carol"
    assert (disabled.is_active, after and after.is_active, unknown) == (False, False, None)


def test_disabling_an_unknown_user_is_not_found(db: Database) -> None:
    with pytest.raises(NotFoundError), db.transaction() as conn:
        collect.set_user_active(conn, "nobody", False)


def test_the_password_hash_stays_out_of_the_repr(db: Database) -> None:
    with db.transaction() as conn:
        user = collect.create_user(conn, "carol", "secret-hash")
    assert "secret-hash" not in repr(user) and user.password_hash == "secret-hash"
