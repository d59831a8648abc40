"""``preflab snapshot``: the workspace's records as four Parquet files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from preflab.cli.import_cmd import DbOption, WorkspaceOption
from preflab.errors import NotFoundError

HELP = """Write the workspace's records (prompts, responses, judges, judgments) as Parquet files.

Example:

    preflab snapshot snap/ --project harmless

    preflab import snapshot snap/ --db postgresql+psycopg://127.0.0.1/other

The folder gets prompts.parquet, responses.parquet, judges.parquet and judgments.parquet in
the record schemas (preflab.records: PROMPT_SCHEMA, ...), ids included, read in one
transaction (a consistent snapshot); each file is renamed into place when complete. They load
as they are in pandas, polars, DuckDB or `datasets`, and `preflab import snapshot FOLDER` stores
them in another workspace under the same ids (importing twice is a no-op). Judgments keep every
field: the kind's value, spans, critique, flags, timing, guideline version, batch, source.
Projects, items, users and assignments are not records and are not in a snapshot.
"""


def snapshot_command(
    out: Annotated[Path, typer.Argument(metavar="FOLDER", help="Output folder (created).")],
    project: Annotated[
        str | None,
        typer.Option("--project", help="Only the records of this project (name or id)."),
    ] = None,
    db: DbOption = None,
    workspace: WorkspaceOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the written files and row counts as JSON.")
    ] = False,
) -> None:
    import pyarrow.parquet as pq

    from preflab.settings import Settings
    from preflab.store.engine import open_workspace, resolve_database_url
    from preflab.store.queries import find_project
    from preflab.store.queries.snapshot import write_parquet_snapshot

    url = resolve_database_url(db, workspace, env_url=Settings().database_url)
    engine = open_workspace(url)
    try:
        project_id = None
        if project:
            with engine.connect() as conn:
                row = find_project(conn, project)
            if row is None:
                raise NotFoundError(
                    f"no project {project!r} in the workspace; "
                    "`preflab projects list` shows the projects.",
                    field="project",
                    value=project,
                )
            project_id = row.project_id
        paths = write_parquet_snapshot(engine, out, project_id)
    finally:
        engine.dispose()
    rows = {name: pq.ParquetFile(path).metadata.num_rows for name, path in paths.items()}
    if as_json:
        print(
            json.dumps(
                {
                    "folder": str(out),
                    "project_id": project_id,
                    "files": {name: str(path) for name, path in paths.items()},
                    "rows": rows,
                },
                indent=2,
            )
        )
        return
    table = Table(title=f"Snapshot in {out}", title_justify="left")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, path in paths.items():
        table.add_row(path.name, f"{rows[name]:,}")
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add ``preflab snapshot`` to the CLI."""
    app.command("snapshot", help=HELP, no_args_is_help=True)(snapshot_command)
