"""``preflab projects``: create and list annotation projects, add members, set guidelines,
attach model endpoints and set the live config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from preflab.cli.users import cli_connection, open_db

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
    with cli_connection(db, workspace, write=True) as conn:
        row = collect.create_project(conn, spec)
        typer.echo(f"created project {row.project_id}")


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

    with cli_connection(db, workspace, write=True) as conn:
        collect.get_project(conn, project)
        for name in usernames:
            user = collect.get_user_by_username(conn, name)
            if user is None:
                raise NotFoundError(f"no user named {name!r}", field="username")
            collect.add_member(conn, project, user.user_id)
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

    with cli_connection(db, workspace, write=True) as conn:
        collect.get_project(conn, project)
        row = collect.add_guideline_version(conn, project, file.read_text(encoding="utf-8"),
                                            None)
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


@projects_app.command("requeue-flipped")
def requeue_flipped(
    source: str = typer.Argument(..., help="The project whose labels are scored."),
    into: str | None = typer.Option(
        None, "--into", help="The project to queue them in (default: SOURCE)."),
    flip_threshold: float = typer.Option(
        0.5, "--flip-threshold", min=0.0, max=1.0,
        help="The flip score from which an item is queued (0–1]."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many items, worst first."),
    priority: int = typer.Option(2, "--priority", help="Queue priority (higher is served first)."),
    extra_judgments: int = typer.Option(
        1, "--extra-judgments", min=1, help="More judgments asked of an item SOURCE already holds."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Send the items whose label is likely flipped back to annotators, worst first.

    Each item of SOURCE is scored as `preflab audit` does ("Likely-flipped labels": the
    Dawid–Skene posterior over annotators, AI judges in both orders and gold answers). Items at
    or above --flip-threshold become new items of --into, or, when that project already holds
    them, ask for --extra-judgments more judgments; both get --priority.

    Example: `preflab projects requeue-flipped harmless --flip-threshold 0.6 --limit 50`
    """
    from preflab.loop.relabel import queue_likely_flipped

    database = open_db(db, workspace)
    try:
        result = queue_likely_flipped(database.engine, source, into, threshold=flip_threshold,
                                      limit=limit, priority=priority,
                                      extra_judgments=extra_judgments)
    finally:
        database.dispose()
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    if result.skipped_reason:
        typer.echo(f"nothing scored: {result.skipped_reason}")
        return
    skipped = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in sorted(result.skipped.items()))
    typer.echo(f"{result.flagged} of {result.scored} items likely flipped; queued {result.queued} new "
               f"and reopened {result.reopened} in {result.project_id}"
               + (f" (not scored or left: {skipped})" if skipped else ""))


# ---- model endpoints and live config (issue 12) ----------------------------------------------

endpoints_app = typer.Typer(
    help="Attach model endpoints to a project for live chats and arena battles.",
    no_args_is_help=True)
projects_app.add_typer(endpoints_app, name="endpoints")

from preflab.cli.gold import gold_app  # the gold commands (issue 13)

projects_app.add_typer(gold_app, name="gold")

_PROJECT = typer.Argument(..., help="Project id.")
_NAME = typer.Argument(..., help="Endpoint name, unique in the project (letters, digits, . _ : -).")
# Hidden options that catch a key given on the command line: refused, never stored or echoed.
_KEY_OPTION = typer.Option(None, "--api-key", "--key", "--token", "--secret", hidden=True,
                           show_default=False)


def _refuse_key(value: str | None) -> None:
    if value is not None:
        from preflab.collect.endpoints import NO_KEYS_MESSAGE
        from preflab.errors import UsageError

        raise UsageError(f"{NO_KEYS_MESSAGE} (e.g. --api-key-env OPENAI_API_KEY)",
                         field="api_key")


def _params(pairs: list[str] | None, as_json: str | None) -> dict[str, Any] | None:
    """Return the sampling parameters of ``--params JSON`` and ``--param KEY=VALUE`` options
    (a value is read as JSON when it parses, else as a string), or None when neither is given."""
    from preflab.errors import UsageError

    if as_json is None and not pairs:
        return None
    out: dict[str, Any] = {}
    if as_json is not None:
        try:
            out = json.loads(as_json)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--params takes a JSON object, e.g. '{{\"temperature\": 0.7}}' "
                             f"({exc.msg} at column {exc.colno})", field="params") from None
        if not isinstance(out, dict):
            raise UsageError("--params takes a JSON object, e.g. '{\"temperature\": 0.7}'",
                             field="params")
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param takes KEY=VALUE, e.g. temperature=0.7; got {pair!r}",
                             field="params")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def _endpoint_json(ep: Any) -> dict[str, Any]:  # Any: a collect.ProjectEndpoint
    from preflab import collect

    created = ep.created_at.isoformat() if ep.created_at else None
    return {"name": ep.name, "base_url": ep.base_url, "model": ep.model,
            "revision": ep.revision, "params": ep.params, "concurrency": ep.concurrency,
            "timeout": ep.timeout, "api_key_env": ep.api_key_env,
            "api_key_status": collect.api_key_status(ep), "enabled": ep.enabled,
            "created_at": created}


