"""Server-side sessions: logout, password change and disabling end them on the server."""

from __future__ import annotations

from http.cookies import SimpleCookie

from fastapi.testclient import TestClient

from preflab import collect
from preflab.collect import accounts as store
from preflab.server.app import create_app
from preflab.settings import Settings

from .conftest import PASSWORDS, Seeded, csrf_of, login, make_client


def _cookie(client: TestClient) -> str:
    value = client.cookies.get("preflab_session")
    assert value
    return value


def _replay(seeded: Seeded, cookie: str) -> int:
    """Status of GET /api/v1/me from a fresh client holding only this cookie."""
    with make_client(seeded) as other:
        other.cookies.set("preflab_session", cookie)
        return other.get("/api/v1/me").status_code


def test_replayed_cookie_after_logout_is_not_logged_in(seeded: Seeded) -> None:
    with make_client(seeded) as c:
        csrf = login(c, "alice")
        cookie = _cookie(c)
        assert _replay(seeded, cookie) == 200
        r = c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
    assert _replay(seeded, cookie) == 401
    with make_client(seeded) as other:  # pages send the replayed cookie to the login page
        other.cookies.set("preflab_session", cookie)
        r = other.get("/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_only_the_hash_of_the_session_secret_is_stored(seeded: Seeded) -> None:
    with make_client(seeded) as c:
        login(c, "alice")
        with seeded.db.connect() as conn:
            rows = conn.exec_driver_sql("SELECT secret_hash, client FROM sessions").all()
        assert len(rows) == 1
        secret_hash, client = rows[0]
        assert len(secret_hash) == 64 and client == "testclient"
        # the cookie (signed, base64) does not contain the stored hash
        assert secret_hash not in _cookie(c)


def test_password_change_ends_the_other_sessions(seeded: Seeded) -> None:
    with make_client(seeded) as first, make_client(seeded) as second:
        login(first, "bob")
        csrf = login(second, "bob")
        old_cookie = _cookie(first)
        r = second.post("/api/v1/me/password", headers={"X-CSRF-Token": csrf},
                        json={"current_password": "wrong-one", "new_password": "bob-new-pass"})
        assert r.status_code == 422 and r.json()["error"]["field"] == "current_password"
        assert _replay(seeded, old_cookie) == 200  # a refused change ends nothing
        r = second.post("/api/v1/me/password", headers={"X-CSRF-Token": csrf},
                        json={"current_password": PASSWORDS["bob"],
                              "new_password": "bob-new-pass"})
        assert r.status_code == 200, r.text
        assert r.json() == {"sessions_ended": 1}
        assert second.get("/api/v1/me").status_code == 200  # the session that changed it
        assert first.get("/api/v1/me").status_code == 401
    assert _replay(seeded, old_cookie) == 401
    with make_client(seeded) as c:
        bad = c.post("/api/v1/tokens", json={"username": "bob", "password": PASSWORDS["bob"]})
        good = c.post("/api/v1/tokens", json={"username": "bob", "password": "bob-new-pass"})
        assert (bad.status_code, good.status_code) == (401, 201)


def test_password_change_on_the_account_page(seeded: Seeded) -> None:
    with make_client(seeded) as other, make_client(seeded) as c:
        login(other, "alice")
        login(c, "alice")
        page = c.get("/account")
        assert page.status_code == 200 and "this one" in page.text
        r = c.post("/account/password", data={"csrf_token": csrf_of(page.text),
                                              "current_password": PASSWORDS["alice"],
                                              "new_password": "alice-new-pass"})
        assert r.status_code == 200 and "1 other session(s) ended" in r.text
        assert other.get("/api/v1/me").status_code == 401
        r = c.post("/account/password", data={"csrf_token": csrf_of(page.text),
                                              "current_password": "not-it",
                                              "new_password": "whatever-pass"})
        assert r.status_code == 422 and "current password is wrong" in r.text


def test_disabling_a_user_ends_every_session(seeded: Seeded) -> None:
    with make_client(seeded) as c:
        login(c, "bob")
        cookie = _cookie(c)
        with make_client(seeded) as admin:
            csrf = login(admin, "admin")
            r = admin.post("/api/v1/users/bob/disable", headers={"X-CSRF-Token": csrf})
            assert r.status_code == 200
            with seeded.db.connect() as conn:
                assert store.list_sessions(conn, "human:bob") == []
            assert admin.post("/api/v1/users/bob/enable",
                              headers={"X-CSRF-Token": csrf}).status_code == 200
        # enabled again, the old session stays ended
        assert _replay(seeded, cookie) == 401


def test_sessions_are_listed_and_ended_one_by_one(seeded: Seeded) -> None:
    with make_client(seeded) as c, make_client(seeded) as phone:
        csrf = login(c, "alice")
        phone.headers["User-Agent"] = "phone-browser/1.0"
        login(phone, "alice")
        listed = c.get("/api/v1/me/sessions").json()
        assert len(listed) == 2
        assert {s["user_agent"] for s in listed} >= {"phone-browser/1.0"}
        assert all(s["created_at"] and s["last_seen_at"] and s["client"] for s in listed)
        target = next(s for s in listed if s["user_agent"] == "phone-browser/1.0")
        r = c.delete(f"/api/v1/me/sessions/{target['session_id']}",
                     headers={"X-CSRF-Token": csrf})
        assert r.status_code == 204
        assert phone.get("/api/v1/me").status_code == 401
        assert c.get("/api/v1/me").status_code == 200
        # another user's session id is not found
        with make_client(seeded) as bob:
            bob_csrf = login(bob, "bob")
            mine = c.get("/api/v1/me/sessions").json()[0]["session_id"]
            r = bob.delete(f"/api/v1/me/sessions/{mine}", headers={"X-CSRF-Token": bob_csrf})
            assert r.status_code == 404


def _set_cookie(r) -> SimpleCookie:  # type: ignore[no-untyped-def]
    header = [v for k, v in r.headers.multi_items() if k == "set-cookie"][-1]
    return SimpleCookie(header)


def _login_page_cookie(client: TestClient, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    # the login page sets the session cookie (with the login form's CSRF token)
    return _set_cookie(client.get("/login", headers=headers))["preflab_session"]


def test_cookie_is_secure_over_https_behind_a_trusted_proxy(seeded: Seeded) -> None:
    def app(base_url: str = "http://testserver", **opts: object) -> TestClient:
        return TestClient(create_app(Settings(workspace=seeded.workspace,
                                              database_url=seeded.url, **opts), db=seeded.db),
                          base_url=base_url)

    https = {"X-Forwarded-Proto": "https"}
    with app() as plain:  # http, no proxy trusted: not Secure, still HttpOnly and SameSite
        cookie = _login_page_cookie(plain, https)
        assert not cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "lax"
    with app(trust_proxy_headers=True, trusted_proxies="*") as proxied:
        cookie = _login_page_cookie(proxied, https)
        assert cookie["secure"] is True and cookie["httponly"] is True
        assert not _login_page_cookie(proxied)["secure"]  # the proxy said http
    with app(trust_proxy_headers=True, trusted_proxies="10.9.9.9") as untrusted:
        assert not _login_page_cookie(untrusted, https)["secure"]  # not from that proxy
    with app("https://testserver") as direct:
        assert _login_page_cookie(direct)["secure"] is True
        r = direct.post("/login", data={"username": "alice", "password": PASSWORDS["alice"],
                                        "csrf_token": csrf_of(direct.get("/login").text)},
                        follow_redirects=False)
        assert r.status_code == 303 and _set_cookie(r)["preflab_session"]["secure"] is True
    with app(secure_cookies="always") as always:
        assert _login_page_cookie(always)["secure"] is True
    with app(secure_cookies="never", trust_proxy_headers=True, trusted_proxies="*") as never:
        assert not _login_page_cookie(never, https)["secure"]


def test_expired_session_is_refused(seeded: Seeded) -> None:
    with make_client(seeded) as c:
        login(c, "alice")
        with seeded.db.transaction() as conn:
            conn.exec_driver_sql("UPDATE sessions SET expires_at = created_at")
        assert c.get("/api/v1/me").status_code == 401
    with seeded.db.connect() as conn:
        assert collect.get_user_by_username(conn, "alice") is not None
