"""``preflab import``: read files in an outside format into the workspace store."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from preflab.errors import UsageError
from preflab.formats.registry import iter_read, reader_names  # the help lists the formats

if TYPE_CHECKING:
    from preflab.store.imports import ImportResult

# The readers, SQLAlchemy and the store are imported inside the command, so that
# `preflab --help` does not load them.

# The workspace options, shared with the other commands that open a workspace by URL or folder.
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (default: PREFLAB_DATABASE_URL or the workspace's SQLite)."
    ),
]
WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        help="Workspace folder (default: PREFLAB_WORKSPACE or ./preflab-workspace).",
    ),
]

HELP = """Import preference data files into the workspace (one transaction per file).

Example:

    preflab import hh-rlhf harmless-base-test.jsonl.gz --project harmless

    preflab import jsonl votes.jsonl --map question=prompt --map good=chosen --map bad=rejected

    preflab import hh-rlhf helpful-base-test.jsonl.gz --consecutive-turns merge

    preflab import pku-saferlhf test.jsonl --option preferences=harmlessness

Formats: hh-rlhf, shp, oasst, ultrafeedback, helpsteer2, arena, pku-saferlhf, nectar,
trl-preference, trl-unpaired, jsonl, csv, parquet, hf-disk, and snapshot (a folder written by
`preflab snapshot`; gz, bz2 and zst files are read as they are).
A bad row stops the import of its file with its file, line and field, and nothing of that
file is stored; --skip-invalid imports the other rows and lists the skipped ones.
Rows a format's stated rules drop, skip (e.g. a repeated tree, post or battle: the first
occurrence wins) or merge are counted by reason and listed with their file and line
(--json lists them all); docs/formats.md states each format's rules.
Importing a file again is a no-op ("already imported"); overlapping records are never
stored twice. With --project the judgments join that project (created when missing) and
each imported pair becomes an annotation item.
"""


def _parse_map(values: list[str]) -> dict[str, str] | None:
    """Return ``{field: column}`` from ``COLUMN=FIELD`` (or unambiguous ``FIELD=COLUMN``) pairs."""
    from preflab.formats.tabular import mapping_fields

    if not values:
        return None
    fields = set(mapping_fields())
    mapping: dict[str, str] = {}
    for raw in values:
        left, sep, right = raw.partition("=")
        if not sep or not left or not right:
            raise UsageError(f"--map takes COLUMN=FIELD, got {raw!r}", field="map", value=raw)
        if right in fields:
            mapping[right] = left
        elif left in fields:
            mapping[left] = right
        else:
            raise UsageError(
                f"--map {raw!r} names no field; fields are: {', '.join(sorted(fields))}",
                field="map",
                value=raw,
            )
    return mapping


def _parse_options(values: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise UsageError(f"--option takes KEY=VALUE, got {raw!r}", field="option", value=raw)
        try:
            options[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.replace("-", "_")] = value
    return options


class ConsecutiveTurns(str, Enum):
    """Two transcript turns of one role in a row (hh-rlhf, nectar)."""

    drop = "drop"
    merge = "merge"


_LABELS = {
    "rows": "rows read",
    "prompts": "prompts added",
    "responses": "responses added",
    "judgments": "judgments added",
    "items": "items added",
    "skipped": "skipped (invalid)",
    "dropped_": "dropped by rule",
    "skipped_": "skipped by rule",
    "merged_": "merged by rule",
}
# Count keys that are rows left out or changed by a stated rule, by prefix.
_RULE_PREFIXES = ("dropped_", "skipped_", "merged_")
_SHOWN_NOTES = 20


def _already_stored(counts: dict[str, int]) -> int:
    """Return how many records the reader emitted that the store already held (not added)."""
    return sum(max(0, counts.get(f"{t}_read", 0) - counts.get(t, 0))
               for t in ("prompts", "responses", "judgments"))


def _show(results: list[ImportResult], console: Console) -> None:
    table = Table(title="Import summary", title_justify="left")
    table.add_column("")
    for result in results:
        table.add_column(Path(result.path).name, justify="right", overflow="fold")
    table.add_row(
        "status", *("already imported" if r.already_imported else "imported" for r in results)
    )
    for key, label in _LABELS.items():
        if key in ("skipped_", "merged_") and not any(
            v for r in results for k, v in r.counts.items() if k.startswith(key)
        ):
            continue  # shown only when a rule of that kind applied
        cells = []
        for result in results:
            c = result.counts
            n = (
                sum(v for k, v in c.items() if k.startswith(key))
                if key in _RULE_PREFIXES
                else c.get(key, 0)
            )
            cells.append(f"{n:,}")
        table.add_row(label, *cells)
    stored = [_already_stored(r.counts) for r in results]
    if any(stored):  # records the file holds that the workspace had already (same content id)
        table.add_row("already stored (same id)", *(f"{n:,}" for n in stored))
    console.print(table)
    for result in results:
        if result.project_created:
            console.print(f"created project [bold]{result.project_id}[/]")
        name = Path(result.path).name
        for prefix in _RULE_PREFIXES:
            rules = {
                k.removeprefix(prefix): v
                for k, v in result.counts.items()
                if k.startswith(prefix) and v
            }
            if rules:
                console.print(
                    f"{name}: {_LABELS[prefix]}: "
                    + ", ".join(
                        f"{rule.replace('_', ' ')} {n:,}" for rule, n in sorted(rules.items())
                    ),
                    highlight=False,
                    soft_wrap=True,
                )
        notes = getattr(result, "notes", [])
        if notes:
            console.print(f"{name}: where (first {min(len(notes), _SHOWN_NOTES)}):")
            for note in notes[:_SHOWN_NOTES]:
                console.print(
                    f"  {note.reason}: {note}", highlight=False, markup=False, soft_wrap=True
                )
            if len(notes) > _SHOWN_NOTES:
                console.print(
                    f"  … and {len(notes) - _SHOWN_NOTES:,} more (--json lists them all)"
                )
        if result.problems:
            console.print(
                f"{Path(result.path).name}: skipped {result.counts.get('skipped', 0)} invalid rows:"
            )
            for problem in result.problems[:20]:
                console.print(f"  {problem}", highlight=False, markup=False)
            if len(result.problems) > 20:
                console.print(f"  … and {len(result.problems) - 20} more (--json lists them all)")


def import_command(
    format: Annotated[
        str,
        typer.Argument(metavar="FORMAT", help="Input format: " + ", ".join(reader_names()) + "."),
    ],
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH", help="Files (or dataset folders) to import.")
    ],
    project: Annotated[
        str | None, typer.Option("--project", help="Project name or id; created when missing.")
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="Import the valid rows and report the invalid ones."),
    ] = False,
    db: DbOption = None,
    workspace: WorkspaceOption = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map", help="Column mapping for jsonl/csv/parquet: COLUMN=FIELD (repeatable)."
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            help="Reader option KEY=VALUE (repeatable), e.g. --option judge_id=vendor-a.",
        ),
    ] = None,
    consecutive_turns: Annotated[
        ConsecutiveTurns | None,
        typer.Option(
            "--consecutive-turns",
            help="hh-rlhf, nectar: two turns of one role in a row: drop the row (the default) "
            "or merge the turns, joined with a blank line (counted as merged_consecutive_turns).",
            show_default=False,
        ),
    ] = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, help="Input rows per chunk.")
    ] = 10_000,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
) -> None:
    from preflab.settings import Settings
    from preflab.store.engine import open_workspace, resolve_database_url
    from preflab.store.imports import import_chunks

    mapping = _parse_map(map_ or [])
    options = _parse_options(option or [])
    if consecutive_turns is not None:
        options["consecutive_turns"] = consecutive_turns.value
    settings = Settings()
    url = resolve_database_url(db, workspace, env_url=settings.database_url)
    engine = open_workspace(url)
    console = Console()
    results: list[ImportResult] = []
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=as_json,
        ) as progress:
            for path in paths:
                task = progress.add_task(f"importing {path.name}", total=None)

                def advance(chunk: Any, task: Any = task) -> None:
                    progress.advance(task, chunk.counts.get("rows", 0))

                chunks = iter_read(
                    format,
                    path,
                    chunk_size=chunk_size,
                    skip_invalid=skip_invalid,
                    mapping=mapping,
                    **options,
                )
                results.append(
                    import_chunks(
                        engine,
                        chunks,
                        format=format,
                        path=path,
                        project_id=project,
                        create_project=True,
                        on_chunk=advance,
                    )
                )
                progress.remove_task(task)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps({"imports": [r.to_dict() for r in results]}, indent=2))
    else:
        _show(results, console)


def register(app: typer.Typer) -> None:
    """Add ``preflab import`` to ``app``."""
    app.command("import", help=HELP, no_args_is_help=True)(import_command)
