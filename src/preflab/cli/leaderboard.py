"""``preflab leaderboard``: Bradley–Terry ratings with intervals from a battle file or from a
workspace project's live arena votes."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from preflab.errors import UsageError

if TYPE_CHECKING:
    import polars as pl

    from preflab.arena import Leaderboard

HELP = """Rank models from pairwise votes (Bradley–Terry, Elo scale) with bootstrap intervals.

Example:

    preflab leaderboard battles.jsonl --anchor gpt-4-0613 --html board.html

The file holds one battle per row: model_a, model_b and winner (Chatbot Arena's spelling:
model_a / model_b / tie / tie (bothbad)) or outcome (a / b / tie / both_bad), as JSONL, JSON,
Parquet or CSV. With --reader NAME the file is read by a preflab import format instead
(e.g. --reader arena) and its pairwise judgments become battles. Every rating is shown with
its interval and rank interval.

With --project P (and --workspace W or --db URL) the battles are the project's live arena
votes, the same numbers as the app's leaderboard page:

    preflab leaderboard --workspace W --project P --battles-out battles.jsonl

--battles-out writes the battles read as a JSONL battle file that `preflab leaderboard FILE`
reads unchanged.
"""


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so no half-written page is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _show(board: Leaderboard, console: Console) -> None:
    conf = int(round(100 * board.bootstrap.confidence))
    s = board.settings
    table = Table(
        title=f"{s['battles']} battles, {s['models']} models · ties: {s['ties']} · "
        f"{board.bootstrap.rounds} bootstrap rounds (seed {s['seed']})",
        title_justify="left",
    )
    table.add_column("Rank", justify="right")
    table.add_column("Model")
    table.add_column("Rating", justify="right")
    table.add_column(f"{conf}% interval", justify="right")
    table.add_column("Battles", justify="right")
    style = {r.model: r for r in board.style_rows} if board.style_rows else None
    if style is not None:
        table.add_column("Style-controlled", justify="right")
        table.add_column("Rank (style)", justify="right")
    for r in board.rows:
        cells = [
            r.rank_interval,
            r.model,
            f"{r.rating:.1f}",
            f"{r.ci_low:.1f}–{r.ci_high:.1f}",
            str(r.battles),
        ]
        if style is not None:
            sr = style[r.model]
            cells += [f"{sr.rating:.1f} ({sr.ci_low:.1f}–{sr.ci_high:.1f})", sr.rank_interval]
        table.add_row(*cells)
    console.print(table)
    if board.bootstrap.regularized_rounds:
        console.print(
            f"{board.bootstrap.regularized_rounds} bootstrap rounds left a model unbeaten or "
            "winless and used a weak prior (l2=1e-6)"
        )
    if board.fit.tie_parameter is not None:
        console.print(f"fitted tie parameter ({s['ties']}): {board.fit.tie_parameter:.4f}")
    if board.style_fit is not None and board.style_fit.coefficients:
        coefs = ", ".join(f"{k} {v:+.3f}" for k, v in board.style_fit.coefficients.items())
        console.print(f"style coefficients (logit per SD): {coefs}")
    if board.hygiene is not None:
        dropped = [
            f"{st.name}: {st.dropped}" if st.applied else f"{st.name}: not applied ({st.note})"
            for st in board.hygiene.steps
        ]
        console.print(
            f"hygiene: {board.hygiene.rows_in} votes in, {board.hygiene.rows_out} kept · "
            + " · ".join(dropped),
            highlight=False,
        )


def _project_battles(
    project: str, db: str | None, workspace: Path | None
) -> tuple[pl.DataFrame, str]:
    """Return the battles of a workspace project and its name."""
    from preflab.collect.battles import project_battles
    from preflab.errors import NotFoundError
    from preflab.settings import Settings
    from preflab.store.engine import open_workspace, resolve_database_url
    from preflab.store.queries.projects import find_project

    url = resolve_database_url(db, workspace, env_url=Settings().database_url)
    engine = open_workspace(url)
    try:
        with engine.connect() as conn:
            row = find_project(conn, project)
            if row is None:
                raise NotFoundError(
                    f"no project {project!r} in {url}; `preflab projects list` shows the "
                    "projects",
                    field="project",
                    value=project,
                )
            return project_battles(conn, row.project_id), str(row.name)
    finally:
        engine.dispose()


def register(app: typer.Typer) -> None:
    """Add the ``leaderboard`` command to the app."""

    @app.command("leaderboard", help=HELP)
    def leaderboard(
        path: Path | None = typer.Argument(
            None, help="Battle file (JSONL, JSON, Parquet or CSV); omit with --project."
        ),
        project: str | None = typer.Option(
            None, "--project", help="Rate this workspace project's arena votes (name or id)."
        ),
        workspace: Path | None = typer.Option(
            None, "--workspace", "-w", help="Workspace folder (with --project)."
        ),
        db: str | None = typer.Option(None, "--db", help="Database URL (with --project)."),
        battles_out: Path | None = typer.Option(
            None, "--battles-out", help="Also write the battles read as a JSONL battle file."
        ),
        reader: str | None = typer.Option(
            None, "--reader", help="Read PATH with this import format (e.g. arena) instead."
        ),
        ties: str = typer.Option(
            "half", "--ties", help="Tie rule: half (Chatbot Arena), drop, rao-kupper, davidson."
        ),
        both_bad: str = typer.Option(
            "tie", "--both-bad", help="Both-bad votes: tie (as Chatbot Arena) or drop."
        ),
        anchor: str | None = typer.Option(
            None, "--anchor", help="Model fixed at --anchor-rating (default: mean = 1000)."
        ),
        anchor_rating: float = typer.Option(1000.0, "--anchor-rating", help="Anchor's rating."),
        rounds: int = typer.Option(100, "--rounds", help="Bootstrap rounds."),
        seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
        confidence: float = typer.Option(0.95, "--confidence", help="Interval coverage."),
        l2: float = typer.Option(
            0.0, "--l2", help="Ridge on strengths (0 = maximum likelihood; 1e-6 as Arena's C=1e6)."
        ),
        style_control: bool = typer.Option(
            False, "--style-control", help="Also rate with length/markdown covariates."
        ),
        keep_non_anonymous: bool = typer.Option(
            False, "--keep-non-anonymous", help="Keep votes cast after model names were shown."
        ),
        keep_self_identified: bool = typer.Option(
            False, "--keep-self-identified", help="Keep votes whose answers name a model."
        ),
        max_votes_per_judge: int | None = typer.Option(
            None, "--max-votes-per-judge", help="Keep at most N votes per judge."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
        html: Path | None = typer.Option(None, "--html", help="Also write an HTML page here."),
    ) -> None:
        # imported here so that `preflab --help` does not load SciPy and Polars
        from preflab.arena import (
            battles_from_judgments,
            build_leaderboard,
            leaderboard_to_dict,
            read_battles,
            render_leaderboard_html,
        )

        if (path is None) == (project is None):
            raise UsageError("give either a battle file PATH or --project (not both)",
                             field="path")
        if project is None and (workspace is not None or db is not None):
            raise UsageError("--workspace and --db go with --project", field="workspace")
        if project is not None and reader is not None:
            raise UsageError("--reader reads a file; it does not go with --project",
                             field="reader")
        label = ""
        if project is not None:
            battles, label = _project_battles(project, db, workspace)
            if battles.height == 0:
                if battles_out is not None:
                    _write_atomic(battles_out, "")
                raise UsageError(
                    f"project {label!r} has no arena votes yet; they come from live arena "
                    "battles in the app",
                    field="project",
                )
        elif reader is not None:
            assert path is not None
            from preflab.formats.registry import read

            chunk = read(reader, path)
            battles = battles_from_judgments(chunk.judgments, chunk.responses)
            if battles.height == 0:
                raise UsageError(
                    f"the {reader} reader found no pairwise judgments in {path}",
                    path=str(path),
                )
        else:
            assert path is not None
            battles = read_battles(path)
        if battles_out is not None:
            from preflab.collect.battles import battles_jsonl

            _write_atomic(battles_out, battles_jsonl(battles))
        title = f"Leaderboard: {label if path is None else path.name}"
        board = build_leaderboard(
            battles,
            ties=ties.replace("-", "_"),  # type: ignore[arg-type]  # checked by the library
            both_bad=both_bad,  # type: ignore[arg-type]
            anchor=anchor,
            anchor_rating=anchor_rating,
            rounds=rounds,
            seed=seed,
            confidence=confidence,
            l2=l2,
            style_control=style_control,
            require_anonymous=not keep_non_anonymous,
            drop_self_identified=not keep_self_identified,
            max_votes_per_judge=max_votes_per_judge,
        )
        if html is not None:
            _write_atomic(html, render_leaderboard_html(board, title=title))
        if as_json:
            typer.echo(json.dumps(leaderboard_to_dict(board), ensure_ascii=False))
        else:
            console = Console()
            _show(board, console)
            if html is not None:
                console.print(f"wrote {html}")
            if battles_out is not None:
                console.print(f"wrote {battles.height} battles to {battles_out}")