def _key_cell(ep: Any) -> str:  # Any: a collect.ProjectEndpoint
    from preflab import collect

    status = collect.api_key_status(ep)
    return "none" if status == "none" else f"{ep.api_key_env} ({status} in this shell)"


@endpoints_app.command("add")
def endpoints_add(
    project: str = _PROJECT,
    name: str = _NAME,
    base_url: str = typer.Option(..., "--base-url",
                                 help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."),
    model: str = typer.Option(..., "--model", help="Model id sent in each request."),
    revision: str = typer.Option(None, "--revision",
                                 help="Checkpoint or revision tag, stored on every response."),
    param: list[str] = typer.Option(
        None, "--param", help="Sampling parameter KEY=VALUE (repeatable; VALUE read as JSON), "
        "e.g. --param temperature=0.7 --param max_tokens=512."),
    params_json: str = typer.Option(None, "--params",
                                    help="Sampling parameters as one JSON object."),
    concurrency: int = typer.Option(4, "--concurrency",
                                    help="Requests in flight per server process (1..256)."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds per attempt."),
    api_key_env: str = typer.Option(
        None, "--api-key-env", help="NAME of the server's environment variable holding the API "
        "key (e.g. OPENAI_API_KEY); preflab never stores keys. Leave out for keyless servers."),
    disabled: bool = typer.Option(False, "--disabled", help="Add it disabled (not sampled)."),
    api_key: str = _KEY_OPTION,
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Attach a model endpoint to a project.

    Example: `preflab projects endpoints add hh-review llama-8b --base-url http://127.0.0.1:8000/v1 --model meta-llama/Llama-3.1-8B-Instruct --revision step-1200 --param temperature=0.7 --api-key-env VLLM_API_KEY`
    """
    from preflab import collect

    _refuse_key(api_key)
    data: dict[str, Any] = {"name": name, "base_url": base_url, "model": model,
                            "revision": revision, "concurrency": concurrency,
                            "timeout": timeout, "api_key_env": api_key_env,
                            "enabled": not disabled}
    given = _params(param, params_json)
    if given is not None:
        data["params"] = given
    spec = collect.parse_endpoint_create(data)
    with cli_connection(db, workspace, write=True) as conn:
        ep = collect.add_endpoint(conn, project, spec)
    typer.echo(f"{project}: added endpoint {ep.name} ({ep.model}"
               + (f" @ {ep.revision}" if ep.revision else "") + ")"
               + ("" if ep.enabled else ", disabled"))
    if collect.api_key_status(ep) == "not set":
        typer.echo(f"note: {ep.api_key_env} is not set in this shell; the server needs it in "
                   "its environment", err=True)


@endpoints_app.command("list")
def endpoints_list(
    project: str = _PROJECT,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """List a project's endpoints (the key variable by name, and whether this shell sets it).

    Example: `preflab projects endpoints list hh-review`
    """
    from preflab import collect

    with cli_connection(db, workspace, write=False) as conn:
        collect.get_project(conn, project)
        rows = collect.list_endpoints(conn, project)
    if as_json:
        typer.echo(json.dumps([_endpoint_json(e) for e in rows], indent=1))
        return
    if not rows:
        typer.echo(f"{project} has no endpoints; add one with `preflab projects endpoints add`")
        return
    table = Table("name", "model", "revision", "base URL", "params", "concurrency", "timeout",
                  "key", "enabled")
    for e in rows:
        table.add_row(e.name, e.model, e.revision or "", e.base_url,
                      json.dumps(e.params) if e.params else "", str(e.concurrency),
                      f"{e.timeout:g}", _key_cell(e), "yes" if e.enabled else "no")
    Console().print(table)


@endpoints_app.command("update")
def endpoints_update(
    project: str = _PROJECT,
    name: str = _NAME,
    base_url: str = typer.Option(None, "--base-url", help="New base URL."),
    model: str = typer.Option(None, "--model", help="New model id."),
    revision: str = typer.Option(None, "--revision", help="New revision tag ('' clears it)."),
    param: list[str] = typer.Option(
        None, "--param", help="Set one sampling parameter KEY=VALUE (repeatable), keeping the "
        "others."),
    unset_param: list[str] = typer.Option(None, "--unset-param",
                                          help="Drop one sampling parameter (repeatable)."),
    params_json: str = typer.Option(None, "--params",
                                    help="Replace all sampling parameters with this JSON object."),
    concurrency: int = typer.Option(None, "--concurrency", help="Requests in flight (1..256)."),
    timeout: float = typer.Option(None, "--timeout", help="Seconds per attempt."),
    api_key_env: str = typer.Option(None, "--api-key-env",
                                    help="New key variable NAME ('' for a keyless server)."),
    enabled: bool = typer.Option(None, "--enable/--disable",
                                 help="Enable or disable (a disabled endpoint is not sampled)."),
    api_key: str = _KEY_OPTION,
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Change an endpoint: only the options given change.

    Example: `preflab projects endpoints update hh-review llama-8b --revision step-1400 --param temperature=0.9 --disable`
    """
    from preflab import collect

    _refuse_key(api_key)
    data: dict[str, Any] = {k: v for k, v in {
        "base_url": base_url, "model": model, "concurrency": concurrency, "timeout": timeout,
        "enabled": enabled}.items() if v is not None}
    if revision is not None:
        data["revision"] = revision or None
    if api_key_env is not None:
        data["api_key_env"] = api_key_env or None
    with cli_connection(db, workspace, write=True) as conn:
        if param or unset_param or params_json is not None:
            current = dict(collect.get_endpoint(conn, project, name).params)
            replaced = _params(None, params_json) if params_json is not None else None
            merged = replaced if replaced is not None else current
            merged.update(_params(param, None) or {})
            for key in unset_param or []:
                merged.pop(key, None)
            data["params"] = merged
        changes = collect.parse_endpoint_update(data)
        ep = collect.update_endpoint(conn, project, name, changes)
    typer.echo(f"{project}: updated endpoint {ep.name}"
               + (f" ({', '.join(sorted(changes.model_fields_set))})"
                  if changes.model_fields_set else " (nothing to change)"))


@endpoints_app.command("remove")
def endpoints_remove(
    project: str = _PROJECT,
    name: str = _NAME,
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Detach an endpoint (answers already sampled from it keep their model and revision).

    Example: `preflab projects endpoints remove hh-review llama-8b`
    """
    from preflab import collect

    with cli_connection(db, workspace, write=True) as conn:
        collect.remove_endpoint(conn, project, name)
    typer.echo(f"{project}: removed endpoint {name}")


@projects_app.command("live-config")
def live_config(
    project: str = _PROJECT,
    modes: str = typer.Option(
        None, "--modes", help="What annotators may start: chat, arena, chat,arena, or none "
        "(live off)."),
    k: int = typer.Option(None, "--k", help="Candidates per chat turn (2..4)."),
    sampling: str = typer.Option(
        None, "--sampling", help="models (k distinct endpoints per turn) or temperatures (one "
        "endpoint at k temperatures)."),
    temperatures: str = typer.Option(None, "--temperatures",
                                     help="Comma-separated, e.g. 0.3,0.7,1.0."),
    turn_limit: int = typer.Option(None, "--turn-limit",
                                   help="Assistant turns per conversation (1..50)."),
    arena_policy: str = typer.Option(
        None, "--arena-policy", help="Arena pairs: uniform, fewest_battles or widest_interval."),
    leaderboard_for_annotators: bool = typer.Option(
        None, "--leaderboard-for-annotators/--no-leaderboard-for-annotators",
        help="Whether annotators may see the leaderboard."),
    prompt_pool: bool = typer.Option(
        None, "--prompt-pool/--no-prompt-pool",
        help="Whether annotators may draw a prompt from the project's items."),
    as_json: bool = typer.Option(False, "--json", help="Print the config as JSON."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Show or change a project's live config; options left out keep their value.

    Without options it prints the config in force.

    Example: `preflab projects live-config hh-review --modes chat,arena --k 2 --sampling models --turn-limit 6`
    """
    from preflab import collect
    from preflab.errors import UsageError

    changes: dict[str, Any] = {k_: v for k_, v in {
        "k": k, "sampling": sampling, "turn_limit": turn_limit, "arena_policy": arena_policy,
        "leaderboard_for_annotators": leaderboard_for_annotators,
        "prompt_pool": prompt_pool}.items() if v is not None}
    if modes is not None:
        changes["modes"] = [] if modes.strip() in ("", "none") else [
            m.strip() for m in modes.split(",") if m.strip()]
    if temperatures is not None:
        try:
            changes["temperatures"] = [float(t) for t in temperatures.split(",") if t.strip()]
        except ValueError:
            raise UsageError(f"--temperatures takes numbers separated by commas, e.g. 0.3,1.0; "
                             f"got {temperatures!r}", field="temperatures") from None
    with cli_connection(db, workspace, write=True) as conn:
        current = collect.get_live_config(collect.get_project(conn, project))
        cfg = current
        if changes:
            cfg = collect.parse_live_config({**current.model_dump(), **changes})
            collect.set_live_config(conn, project, cfg)
    if as_json:
        typer.echo(json.dumps(cfg.model_dump(mode="json"), indent=1))
        return
    if changes:
        typer.echo(f"{project}: live config updated ({', '.join(sorted(changes))})")
    shown = cfg.model_dump(mode="json")
    shown["modes"] = ",".join(cfg.modes) or "none (live off)"
    shown["temperatures"] = ",".join(f"{t:g}" for t in cfg.temperatures)
    width = max(len(f) for f in shown)
    for field, value in shown.items():
        typer.echo(f"{field.ljust(width)}  {value}")


def register(app: typer.Typer) -> None:
    app.add_typer(projects_app, name="projects")
