"""``preflab export``: derive, split and write TRL-ready data with a dataset card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from preflab.cli.derive_cmd import (
    AGGREGATE,
    ATTRIBUTE_WEIGHT,
    DB,
    FROM,
    FROM_PAIRS,
    GOLD,
    HELPSTEER2,
    MIN_MARGIN,
    MULTITURN,
    PROJECT,
    RANKING_RULE,
    RATING_RULE,
    SEED,
    SPLIT,
    TIE_POLICY,
    WORKSPACE,
    build_options,
    load_source,
    run_derive,
)
from preflab.errors import UsageError

if TYPE_CHECKING:
    from preflab.formats.trl import ExportResult

# The writers (PyArrow, NumPy) are imported inside the functions, so that `preflab --help`
# does not load them.

HELP = """Export derived pairs (or unpaired rows) that TRL loads as they are, with a dataset card.

Example:

    preflab export --from hh-rlhf:harmless-base-test.jsonl.gz --format trl-preference --style conversational --out hh-dpo/

    preflab export --project harmless --format trl-unpaired --from-pairs unpair --out kto/

    preflab export --format tokenized --tokenizer ./my-tokenizer --margin --out rm/

Formats: trl-preference (prompt/chosen/rejected; --style standard|conversational,
--prompt explicit|implicit, --margin for RewardTrainer), trl-unpaired (prompt/completion/label
for KTO), tokenized (chosen/rejected token ids from --tokenizer), and jsonl, parquet, hf (the
derived rows with every provenance column). One folder per split under --out and a README.md
dataset card. Rows are validated first; a bad row stops the export and nothing is written.
"""

FORMATS = ("trl-preference", "trl-unpaired", "tokenized", "jsonl", "parquet", "hf")


def export_command(
    format: str = typer.Option(..., "--format", help="trl-preference | trl-unpaired | tokenized | jsonl | parquet | hf."),
    out: Path = typer.Option(..., "--out", help="The export folder (created; must not exist unless --overwrite)."),
    from_: str | None = FROM,
    db: str | None = DB,
    workspace: Path | None = WORKSPACE,
    project: str | None = PROJECT,
    style: str = typer.Option("standard", "--style", help="standard (text) | conversational (messages)."),
    prompt: str = typer.Option("explicit", "--prompt", help="explicit (prompt column) | implicit (inside chosen/rejected)."),
    margin: bool = typer.Option(False, "--margin", help="Add the margin column (RewardTrainer)."),
    file_format: str = typer.Option("parquet", "--file-format", help="For trl-* and tokenized: parquet | jsonl | hf."),
    provenance: str = typer.Option("keep", "--provenance", help="keep | drop the provenance columns."),
    rows: str = typer.Option("pairs", "--rows", help="For jsonl/parquet/hf: pairs | unpaired | ties."),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="For tokenized: a local tokenizer folder or name."),
    max_length: int | None = typer.Option(None, "--max-length", help="For tokenized: drop rows longer than this."),
    layout: str = typer.Option("both", "--layout", help="For tokenized: both | trl (chosen_ids) | legacy (input_ids_chosen…)."),
    push_to_hub: str | None = typer.Option(None, "--push-to-hub", help="With --file-format hf: also push to this Hub repo."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
    tie_policy: str = TIE_POLICY,
    ranking_rule: str = RANKING_RULE,
    rating_rule: str = RATING_RULE,
    min_margin: float = MIN_MARGIN,
    attribute_weight: list[str] = ATTRIBUTE_WEIGHT,
    helpsteer2_weights: bool = HELPSTEER2,
    aggregate: str = AGGREGATE,
    multiturn: str = MULTITURN,
    from_pairs: str = FROM_PAIRS,
    seed: int = SEED,
    split: list[str] = SPLIT,
    gold_prompts: Path | None = GOLD,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    from preflab.formats.trl import write_reward_tokenized, write_trl_preference, write_trl_unpaired

    if format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}; got {format!r}.",
                         field="format", value=format)
    if format == "tokenized" and not tokenizer:
        raise UsageError("--format tokenized needs --tokenizer PATH.", field="tokenizer")
    options = build_options(tie_policy, ranking_rule, rating_rule, min_margin, attribute_weight,
                            helpsteer2_weights, aggregate, multiturn, from_pairs, seed, split, gold_prompts)
    source = load_source(from_, db, workspace, project)
    derived = run_derive(source, options)
    title = f"preflab export of {source.label}"
    extras = {"ties": derived.ties} if derived.ties.num_rows else None
    common = {"overwrite": overwrite, "title": title, "derive_counts": derived.counts}
    result: ExportResult
    if format == "trl-preference":
        result = write_trl_preference(
            derived.pairs, out, style=style, prompt=prompt, margin=margin,  # type: ignore[arg-type]
            format=file_format, provenance=provenance, push_to_hub=push_to_hub,  # type: ignore[arg-type]
            extras=extras, **common,  # type: ignore[arg-type]
        )
    elif format == "trl-unpaired":
        result = write_trl_unpaired(
            derived.unpaired, out, style=style, format=file_format,  # type: ignore[arg-type]
            provenance=provenance, push_to_hub=push_to_hub, **common,  # type: ignore[arg-type]
        )
    elif format == "tokenized":
        result = write_reward_tokenized(
            derived.pairs, out, tokenizer, style=style, margin=margin,  # type: ignore[arg-type]
            max_length=max_length, layout=layout, format=file_format,  # type: ignore[arg-type]
            provenance=provenance, **common,  # type: ignore[arg-type]
        )
    else:
        result = _write_rows(derived, rows, out, format, push_to_hub, overwrite, title, derived.counts)
    if as_json:
        typer.echo(json.dumps({"out": str(result.out_dir), "splits": result.split_counts,
                               "files": result.files, "counts": derived.counts,
                               "dropped": result.dropped}, indent=2))
        return
    table = Table(title=f"Exported {format} to {result.out_dir}", title_justify="left")
    table.add_column("split")
    table.add_column("rows", justify="right")
    table.add_column("file")
    for name, n in result.split_counts.items():
        table.add_row(name, f"{n:,}", result.files.get(name, ""))
    console = Console()
    console.print(table)
    if result.dropped:
        console.print("dropped: " + ", ".join(f"{k} {v:,}" for k, v in result.dropped.items()))
    console.print(f"dataset card: {result.out_dir / 'README.md'}", highlight=False)


def _write_rows(derived, rows, out, fmt, push_to_hub, overwrite, title, counts) -> ExportResult:  # type: ignore[no-untyped-def]
    """Write the derived rows themselves (every provenance column) with a card."""
    from preflab.formats.card import (
        CardInfo,
        render_dataset_card,
        summarize_rules,
        summarize_sources,
    )
    from preflab.formats.trl import ExportResult
    from preflab.formats.writers import split_tables, write_export

    tables = {"pairs": derived.pairs, "unpaired": derived.unpaired, "ties": derived.ties}
    if rows not in tables:
        raise UsageError(f"--rows must be pairs, unpaired or ties; got {rows!r}.", field="rows", value=rows)
    table = tables[rows]
    if table.num_rows == 0:
        raise UsageError(f"nothing to export: no {rows} rows were derived.")
    splits = {k: v.drop_columns(["split"]) for k, v in split_tables(table).items()}
    info = CardInfo(
        title=title, export_format=f"{rows} ({fmt})", file_format=fmt,
        split_counts={k: v.num_rows for k, v in splits.items()},
        columns=next(iter(splits.values())).column_names,
        rules=summarize_rules(table), sources=summarize_sources(table), derive_counts=dict(counts),
    )
    files = write_export(splits, out, format=fmt, card=lambda f: render_dataset_card(info, f),
                         overwrite=overwrite, push_to_hub=push_to_hub)
    return ExportResult(Path(out), dict(info.split_counts), files)


def register(app: typer.Typer) -> None:
    """Add ``preflab export`` to ``app``."""
    app.command("export", help=HELP, no_args_is_help=True)(export_command)
