"""``preflab projects``: create and list annotation projects, add members, set guidelines."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from preflab.cli.users import open_db

projects_app = typer.Typer(help="Manage annotation projects.", no_args_is_help=True)

_DB = typer.Option(None, "--db", help="Database URL (default: the workspace's SQLite file).")
_WS = typer.Option(None, "--workspace", "-w", help="Workspace folder.")


def _critique_option(value: str) -> bool | str:
    from preflab.errors import UsageError

    options = {"off": False, "optional": True, "required": "required"}
    if value not in options:
        raise UsageError(f"--critique must be off, optional or required; got {value!r}",
                         field="critique", value=value)
    return options[value]


@projects_app.command("create")
def create(
    name: str = typer.Argument(..., help="Project name (its id is the slug)."),
    kind: str = typer.Option("pairwise", "--kind", help="pairwise, ranking, rating or binary."),
    scale: int = typer.Option(5, "--scale", help="Pairwise scale: 2, 5, 7 or 8 points."),
    no_tie: bool = typer.Option(False, "--no-tie", help="No tie button."),
    no_both_bad: bool = typer.Option(False, "--no-both-bad", help="No both-bad button."),
    attributes: str = typer.Option("", "--attributes",
                                   help="Rating attributes, comma-separated (default HelpSteer2's)."),
    overlap: int = typer.Option(1, "--overlap", help="Judges per item."),
    overlap_share: float = typer.Option(1.0, "--overlap-share",
                                        help="Share of items that get the overlap."),
    gold_share: float = typer.Option(0.0, "--gold-share", help="Share of tasks that are gold."),
    span_labels: str = typer.Option(
        "", "--span-labels",
        help="Let annotators flag spans of a response with these labels, comma-separated "
             "(e.g. 'factual error,unsafe'); 'default' for the built-in labels."),
    critique: str = typer.Option("off", "--critique", help="Written critique: off, optional or required."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Create a project.

    Example: `preflab projects create "HH review" --scale 7 --overlap 3 --overlap-share 0.2`
    """
    from pydantic import ValidationError

    from preflab.errors import InputError
    from preflab import collect
    from preflab.collect import ProjectCreate

    try:
        spec = ProjectCreate(
            name=name, kind=kind, scale=scale, allow_tie=not no_tie,  # type: ignore[arg-type]
            allow_both_bad=not no_both_bad,
            attributes=[a.strip() for a in attributes.split(",") if a.strip()],
            overlap=overlap, overlap_share=overlap_share, gold_share=gold_share,
            span_flags=bool(span_labels.strip()),
            span_labels=[] if span_labels.strip() in ("", "default")
            else [a.strip() for a in span_labels.split(",") if a.strip()],
            critique=_critique_option(critique),
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        raise InputError(err["msg"].removeprefix("Value error, "), field=field) from None
    database = open_db(db, workspace)
    try:
        with database.transaction() as conn:
            row = collect.create_project(conn, spec)
            typer.echo(f"created project {row.project_id}")
    finally:
        database.dispose()


@projects_app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """List projects with their progress.

    Example: `preflab projects list`
    """
    from preflab import collect

    database = open_db(db, workspace)
    rows = []
    try:
        with database.connect() as conn:
            for p in collect.list_projects(conn):
                pr = collect.project_progress(conn, p.project_id)
                rows.append({"project_id": p.project_id, "name": p.name, "kind": p.kind,
                             "items": pr.items, "complete": pr.complete_items,
                             "judgments": pr.judgments, "target": pr.target_judgments})
    finally:
        database.dispose()
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table("id", "name", "kind", "items", "complete", "judgments / target")
    for r in rows:
        table.add_row(r["project_id"], r["name"], r["kind"], str(r["items"]),
                      str(r["complete"]), f"{r['judgments']} / {r['target']}")
    Console().print(table)


@projects_app.command("add-member")
def add_member(
    project: str = typer.Argument(..., help="Project id."),
    usernames: list[str] = typer.Argument(..., help="Users to add."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Give users access to a project.

    Example: `preflab projects add-member hh-review alice bob`
    """
    from preflab.errors import NotFoundError
    from preflab import collect

    database = open_db(db, workspace)
    try:
        with database.transaction() as conn:
            collect.get_project(conn, project)
            for name in usernames:
                user = collect.get_user_by_username(conn, name)
                if user is None:
                    raise NotFoundError(f"no user named {name!r}", field="username")
                collect.add_member(conn, project, user.user_id)
    finally:
        database.dispose()
    typer.echo(f"added {', '.join(usernames)} to {project}")


@projects_app.command("guidelines")
def guidelines(
    project: str = typer.Argument(..., help="Project id."),
    file: Path = typer.Argument(..., help="Markdown file with the new guidelines.",
                                exists=True, dir_okay=False),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Store a markdown file as the project's next guidelines version.

    Example: `preflab projects guidelines hh-review guidelines.md`
    """
    from preflab import collect

    database = open_db(db, workspace)
    try:
        with database.transaction() as conn:
            collect.get_project(conn, project)
            row = collect.add_guideline_version(conn, project, file.read_text(encoding="utf-8"),
                                                None)
    finally:
        database.dispose()
    typer.echo(f"{project}: guidelines version {row.version}")


@projects_app.command("hard-cases")
def hard_cases(
    source: str = typer.Argument(..., help="The project production feedback goes to."),
    into: str = typer.Option(..., "--into", help="The annotation project to queue items in."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many new items."),
    kind: list[str] = typer.Option(
        None, "--kind", help="edit, regenerate or thumbs_down (repeatable; default all three)."
    ),
    since: str = typer.Option(
        None, "--since", help="Only events at or after this time (ISO 8601, e.g. 2026-11-01)."
    ),
    priority: int = typer.Option(1, "--priority", help="Queue priority (higher is served first)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Queue the answers production users rejected as items for annotators to judge.

    From the feedback API's judgments in SOURCE, newest first: an edit becomes the answer
    against the user's edit, a regeneration the kept answer against the first, a thumbs down
    the answer against another answer to the same prompt (a thumbs-up one first). Items
    already queued are not queued twice.

    Example: `preflab projects hard-cases production --into hh-review --limit 200 --since 2026-11-01`
    """
    from datetime import datetime

    from preflab.errors import UsageError
    from preflab.loop.hard_cases import HARD_CASE_KINDS, queue_hard_cases

    when = None
    if since:
        try:
            when = datetime.fromisoformat(since)
        except ValueError:
            raise UsageError(f"--since takes an ISO 8601 time, got {since!r}", field="since",
                             value=since) from None
    database = open_db(db, workspace)
    try:
        result = queue_hard_cases(database.engine, source, into, limit=limit,
                                  kinds=tuple(kind or HARD_CASE_KINDS), since=when,
                                  priority=priority)
    finally:
        database.dispose()
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    detail = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in sorted(result.counts.items()))
    typer.echo(f"queued {result.queued} hard cases in {result.project_id}"
               + (f" ({detail})" if detail else ""))


def register(app: typer.Typer) -> None:
    app.add_typer(projects_app, name="projects")
