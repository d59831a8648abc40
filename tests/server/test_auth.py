"""Accounts: argon2 hashes, session cookie flags, login rate limit, API tokens, disabling."""

from __future__ import annotations

from http.cookies import SimpleCookie

from fastapi.testclient import TestClient

from preflab.server.auth import LoginLimiter, hash_password, verify_password
from preflab.store.queries import collect

from .conftest import PASSWORDS, Seeded, api_token, csrf_of, login, make_client


def test_passwords_are_stored_as_argon2id(seeded: Seeded) -> None:
    with seeded.db.read() as s:
        user = collect.get_user_by_username(s, "alice")
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORDS["alice"] not in user.password_hash
    assert verify_password(user.password_hash, PASSWORDS["alice"])
    assert not verify_password(user.password_hash, "wrong-password")
    assert not verify_password(None, "anything")


def test_session_cookie_is_signed_httponly_samesite(client: TestClient) -> None:
    page = client.get("/login")
    r = client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"],
                                    "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    header = [v for k, v in r.headers.multi_items() if k == "set-cookie"][-1]
    cookie = SimpleCookie(header)["preflab_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "lax"
    forged = cookie.value[:-4] + ("AAAA" if not cookie.value.endswith("AAAA") else "BBBB")
    other = TestClient(client.app)
    other.cookies.set("preflab_session", forged)
    assert other.get("/api/v1/me").status_code == 401


def test_wrong_password_shows_the_form_again(client: TestClient) -> None:
    page = client.get("/login")
    r = client.post("/login", data={"username": "alice", "password": "nope-nope",
                                    "csrf_token": csrf_of(page.text)})
    assert r.status_code == 401
    assert "wrong username or password" in r.text


def test_login_is_rate_limited_after_five_failures(client: TestClient) -> None:
    for _ in range(5):
        r = client.post("/api/v1/tokens", json={"username": "bob", "password": "bad-guess"})
        assert r.status_code == 401
    r = client.post("/api/v1/tokens", json={"username": "bob", "password": PASSWORDS["bob"]})
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert "try again in" in r.json()["error"]["message"]


def test_limiter_window_expires() -> None:
    limiter = LoginLimiter(max_failures=2, window_seconds=0.0)
    limiter.fail(["k"])
    limiter.fail(["k"])
    assert limiter.retry_after(["k"]) == 0.0


def test_token_authenticates_and_dies_with_the_account(seeded: Seeded) -> None:
    with make_client(seeded) as c:
        headers = api_token(c, "bob")
        assert c.get("/api/v1/me", headers=headers).json()["username"] == "bob"
        admin = api_token(c, "admin")
        assert c.post("/api/v1/users/bob/disable", headers=admin).json()["is_active"] is False
        r = c.get("/api/v1/me", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["field"] == "authorization"
        assert c.post("/api/v1/tokens", json={"username": "bob",
                                              "password": PASSWORDS["bob"]}).status_code == 401


def test_disabled_user_loses_the_session(seeded: Seeded) -> None:
    with make_client(seeded) as c:
        login(c, "bob")
        assert c.get("/api/v1/me").status_code == 200
        with seeded.db.write() as s:
            collect.set_user_active(s, "bob", False)
        assert c.get("/api/v1/me").status_code == 401


def test_bad_authorization_header_is_named(client: TestClient) -> None:
    r = client.get("/api/v1/me", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    assert r.json() == {"error": {"code": "unauthorized", "field": "authorization",
                                  "message": 'field "authorization": the Authorization header '
                                             "must be 'Bearer <token>'"}}


def test_login_redirect_stays_on_site(client: TestClient) -> None:
    page = client.get("/login")
    r = client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"],
                                    "csrf_token": csrf_of(page.text),
                                    "next": "//evil.example/x"}, follow_redirects=False)
    assert r.headers["location"] == "/"


def test_hash_is_salted() -> None:
    assert hash_password("same-password") != hash_password("same-password")
