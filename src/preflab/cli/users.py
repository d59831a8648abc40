"""``preflab users``: add, list, disable/enable users; API tokens (scoped); the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy import Connection

users_app = typer.Typer(help="Manage annotator and admin accounts.", no_args_is_help=True)

_DB = typer.Option(None, "--db", help="Database URL (default: the workspace's SQLite file).")
_WS = typer.Option(None, "--workspace", "-w", help="Workspace folder.")


def open_db(db: str | None, workspace: Path | None):  # type: ignore[no-untyped-def]
    """Return the app's Database for the CLI's --db / --workspace / PREFLAB_DATABASE_URL."""
    from preflab.server.db import Database
    from preflab.settings import Settings
    from preflab.store.engine import resolve_database_url

    if workspace is not None:
        workspace.mkdir(parents=True, exist_ok=True)
    return Database(resolve_database_url(db, workspace, env_url=Settings().database_url))


@contextmanager
def cli_connection(db: str | None, workspace: Path | None, *, write: bool) -> Iterator[Connection]:
    """Yield one connection of the command's database (one transaction when ``write``); close it."""
    database = open_db(db, workspace)
    try:
        with (database.transaction() if write else database.connect()) as conn:
            yield conn
    finally:
        database.dispose()


@users_app.command("add")
def add(
    username: str = typer.Argument(..., help="Login name (no spaces)."),
    role: str = typer.Option("annotator", "--role", help="annotator or admin."),
    password: str = typer.Option(..., "--password", prompt=True, hide_input=True,
                                 confirmation_prompt=True, help="At least 8 characters."),
    vendor: str = typer.Option(None, "--vendor", help="Vendor the annotator works for."),
    team: str = typer.Option(None, "--team", help="Team of the annotator."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Add a user.

    Example: `preflab users add alice --role annotator --password '…'`
    """
    from preflab.server.accounts import add_user

    database = open_db(db, workspace)
    try:
        user = add_user(database, username, password, role=role, vendor=vendor, team=team)
    finally:
        database.dispose()
    typer.echo(f"added {user.username} ({user.role})")


@users_app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """List users.

    Example: `preflab users list --json`
    """
    from preflab import collect

    with cli_connection(db, workspace, write=False) as conn:
        users = collect.list_users(conn, limit=100_000)
    rows = [{"username": u.username, "role": u.role, "active": u.is_active, "vendor": u.vendor,
             "team": u.team} for u in users]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table("user", "role", "active", "vendor", "team")
    for r in rows:
        table.add_row(r["username"], r["role"], "yes" if r["active"] else "no",
                      r["vendor"] or "", r["team"] or "")
    Console().print(table)


def _set_active(username: str, active: bool, db: str | None, workspace: Path | None) -> None:
    from preflab import collect

    with cli_connection(db, workspace, write=True) as conn:
        collect.set_user_active(conn, username, active)
    typer.echo(f"{username} {'enabled' if active else 'disabled'}")


@users_app.command("disable")
def disable(username: str = typer.Argument(...), db: str = _DB, workspace: Path = _WS) -> None:
    """Disable a user: logins, sessions and API tokens stop working.

    Example: `preflab users disable bob`
    """
    _set_active(username, False, db, workspace)


@users_app.command("enable")
def enable(username: str = typer.Argument(...), db: str = _DB, workspace: Path = _WS) -> None:
    """Enable a disabled user again.

    Example: `preflab users enable bob`
    """
    _set_active(username, True, db, workspace)


@users_app.command("token")
def token(
    username: str = typer.Argument(...),
    name: str = typer.Option("cli", "--name", help="Label of the token."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Issue an API token for a user with the role's default scope and print it.

    Only its hash is stored. For scopes, a project or an expiry: `preflab users tokens create`.

    Example: `preflab users token alice` then `curl -H "Authorization: Bearer …" …/api/v1/me`
    """
    from preflab import collect
    from preflab.errors import NotFoundError
    from preflab.server.accounts import issue_token

    database = open_db(db, workspace)
    try:
        with database.connect() as conn:
            user = collect.get_user_by_username(conn, username)
        if user is None:
            raise NotFoundError(f"no user named {username!r}", field="username")
        typer.echo(issue_token(database, user, name))
    finally:
        database.dispose()


tokens_app = typer.Typer(help="API tokens with scopes: create, list, revoke.",
                         no_args_is_help=True)
users_app.add_typer(tokens_app, name="tokens")


def _user_or_fail(database, username: str):  # type: ignore[no-untyped-def]
    from preflab import collect
    from preflab.errors import NotFoundError

    with database.connect() as conn:
        user = collect.get_user_by_username(conn, username)
    if user is None:
        raise NotFoundError(f"no user named {username!r}; `preflab users list` shows them",
                            field="username")
    return user


def _when(ts: object) -> str:
    return ts.strftime("%Y-%m-%d %H:%M") if ts else ""  # type: ignore[attr-defined]


_SCOPE = typer.Option(None, "--scope", help="annotate, feedback, export or admin; repeat for "
                      "several (default: annotate for annotators, admin for admins).")


@tokens_app.command("create")
def tokens_create(
    username: str = typer.Argument(..., help="Owner of the token."),
    scope: list[str] = _SCOPE,
    project: str = typer.Option(None, "--project", help="The one project it may touch."),
    expires_in_days: int = typer.Option(None, "--expires-in-days", min=1, max=3650,
                                        help="Days until it stops working (default: never)."),
    name: str = typer.Option("cli", "--name", help="Label of the token."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Create a scoped API token and print it once (only its hash is stored).

    Example: `preflab users tokens create feedback-bot --scope feedback --project p1`
    """
    from datetime import timedelta

    from preflab.server.accounts import create_token
    from preflab.store.tables import utcnow

    database = open_db(db, workspace)
    try:
        user = _user_or_fail(database, username)
        expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        token, info = create_token(database, user, name, scopes=scope or None,
                                   project_id=project, expires_at=expires, actor="cli")
    finally:
        database.dispose()
    if as_json:
        typer.echo(json.dumps({"token": token, "token_id": info.token_id,
                               "scopes": info.scopes, "project_id": info.project_id,
                               "expires_at": info.expires_at.isoformat()
                               if info.expires_at else None}))
        return
    typer.echo(f"{info.token_id} ({', '.join(info.scopes)}), shown once:")
    typer.echo(token)


@tokens_app.command("list")
def tokens_list(
    username: str = typer.Argument(None, help="Only this user's tokens (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """List API tokens (never the secrets), revoked ones included.

    Example: `preflab users tokens list alice --json`
    """
    from preflab.collect import accounts as store

    database = open_db(db, workspace)
    try:
        user_id = _user_or_fail(database, username).user_id if username else None
        with database.connect() as conn:
            tokens = store.list_tokens(conn, user_id)
    finally:
        database.dispose()
    rows = [{"token_id": t.token_id, "user_id": t.user_id, "name": t.name, "scopes": t.scopes,
             "project_id": t.project_id, "created_at": _when(t.created_at),
             "expires_at": _when(t.expires_at), "last_used_at": _when(t.last_used_at),
             "revoked": t.revoked} for t in tokens]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table("token", "user", "name", "scopes", "project", "expires", "last used",
                  "revoked")
    for t in tokens:
        table.add_row(t.token_id, t.user_id, t.name, ", ".join(t.scopes), t.project_id or "all",
                      _when(t.expires_at) or "never", _when(t.last_used_at),
                      "yes" if t.revoked else "")
    Console().print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: str = typer.Argument(..., help="The token's id (`tok_…`, from `tokens list`)."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Revoke an API token: calls made with it are refused from now on.

    Example: `preflab users tokens revoke tok_0123456789abcdef`
    """
    from preflab.collect import accounts as store

    with cli_connection(db, workspace, write=True) as conn:
        info = store.revoke_token(conn, token_id)
        store.record_audit(conn, "token.revoke", actor="cli", token_id=token_id,
                           target={"user_id": info.user_id})
    typer.echo(f"revoked {token_id} ({info.user_id})")


@users_app.command("audit-log")
def audit_log(
    limit: int = typer.Option(50, "--limit", min=1, max=100_000, help="Lines to show."),
    token_id: str = typer.Option(None, "--token", help="Only the calls of this token."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Show the audit log, newest first: admin actions and every write made with a token.

    Example: `preflab users audit-log --token tok_0123456789abcdef --json`
    """
    from preflab.collect import accounts as store

    with cli_connection(db, workspace, write=False) as conn:
        entries = store.list_audit(conn, token_id=token_id, limit=limit)
    rows = [{"at": e.at.isoformat() if e.at else None, "actor": e.actor,
             "token_id": e.token_id, "action": e.action, "target": e.target,
             "client": e.client} for e in entries]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table("when", "who", "token", "what", "target", "address")
    for e in entries:
        table.add_row(_when(e.at), e.actor or "", e.token_id or "", e.action,
                      json.dumps(e.target) if e.target else "", e.client or "")
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
