"""Accounts: argon2 hashes, session cookie flags, login rate limit, API tokens, disabling."""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx
from fastapi.testclient import TestClient

from preflab import collect
from preflab.server.accounts import LoginLimiter
from preflab.server.app import create_app
from preflab.server.auth import hash_password, verify_password
from preflab.settings import Settings

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


def _fake_clock(client: TestClient, seeded: Seeded) -> list[float]:
    now = [1_000_000.0]
    client.app.state.login_limiter = LoginLimiter(seeded.db, clock=lambda: now[0])  # type: ignore[attr-defined]
    return now


def _token(client: TestClient, username: str, password: str, addr: str):  # type: ignore[no-untyped-def]
    # the client address as a trusted proxy reports it (settings trust_proxy_headers)
    return client.post("/api/v1/tokens", json={"username": username, "password": password},
                       headers={"X-Forwarded-For": addr})


def _proxied_client(seeded: Seeded) -> TestClient:
    settings = Settings(workspace=seeded.workspace, database_url=seeded.url,
                        trust_proxy_headers=True, trusted_proxies="*")
    return TestClient(create_app(settings, db=seeded.db))


def test_failures_slow_the_address_with_a_growing_delay(seeded: Seeded) -> None:
    with _proxied_client(seeded) as c:
        now = _fake_clock(c, seeded)
        for _ in range(3):  # three free failures
            assert _token(c, "bob", "bad-guess", "10.0.0.66").status_code == 401
        r = _token(c, "bob", PASSWORDS["bob"], "10.0.0.66")
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert r.json()["error"]["field"] == "username"
        assert r.headers["retry-after"] == "1"
        waits = []
        for _ in range(4):  # each failure after the delay doubles the next one
            now[0] += float(r.headers.get("retry-after", "0"))
            assert _token(c, "bob", "bad-guess", "10.0.0.66").status_code == 401
            r = _token(c, "bob", "bad-guess", "10.0.0.66")
            assert r.status_code == 429
            waits.append(int(r.headers["retry-after"]))
        assert waits == [2, 4, 8, 16]
        now[0] += 16
        assert _token(c, "bob", PASSWORDS["bob"], "10.0.0.66").status_code == 201


def test_owner_is_never_locked_out_from_another_address(seeded: Seeded) -> None:
    with _proxied_client(seeded) as c:
        now = _fake_clock(c, seeded)
        refused = 0
        for _ in range(60):  # an attacker hammering bob's account from one address
            r = _token(c, "bob", "bad-guess", "203.0.113.9")
            refused += r.status_code == 429
            now[0] += 0.5
        assert refused > 40  # mostly refused: the delay grows past the attempt rate
        r = _token(c, "bob", PASSWORDS["bob"], "203.0.113.9")
        assert r.status_code == 429  # the attacker's address stays slowed, even with the password
        assert int(r.headers["retry-after"]) > 0
        r = _token(c, "bob", PASSWORDS["bob"], "198.51.100.7")  # the owner, elsewhere
        assert r.status_code == 201, r.text


def test_address_limit_counts_every_username(seeded: Seeded) -> None:
    now = [1000.0]
    limiter = LoginLimiter(seeded.db, max_address_failures=4, window_seconds=60.0,
                           clock=lambda: now[0])
    for i, t in enumerate((1000.0, 1010.0, 1020.0, 1030.0)):
        now[0] = t
        assert limiter.retry_after(f"user{i}", "1.2.3.4") == 0.0
        limiter.fail(f"user{i}", "1.2.3.4")
    # four failures on four usernames: the address waits until the oldest leaves the window
    assert limiter.retry_after("someone-else", "1.2.3.4") == 30.0
    assert limiter.retry_after("someone-else", "5.6.7.8") == 0.0
    limiter.succeed("user0", "1.2.3.4")  # a good login forgets the pair, not the address
    assert limiter.retry_after("user0", "1.2.3.4") == 30.0
    now[0] = 2000.0
    limiter.fail("x", "9.9.9.9")  # failures past the window are deleted as new ones come
    with seeded.db.connect() as conn:
        keys = conn.exec_driver_sql("SELECT key FROM login_failures").scalars().all()
    assert sorted(keys) == ["addr:9.9.9.9", "pair:9.9.9.9|x"]


def test_login_limit_is_shared_by_server_processes(seeded: Seeded) -> None:
    """Two server processes on one database: failures on either count against both."""
    first = start_server(seeded.url, seeded.workspace)
    try:
        second = start_server(seeded.url, seeded.workspace)
        try:
            for server, tries in ((first, 2), (second, 1)):
                for _ in range(tries):
                    r = httpx.post(f"{server.url}/api/v1/tokens",
                                   json={"username": "bob", "password": "bad-guess"})
                    assert r.status_code == 401, r.text
            for server in (first, second):
                r = httpx.post(f"{server.url}/api/v1/tokens",
                               json={"username": "bob", "password": PASSWORDS["bob"]})
                assert r.status_code == 429, r.text
                assert r.json()["error"]["code"] == "rate_limited"
                assert "retry-after" in r.headers
            r = httpx.post(f"{second.url}/api/v1/tokens",
                           json={"username": "alice", "password": PASSWORDS["alice"]})
            assert r.status_code == 201  # another user from the same address is not slowed
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
