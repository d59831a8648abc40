"""``preflab export``: derive, split and write TRL-ready data with a dataset card."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    JUDGE,
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
from preflab.formats.row_policy import OnBadRow, PromptText

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
dataset card that `datasets.load_dataset(OUT)` reads from any directory.

Standard (text) prompts follow one convention per export: --prompt-text transcript (every prompt
an HH-RLHF transcript ending in "Assistant:") or plain (the user's message; one-message prompts
only); completions start with a space.

Every row is checked first. A row the format cannot represent (an empty completion, roles out of
order, …) stops the export with its pair number, record ids and input file and line
(--on-bad-row error, the default), is left out (skip) or is written as it is where the format can
hold it (keep); skipped and kept rows are counted by reason in the output, --json and the card.
Answers that repeat the user's message are legitimate data: exported, and counted as a note.

--drop-likely-flipped leaves out the pairs whose label the other evidence contradicts (flip score
at least --flip-threshold, default 0.5: the Dawid–Skene posterior over annotators, AI judges in
both orders and gold favours the other response; see `preflab audit`, "Likely-flipped labels"),
counted as likely_flipped among the skipped rows; with --project its gold items are known answers.
For pair exports only.
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
    on_bad_row: OnBadRow = typer.Option(
        OnBadRow.error, "--on-bad-row",
        help="Rows a format cannot represent: error (stop, name the row) | skip (leave out, count) | "
             "keep (write where the format can hold it, count).",
    ),
    prompt_text: PromptText = typer.Option(
        PromptText.transcript, "--prompt-text",
        help="Standard style: transcript (every prompt an HH transcript) | plain (the user's message; "
             "one-message prompts only).",
    ),
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
    judge: list[str] = JUDGE,
    drop_likely_flipped: bool = typer.Option(
        False, "--drop-likely-flipped",
        help="Leave out pairs whose flip score is at least --flip-threshold (counted as likely_flipped).",
    ),
    flip_threshold: float = typer.Option(
        0.5, "--flip-threshold", min=0.0, max=1.0,
        help="With --drop-likely-flipped: the flip score from which a pair is left out (0–1].",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    from preflab.formats.trl import (
        write_reward_tokenized,
        write_rows,
        write_trl_preference,
        write_trl_unpaired,
    )

    if format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}; got {format!r}.",
                         field="format", value=format)
    if format == "tokenized" and not tokenizer:
        raise UsageError("--format tokenized needs --tokenizer PATH.", field="tokenizer")
    options = build_options(tie_policy, ranking_rule, rating_rule, min_margin, attribute_weight,
                            helpsteer2_weights, aggregate, multiturn, from_pairs, seed, split, gold_prompts,
                            judge=judge)
    if drop_likely_flipped and (format == "trl-unpaired" or (format in ("jsonl", "parquet", "hf")
                                                             and rows != "pairs")):
        raise UsageError("--drop-likely-flipped leaves out pairs: use it with trl-preference, "
                         "tokenized, or --rows pairs.", field="drop_likely_flipped")
    source = load_source(from_, db, workspace, project)
    derived = run_derive(source, options)
    # the pairs hold copies of the prompts and texts: let the record tables go before writing
    judgments, title = source.judgments, f"preflab export of {source.label}"
    del source
    pairs, left_out = derived.pairs, {}
    if drop_likely_flipped and pairs.num_rows:
        gold = _project_gold(db, workspace, project) if project else None
        pairs, left_out = _drop_flipped(pairs, judgments, flip_threshold, gold)
    extras = {"ties": derived.ties} if derived.ties.num_rows else None
    common = {"overwrite": overwrite, "title": title, "derive_counts": derived.counts}
    result: ExportResult
    policy = {"on_bad_row": on_bad_row.value, "judgments": judgments}
    text = {"prompt_text": prompt_text.value}
    if format == "trl-preference":
        result = write_trl_preference(
            pairs, out, style=style, prompt=prompt, margin=margin,  # type: ignore[arg-type]
            format=file_format, provenance=provenance, push_to_hub=push_to_hub,  # type: ignore[arg-type]
            extras=extras, left_out=left_out, **policy, **text, **common,  # type: ignore[arg-type]
        )
    elif format == "trl-unpaired":
        result = write_trl_unpaired(
            derived.unpaired, out, style=style, format=file_format,  # type: ignore[arg-type]
            provenance=provenance, push_to_hub=push_to_hub, **policy, **text, **common,  # type: ignore[arg-type]
        )
    elif format == "tokenized":
        result = write_reward_tokenized(
            pairs, out, tokenizer, style=style, margin=margin,  # type: ignore[arg-type]
            max_length=max_length, layout=layout, format=file_format,  # type: ignore[arg-type]
            provenance=provenance, left_out=left_out, **policy, **text, **common,  # type: ignore[arg-type]
        )
    else:
        tables = {"pairs": pairs, "unpaired": derived.unpaired, "ties": derived.ties}
        if rows not in tables:
            raise UsageError(f"--rows must be pairs, unpaired or ties; got {rows!r}.", field="rows", value=rows)
        if tables[rows].num_rows == 0:
            raise UsageError(f"nothing to export: no {rows} rows were derived.")
        result = write_rows(tables[rows], out, kind=rows, format=format, push_to_hub=push_to_hub,  # type: ignore[arg-type]
                            left_out=left_out, **policy, **common)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps({"out": str(result.out_dir), "splits": result.split_counts,
                               "files": result.files, "counts": derived.counts,
                               "dropped": result.dropped, "rows": result.rows.to_dict(),
                               "skipped": result.rows.skipped, "kept": result.rows.kept,
                               "notes": result.rows.notes, "sufficiency": result.sufficiency}, indent=2))
        return
    console = Console()
    table = Table(title=f"Exported {format} to {result.out_dir}", title_justify="left")
    table.add_column("split")
    table.add_column("rows", justify="right")
    table.add_column("file")
    for name, n in result.split_counts.items():
        table.add_row(name, f"{n:,}", result.files.get(name, ""))
    console.print(table)
    show_row_report(result, console)
    if result.sufficiency:
        show_sufficiency(result.sufficiency, console)
    console.print(f"dataset card: {result.out_dir / 'README.md'}", highlight=False)


def _project_gold(db: str | None, workspace: Path | None, project: str) -> dict[str, float]:
    """Return the gold directions of the project's gold items (as ``preflab audit --project``)."""
    from preflab.audit.outcomes import gold_from_answers
    from preflab.settings import Settings
    from preflab.store.engine import open_workspace, resolve_database_url
    from preflab.store.queries import find_project
    from preflab.store.queries.audit_inputs import read_gold

    engine = open_workspace(resolve_database_url(db, workspace, env_url=Settings().database_url))
    try:
        with engine.connect() as conn:
            row = find_project(conn, project)
            return gold_from_answers(read_gold(conn, row.project_id)) if row is not None else {}
    finally:
        engine.dispose()


