"""``preflab audit``: can this preference data be trusted? Load, run the checks, show."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from preflab.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

# Polars, SciPy and the audit library are imported inside the command, so that
# `preflab --help` does not load them.

HELP = """Audit preference data: agreement, biases, duplicates, contamination, annotators, batches.

Example:

    preflab audit hh-rlhf harmless-base-test.jsonl.gz --html report.html

    preflab audit --project harmless --json > audit.json

Reads a file in any format `preflab import` reads (FORMAT PATH), or the judgments of a
project in the workspace (--project; its gold items and vendor batches are used too).
Prints findings in words and the main tables;
--json prints every figure; --html writes one self-contained page with plots and links
to example items.
"""


class AuditEngine(str, Enum):
    """Where the prompt-duplicate and contamination steps run (issue 15)."""

    local = "local"
    ray = "ray"


#: Input rows per import chunk when auditing a file. The audit holds the whole file anyway;
#: fewer, larger chunks cost a third less CPU on the 160,800-line HH bench file (3.95 → 2.65 s)
#: for about 70 MB more peak memory (bench/audit_bench.py, issue 15).
AUDIT_CHUNK_ROWS = 200_000


def _load_file(fmt: str, path: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    import polars as pl

    from preflab.formats.registry import read

    chunk = read(fmt, path, chunk_size=AUDIT_CHUNK_ROWS)
    return tuple(pl.from_arrow(t) for t in (chunk.prompts, chunk.responses, chunk.judgments))  # type: ignore[return-value]


def _load_project(
    project: str, db: str | None, workspace: Path | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pa.Table, pa.Table]:
    """Return prompts, responses, judgments, gold answers and batches of a workspace project."""
    import polars as pl

    from preflab.settings import Settings
    from preflab.store.engine import open_workspace, resolve_database_url
    from preflab.store.queries.audit_inputs import read_batches, read_gold
    from preflab.store.queries.projects import find_project
    from preflab.store.queries.records import (
        read_judgments,
        read_prompts,
        read_responses,
    )

    url = resolve_database_url(db, workspace, env_url=Settings().database_url)
    engine = open_workspace(url)
    try:
        with engine.connect() as conn:
            row = find_project(conn, project)
            if row is None:
                raise NotFoundError(
                    f"no project {project!r} in {url}; `preflab projects list` shows the projects",
                    field="project", value=project,
                )
            pid = row.project_id
            tables = [read_prompts(conn, pid), read_responses(conn, pid), read_judgments(conn, pid)]
            gold, batches = read_gold(conn, pid), read_batches(conn, pid)
    finally:
        engine.dispose()
    prompts, responses, judgments = (pl.from_arrow(t) for t in tables)
    return prompts, responses, judgments, gold, batches  # type: ignore[return-value]


def audit_command(
    source: list[str] = typer.Argument(None, help="FORMAT PATH of a file to audit (omit with --project)."),
    project: str | None = typer.Option(None, "--project", help="Audit a project of the workspace."),
    db: str | None = typer.Option(None, "--db", help="Database URL (with --project)."),
    workspace: Path | None = typer.Option(None, "--workspace", help="Workspace folder (with --project)."),
    as_json: bool = typer.Option(False, "--json", help="Print every figure as JSON on stdout."),
    html: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
    eval_set: Path | None = typer.Option(
        None, "--eval-set", help="Eval set to check for contamination (.txt lines, .jsonl or .parquet)."
    ),
    gold_judge: str | None = typer.Option(
        None, "--gold-judge", help="Judge id whose judgments are the gold answers (an expert's)."
    ),
    agreement: bool = typer.Option(True, "--agreement/--no-agreement", help="Compute agreement coefficients."),
    resamples: int = typer.Option(1000, "--resamples", min=0, help="Bootstrap resamples for 95% intervals."),
    threshold: float = typer.Option(0.9, "--threshold", help="Similarity above which a pair is a near-duplicate."),
    tokenizer: Path | None = typer.Option(
        None, "--tokenizer",
        help="Local Hugging Face tokenizer (folder or tokenizer.json) for token lengths; default: a regex.",
    ),
    engine: Annotated[AuditEngine, typer.Option(
        "--engine",
        help="Run the prompt-duplicate and contamination steps here (local) or on Ray Data over "
             "Parquet shards (ray; extra `ray`): the same results.",
    )] = AuditEngine.local,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Ray cluster address for --engine ray (default: a local Ray instance).",
    )] = None,
) -> None:
    import polars as pl

    from preflab.audit import (
        audit_dataset,
        gold_from_answers,
        gold_from_judgments,
        pairs_from_judgments,
    )
    from preflab.audit.contamination import read_eval_texts
    from preflab.audit.outcomes import GoldAnswers
    from preflab.audit.report import print_report, render_html, report_to_json
    from preflab.audit.tokens import load_tokenizer

    if bool(source) == bool(project):
        raise UsageError("give either FORMAT PATH or --project (not both)", field="source")
    if ray_address and engine is not AuditEngine.ray:
        raise UsageError("--ray-address needs --engine ray", field="ray_address", value=ray_address)
    eval_texts = read_eval_texts(eval_set) if eval_set else None  # fail before the slow part
    counter = load_tokenizer(tokenizer) if tokenizer is not None else None
    gold = GoldAnswers()
    gold_sources: list[str] = []
    batches = None
    if source:
        if len(source) != 2:
            raise UsageError(f"expected FORMAT PATH, got {' '.join(source)!r}", field="source")
        prompts, responses, judgments = _load_file(source[0], Path(source[1]))
        title = f"preflab audit · {Path(source[1]).name}"
    else:
        assert project is not None
        prompts, responses, judgments, gold_answers, batch_table = _load_project(project, db, workspace)
        title = f"preflab audit · project {project}"
        if gold_answers.num_rows:
            gold = gold_from_answers(gold_answers)
            gold_sources.append(f"{len(gold)} gold items of the workspace")
        if batch_table.num_rows:
            batches = batch_table
    if gold_judge:
        gold_rows = judgments.filter(pl.col("judge_id") == gold_judge)
        if gold_rows.height == 0:
            raise UsageError(f"--gold-judge {gold_judge!r} made no judgments here", field="gold_judge")
        judge_gold = gold_from_judgments(gold_rows)
        gold = gold | judge_gold  # the judge named on the command line wins where both answer
        gold_sources.append(f"{len(judge_gold)} items judged by --gold-judge {gold_judge}")
        judgments = judgments.filter(pl.col("judge_id") != gold_judge)
    pairs = pairs_from_judgments(judgments, responses, prompts)
    report = audit_dataset(
        pairs, judgments, prompts=prompts, gold=gold or None, gold_source="; ".join(gold_sources) or None,
        batches=batches, tokenizer=counter, include_agreement=agreement, n_resamples=resamples,
        similarity_threshold=threshold, eval_texts=eval_texts, title=title,
        engine=engine.value, ray_address=ray_address,
    )
    if html is not None:
        tmp = html.with_name(html.name + ".part")
        tmp.write_text(render_html(report, pairs), encoding="utf-8")
        tmp.replace(html)
    if as_json:
        typer.echo(report_to_json(report))
    else:
        console = Console()
        print_report(report, console)
        if html is not None:
            console.print(f"HTML report written to [bold]{html}[/]")


def register(app: typer.Typer) -> None:
    """Add ``preflab audit`` to ``app``."""
    app.command("audit", help=HELP, no_args_is_help=True)(audit_command)
