"""``preflab projects gold``: mark items gold with their expected answer, upload a CSV/JSONL of
gold answers (all or nothing), list and clear gold items, show gold accuracy per annotator,
and set the project's gold threshold (issue 13). Thin: parse, call :mod:`preflab.collect`,
show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from preflab.cli.users import cli_connection

gold_app = typer.Typer(
    help="Gold items: expected answers, the share of tasks that are gold, the threshold.",
    no_args_is_help=True)

_DB = typer.Option(None, "--db", help="Database URL (default: the workspace's SQLite file).")
_WS = typer.Option(None, "--workspace", "-w", help="Workspace folder.")
_PROJECT = typer.Argument(..., help="Project id.")
_FILE = typer.Argument(..., exists=True, dir_okay=False,
                       help="A .csv or .jsonl file of gold answers.")
_ITEM_IDS = typer.Argument(..., help="Item ids to make ordinary again.")


def _answer(preferred: str | None, tie: bool, both_bad: bool, label: str | None,
            best: str | None, answer: str | None) -> dict[str, Any]:
    """Return the answer the options give (exactly one of them)."""
    from preflab.errors import UsageError

    given: list[dict[str, Any]] = []
    if preferred:
        given.append({"preferred": preferred})
    if tie:
        given.append({"tie": True})
    if both_bad:
        given.append({"both_bad": True})
    if label is not None:
        if label not in ("up", "down"):
            raise UsageError(f"--label must be up or down, got {label!r}", field="label",
                             value=label)
        given.append({"label": label == "up"})
    if best:
        given.append({"best": best})
    if answer:
        try:
            parsed = json.loads(answer)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--answer must be a JSON object ({exc.msg} at column {exc.colno})",
                             field="answer") from None
        given.append(parsed if isinstance(parsed, dict) else {"": parsed})
    if len(given) != 1:
        raise UsageError("give exactly one of --preferred, --tie, --both-bad, --label, --best "
                         f"or --answer (got {len(given)})", field="answer")
    return given[0]


@gold_app.command("set")
def set_(
    project: str = _PROJECT,
    item_id: str = typer.Argument(..., help="Item id (`preflab projects gold list` or the "
                                            "admin items page show them)."),
    preferred: str = typer.Option(None, "--preferred", help="Pairwise: the better response id."),
    tie: bool = typer.Option(False, "--tie", help="Pairwise: the expected answer is a tie."),
    both_bad: bool = typer.Option(False, "--both-bad", help="Pairwise: both responses are bad."),
    label: str = typer.Option(None, "--label", help="Binary: up or down."),
    best: str = typer.Option(None, "--best", help="Ranking: the best response id."),
    answer: str = typer.Option(None, "--answer",
                               help='The answer as JSON, e.g. \'{"scores": {"r_…": '
                                    '{"helpfulness": 3}}, "tolerance": 1}\'.'),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Mark an item gold with its expected answer (checked against the item and the project).

    Example: `preflab projects gold set hh-review i_3f2a… --preferred r_91c0…`
    """
    from preflab import collect

    expected = _answer(preferred, tie, both_bad, label, best, answer)
    with cli_connection(db, workspace, write=True) as conn:
        collect.set_gold(conn, project, [collect.GoldLine(0, item_id, expected)])
    typer.echo(f"item {item_id} is gold, expected {json.dumps(expected)}")


@gold_app.command("upload")
def upload(
    project: str = _PROJECT,
    path: Path = _FILE,
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Upload gold answers, all or nothing: one bad line stores none (the error names its line
    and field).

    CSV: a header with item_id and answer (a JSON object) or answer columns (preferred, tie,
    both_bad, label, best). JSONL: {"item_id": "i_…", "answer": {"preferred": "r_…"}} per line.

    Example: `preflab projects gold upload hh-review gold.csv`
    """
    from preflab import collect

    with cli_connection(db, workspace, write=True) as conn:
        n = collect.load_gold_file(conn, project, path.name, path.read_bytes())
    typer.echo(f"{n} gold answers stored from {path.name}")


@gold_app.command("list")
def list_(
    project: str = _PROJECT,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """List a project's gold items with their expected answers.

    Example: `preflab projects gold list hh-review --json`
    """
    from preflab import collect

    with cli_connection(db, workspace, write=False) as conn:
        collect.get_project(conn, project)
        rows = collect.list_gold(conn, project)
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table("item", "responses", "expected")
    for r in rows:
        table.add_row(r["item_id"], ", ".join(r["response_ids"]), json.dumps(r["answer"]))
    Console().print(table)


@gold_app.command("clear")
def clear(
    project: str = _PROJECT,
    item_ids: list[str] = _ITEM_IDS,
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Make gold items ordinary again (they rejoin the queue; their judgments stay).

    Example: `preflab projects gold clear hh-review i_3f2a… i_77b1…`
    """
    from preflab import collect

    with cli_connection(db, workspace, write=True) as conn:
        collect.get_project(conn, project)
        n = collect.clear_gold(conn, project, item_ids)
    typer.echo(f"{n} of {len(set(item_ids))} items were gold and are ordinary again")


@gold_app.command("accuracy")
def accuracy(
    project: str = _PROJECT,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Show gold accuracy per annotator and whom the project's threshold flags.

    Example: `preflab projects gold accuracy hh-review`
    """
    from preflab import collect

    with cli_connection(db, workspace, write=False) as conn:
        p = collect.get_project(conn, project)
        history = collect.gold_history(conn, project)
    rows: list[dict[str, Any]] = []
    for judge_id, answers in sorted(history.items()):
        right = sum(ok for _, ok in answers)
        rows.append({"judge_id": judge_id, "right": right, "answered": len(answers),
                     "accuracy": right / len(answers),
                     "flagged": collect.gold_standing(p, right, len(answers))})
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table("judge", "right / answered", "accuracy", "threshold")
    for r in rows:
        table.add_row(r["judge_id"], f"{r['right']} / {r['answered']}", f"{r['accuracy']:.0%}",
                      f"flagged: {r['flagged']}" if r["flagged"] else "ok")
    Console().print(table)


@gold_app.command("threshold")
def threshold(
    project: str = _PROJECT,
    min_accuracy: float = typer.Option(None, "--min-accuracy", min=0.0, max=1.0,
                                       help="Least share of gold answered right (0..1)."),
    after: int = typer.Option(None, "--after", min=1,
                              help="Gold answers before the check applies."),
    stop_serving: bool = typer.Option(False, "--stop-serving/--flag-only",
                                      help="Stop serving new tasks to a flagged annotator."),
    remove: bool = typer.Option(False, "--remove", help="Remove the threshold."),
    db: str = _DB,
    workspace: Path = _WS,
) -> None:
    """Set (or remove) the project's gold threshold: below --min-accuracy after --after gold
    answers an annotator is flagged, and with --stop-serving gets no new tasks.

    Example: `preflab projects gold threshold hh-review --min-accuracy 0.7 --after 10 --stop-serving`
    """
    from preflab import collect
    from preflab.errors import UsageError

    if not remove and (min_accuracy is None or after is None):
        raise UsageError("give --min-accuracy and --after (or --remove)", field="min_accuracy")
    with cli_connection(db, workspace, write=True) as conn:
        row = collect.set_gold_threshold(conn, project, None if remove else {
            "min_accuracy": min_accuracy, "after": after, "stop_serving": stop_serving})
    t = collect.gold_threshold(row)
    typer.echo(f"project {project}: no gold threshold" if t is None else
               f"project {project}: at least {t.min_accuracy:.0%} right after {t.after} gold "
               f"items; {'stop serving' if t.stop_serving else 'flag only'}")
