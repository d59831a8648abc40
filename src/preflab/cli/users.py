"""``preflab users``: add, list, disable/enable users and issue API tokens."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

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

    database = open_db(db, workspace)
    try:
        with database.connect() as conn:
            users = collect.list_users(conn, limit=100_000)
    finally:
        database.dispose()
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

    database = open_db(db, workspace)
    try:
        with database.transaction() as conn:
            collect.set_user_active(conn, username, active)
    finally:
        database.dispose()
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
    """Issue an API token for a user and print it (only its hash is stored).

    Example: `preflab users token alice` then `curl -H "Authorization: Bearer …" …/api/v1/me`
    """
    from preflab.errors import NotFoundError
    from preflab.server.accounts import issue_token
    from preflab import collect

    database = open_db(db, workspace)
    try:
        with database.connect() as conn:
            user = collect.get_user_by_username(conn, username)
        if user is None:
            raise NotFoundError(f"no user named {username!r}", field="username")
        typer.echo(issue_token(database, user, name))
    finally:
        database.dispose()


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