def _drop_flipped(
    pairs: Any, judgments: Any, threshold: float, gold: Mapping[str, float] | None
) -> tuple[Any, dict[str, int]]:
    """Return the pairs without the likely-flipped ones and the count left out, by reason.

    Raises:
        UsageError: every pair is likely flipped (nothing would be written).
    """
    from preflab.audit.flipped import drop_likely_flipped

    kept, dropped, info = drop_likely_flipped(pairs, judgments, gold=gold, threshold=threshold)
    if info.get("skipped_reason"):  # said on stderr, so that --json stays one document
        typer.echo(f"--drop-likely-flipped: no pair scored ({info['skipped_reason']}).", err=True)
    if dropped and kept.num_rows == 0:
        raise UsageError(f"nothing to export: all {dropped:,} pairs are likely flipped (flip score ≥ "
                         f"{threshold}); raise --flip-threshold or export without --drop-likely-flipped.",
                         field="flip_threshold", value=threshold)
    return kept, {"likely_flipped": dropped}


#: Rows the export itself leaves out before the row checks, and why.
LEFT_OUT_REASONS = {
    "likely_flipped": "flip score ≥ --flip-threshold: the evidence favours the other response "
                      "(--drop-likely-flipped)",
}


def show_row_report(result: ExportResult, console: Console) -> None:
    """Print the rows left out, kept and noted, by reason, and where the first ones came from."""
    from preflab.formats.row_policy import BAD_ROW_REASONS, NOTE_REASONS

    r = result.rows
    if r.policy == "unchecked":  # ties: side data, not checked
        return
    lines = [(k, v, "left out") for k, v in r.skipped.items()]
    lines += [(k, v, "written as is") for k, v in r.kept.items()]
    lines += [(k, v, "written (note)") for k, v in r.notes.items()]
    if not lines:
        console.print(f"row checks ({r.policy}): every one of {r.rows_in:,} rows passed.", highlight=False)
        return
    t = Table(title=f"Row checks (--on-bad-row {r.policy}): {r.rows_out:,} of {r.rows_in:,} rows written",
              title_justify="left")
    for col in ("reason", "rows", "done", "what"):
        t.add_column(col, justify="right" if col == "rows" else "left")
    for reason, n, done in lines:
        t.add_row(reason, f"{n:,}", done, BAD_ROW_REASONS.get(reason) or NOTE_REASONS.get(reason)
                  or LEFT_OUT_REASONS.get(reason, ""))
    console.print(t)
    for e in r.examples[:5]:
        where = f"{e.get('source')} line {e['line']}" if e.get("line") is not None else e.get("source", "")
        ids = ", ".join(f"{k} {e[k]}" for k in ("prompt_id", "chosen_id", "rejected_id", "completion_id") if k in e)
        console.print(f"  row {e['row']} ({ids}){' from ' + where if where else ''}: {e['reason']} ({e['action']})",
                      highlight=False)


def show_sufficiency(s: Mapping[str, Any], console: Console) -> None:
    """Print the usable rows per use against the published rules of thumb, and the advice."""
    t = Table(title=f"How much is enough ({s['rows']:,} usable {s['unit']}; {s['training']:,} for training, "
                    f"{s['gold']:,} gold)", title_justify="left")
    for col in ("use", "published", f"have ({s['unit']})", "verdict"):
        t.add_column(col, justify="right" if col == "have" else "left")
    for u in s["uses"]:
        t.add_row(u["label"], f"{u['low']:,}–{u['high']:,} {u['counts']}", f"{u['have']:,}", u["status"])
    console.print(t)
    pa_ = s.get("pair_agreement") or {}
    if pa_.get("multi_judged"):
        console.print(f"agreement: {pa_['unanimous']:,} of {pa_['multi_judged']:,} multi-judged pairs unanimous "
                      f"(mean share agreeing {pa_['mean']:.2f})", highlight=False)
    console.print(s["advice"], highlight=False)
    console.print(f"source: {s['source']}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``preflab export`` to ``app``."""
    app.command("export", help=HELP, no_args_is_help=True)(export_command)
