"""Accounts: argon2 hashes, session cookie flags, login rate limit, API tokens, disabling."""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx
from fastapi.testclient import TestClient

from preflab import collect
from preflab.server.accounts import LoginLimiter
from preflab.server.auth import hash_password, verify_password

from .conftest import (
    PASSWORDS,
    Seeded,
    api_token,
    csrf_of,
    login,
    make_client,
    start_server,
    stop_server,
)


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


def test_limiter_window_slides(seeded: Seeded) -> None:
    now = [1000.0]
    limiter = LoginLimiter(seeded.db, max_failures=3, window_seconds=60.0,
                           max_address_failures=4, clock=lambda: now[0])
    for t in (1000.0, 1010.0, 1020.0):
        now[0] = t
        assert limiter.retry_after(["user:x", "addr:1"]) == 0.0
        limiter.fail(["user:x", "addr:1"])
    now[0] = 1030.0
    # three failures of the username in the window: allowed again when the oldest (t=1000)
    # leaves it; the address allows four
    assert limiter.retry_after(["user:x"]) == 30.0
    assert limiter.retry_after(["addr:1"]) == 0.0
    limiter.fail(["user:y", "addr:1"])  # the address's fourth
    assert limiter.retry_after(["user:y", "addr:1"]) == 30.0
    now[0] = 1060.0
    assert limiter.retry_after(["addr:1"]) == 0.0
    limiter.fail(["addr:1"])  # back to four within the window (1010, 1020, 1030, 1060)
    assert limiter.retry_after(["addr:1"]) == 10.0
    limiter.succeed("user:x")  # a good login forgets the username's failures, not the address's
    assert limiter.retry_after(["user:x"]) == 0.0
    assert limiter.retry_after(["addr:1"]) == 10.0
    now[0] = 2000.0
    limiter.fail(["addr:3"])  # failures past the window are deleted as new ones come
    with seeded.db.connect() as conn:
        assert conn.exec_driver_sql("SELECT key FROM login_failures").scalars().all() == [
            "addr:3"
        ]


def test_login_limit_is_shared_by_server_processes(seeded: Seeded) -> None:
    """Two server processes on one database: failures on either count against both."""
    first = start_server(seeded.url, seeded.workspace)
    try:
        second = start_server(seeded.url, seeded.workspace)
        try:
            for server, tries in ((first, 3), (second, 2)):
                for _ in range(tries):
                    r = httpx.post(f"{server.url}/api/v1/tokens",
                                   json={"username": "bob", "password": "bad-guess"})
                    assert r.status_code == 401, r.text
            for server in (first, second):
                r = httpx.post(f"{server.url}/api/v1/tokens",
                               json={"username": "bob", "password": PASSWORDS["bob"]})
                assert r.status_code == 429, r.text
                assert r.json()["error"]["code"] == "rate_limited"
            r = httpx.post(f"{second.url}/api/v1/tokens",
                           json={"username": "alice", "password": PASSWORDS["alice"]})
            assert r.status_code == 201  # another user from the same address is not locked out
        finally:
            stop_server(second)
    finally:
        stop_server(first)


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
