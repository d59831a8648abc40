"""``preflab derive``: judgments → pairs / unpaired rows by named rules, with counts.

The options shared with ``preflab export`` (where the judgments come from, which rules, which
splits) live here; ``export_cmd`` reuses them.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from preflab.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from preflab.derive import Derivation, DeriveConfig

# PyArrow and the derive, formats and store libraries are imported inside the functions, so
# that `preflab --help` does not load them.

HELP = """Turn judgments into training pairs and unpaired rows by named rules; show the counts.

Example:

    preflab derive --from hh-rlhf:harmless-base-test.jsonl.gz --split train=0.9 --split test=0.1

    preflab derive --project harmless --aggregate majority --tie-policy separate --out derived/

    preflab derive --from pku-saferlhf:test.jsonl --judge pku-saferlhf/harmlessness

Reads the workspace (--workspace / --db, optionally one --project) or a file (--from
FORMAT:PATH). With --out it writes pairs.parquet, unpaired.parquet and ties.parquet (the
record schemas of preflab) into a new folder; without it, it only shows what the rules
would produce.
"""


@dataclass(slots=True)
class Source:
    """The record tables to derive from and where they came from."""

    prompts: pa.Table
    responses: pa.Table
    judgments: pa.Table
    label: str


def parse_source(from_: str | None) -> tuple[str, Path] | None:
    """Return ``(format, path)`` from ``FORMAT:PATH``, or None."""
    if from_ is None:
        return None
    fmt, sep, path = from_.partition(":")
    if not sep or not fmt or not path:
        raise UsageError(
            f"--from takes FORMAT:PATH (e.g. hh-rlhf:data.jsonl.gz), got {from_!r}.",
            field="from", value=from_,
        )
    return fmt, Path(path)


def load_source(
    from_: str | None, db: str | None, workspace: Path | None, project: str | None
) -> Source:
    """Return the prompts, responses and judgments of a file or of the workspace store."""
    parsed = parse_source(from_)
    if parsed is not None:
        if db or workspace or project:
            raise UsageError("--from reads a file; do not combine it with --db, --workspace or --project.",
                             field="from")
        from preflab.formats.registry import read

        fmt, path = parsed
        chunk = read(fmt, path)
        return Source(chunk.prompts, chunk.responses, chunk.judgments, f"{fmt}:{path}")
    from preflab.settings import Settings
    from preflab.store.engine import open_workspace, resolve_database_url
    from preflab.store.queries import find_project, read_judgments, read_prompts, read_responses

    url = resolve_database_url(db, workspace, env_url=Settings().database_url)
    engine = open_workspace(url)
    try:
        with engine.connect() as conn:  # one snapshot for the three tables
            project_id = None
            if project:
                row = find_project(conn, project)
                if row is None:
                    raise NotFoundError(f"no project {project!r} in the workspace; "
                                        "`preflab projects list` shows the projects.",
                                        field="project", value=project)
                project_id = row.project_id
            return Source(
                read_prompts(conn, project_id),
                read_responses(conn, project_id),
                read_judgments(conn, project_id),
                f"project {project_id}" if project_id else "workspace",
            )
    finally:
        engine.dispose()


def _name_number(raw: str, flag: str, shape: str, field: str) -> dict[str, float]:
    name, sep, number = raw.partition("=")
    try:
        if not sep or not name:
            raise ValueError(raw)
        return {name: float(number)}
    except ValueError:
        raise UsageError(f"{flag} takes {shape}, got {raw!r}.", field=field, value=raw) from None


def parse_weights(values: list[str], helpsteer2: bool) -> dict[str, float] | None:
    """Return attribute weights from ``ATTR=W`` options (or HelpSteer2's), or None."""
    if helpsteer2 and values:
        raise UsageError("give either --helpsteer2-weights or --attribute-weight, not both.",
                         field="attribute_weight")
    if helpsteer2:
        from preflab.derive import HELPSTEER2_WEIGHTS

        return dict(HELPSTEER2_WEIGHTS)
    if not values:
        return None
    weights: dict[str, float] = {}
    for raw in values:
        weights.update(_name_number(raw, "--attribute-weight", "ATTRIBUTE=NUMBER", "attribute_weight"))
    return weights


def parse_fractions(values: list[str]) -> dict[str, float] | None:
    """Return split fractions from ``NAME=FRACTION`` options, or None for the default."""
    if not values:
        return None
    out: dict[str, float] = {}
    for raw in values:
        out.update(_name_number(raw, "--split", "NAME=FRACTION (e.g. train=0.9)", "split"))
    return out


def read_gold_ids(path: Path | None) -> set[str] | None:
    """Return the prompt ids listed one per line in ``path``."""
    if path is None:
        return None
    try:
        return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    except OSError as exc:
        raise NotFoundError(f"cannot read the gold prompt list {path}: {exc.strerror}.",
                            path=str(path)) from None


@dataclass(slots=True)
class DeriveOptions:
    """The parsed derive and split options of ``derive`` and ``export``."""

    config: DeriveConfig
    fractions: dict[str, float] | None
    gold: set[str] | None


def run_derive(source: Source, options: DeriveOptions) -> Derivation:
    """Derive and assign splits to pairs, ties and unpaired rows (same prompt → same split)."""
    from preflab.derive import Derivation, assign_splits, derive

    result = derive(source.prompts, source.responses, source.judgments, options.config)
    seed = options.config.seed

    def split(t: pa.Table) -> pa.Table:
        return assign_splits(t, options.fractions, seed=seed, gold_prompt_ids=options.gold)

    return Derivation(split(result.pairs), split(result.ties), split(result.unpaired), result.counts)


# The options, declared once, used by `derive` and `export`.
FROM = typer.Option(None, "--from", help="Read FORMAT:PATH through an importer instead of the workspace.")
DB = typer.Option(None, "--db", help="Database URL (default: PREFLAB_DATABASE_URL or the workspace's SQLite).")
WORKSPACE = typer.Option(None, "--workspace", help="Workspace folder.")
PROJECT = typer.Option(None, "--project", help="Only this project (name or id).")
TIE_POLICY = typer.Option("drop", "--tie-policy", help="Ties: drop | separate (kept in their own table).")
RANKING_RULE = typer.Option("all", "--ranking-rule", help="Rankings: all | adjacent | best_vs_rest.")
RATING_RULE = typer.Option("best_vs_random_lower", "--rating-rule",
                           help="Ratings: best_vs_random_lower | best_vs_worst | all_above_margin.")
MIN_MARGIN = typer.Option(0.0, "--min-margin", help="Ratings: smallest score difference that makes a pair.")
ATTRIBUTE_WEIGHT = typer.Option([], "--attribute-weight", help="Ratings: ATTRIBUTE=WEIGHT (repeatable).")
HELPSTEER2 = typer.Option(False, "--helpsteer2-weights",
                          help="Ratings: the Nemotron-4-340B-Reward weights over HelpSteer2 attributes.")
AGGREGATE = typer.Option("none", "--aggregate",
                         help="Several judges on one item: none | majority | mean_strength | dawid_skene.")
MULTITURN = typer.Option("as_recorded", "--multiturn", help="Earlier turns: as_recorded | continue_chosen.")
FROM_PAIRS = typer.Option("skip", "--from-pairs", help="Unpaired rows: skip | unpair (both sides of every pair).")
SEED = typer.Option(0, "--seed", help="Seed of random choices and of the split assignment.")
SPLIT = typer.Option([], "--split", help="NAME=FRACTION, repeatable (default train=0.9 test=0.1).")
GOLD = typer.Option(None, "--gold-prompts", help="File of prompt ids (one per line) held out as split 'gold'.")
JUDGE = typer.Option([], "--judge",
                    help="Only judgments by this judge id or glob pattern (e.g. 'pku-saferlhf/*'); repeatable.")


def build_options(
    tie_policy: str, ranking_rule: str, rating_rule: str, min_margin: float, attribute_weight: list[str],
    helpsteer2_weights: bool, aggregate: str, multiturn: str, from_pairs: str, seed: int,
    split: list[str], gold_prompts: Path | None, judge: list[str] | None = None,
) -> DeriveOptions:
    """Return the derive options parsed from the command line."""
    from preflab.derive import DeriveConfig

    config = DeriveConfig(
        tie_policy=tie_policy,  # type: ignore[arg-type]  # checked by DeriveConfig
        ranking_rule=ranking_rule,  # type: ignore[arg-type]
        rating_rule=rating_rule,  # type: ignore[arg-type]
        min_margin=min_margin,
        attribute_weights=parse_weights(attribute_weight, helpsteer2_weights),
        aggregate=aggregate,  # type: ignore[arg-type]
        multiturn=multiturn,  # type: ignore[arg-type]
        from_pairs=from_pairs,  # type: ignore[arg-type]
        seed=seed,
        judges=tuple(judge) if judge else None,
    )
    return DeriveOptions(config, parse_fractions(split), read_gold_ids(gold_prompts))


def show_derivation(result: Derivation, console: Console) -> None:
    """Print counts per split and per rule."""
    from preflab.derive import split_counts
    from preflab.formats.card import summarize_rules

    table = Table(title="Derived rows", title_justify="left")
    table.add_column("table")
    table.add_column("split")
    table.add_column("rows", justify="right")
    for name, t in (("pairs", result.pairs), ("unpaired", result.unpaired), ("ties", result.ties)):
        for split, n in (split_counts(t) if t.num_rows else {"-": 0}).items():
            table.add_row(name, split, f"{n:,}")
    console.print(table)
    rules = Table(title="Rules", title_justify="left")
    rules.add_column("rule")
    rules.add_column("parameters")
    rules.add_column("rows", justify="right")
    for r in summarize_rules(result.pairs) + summarize_rules(result.unpaired):
        rules.add_row(r["rule"], json.dumps(r["params"], sort_keys=True), f"{r['rows']:,}")
    console.print(rules)
    dropped = {k: v for k, v in result.counts.items() if not k.startswith("pairs") and k != "unpaired"}
    if dropped:
        console.print("counts: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(dropped.items())))


@contextmanager
def _new_folder(out: Path, overwrite: bool) -> Iterator[Path]:
    if out.exists() and not overwrite:
        raise UsageError(f"{out} already exists. Choose another folder or pass --overwrite.", path=str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def derive_command(
    from_: str | None = FROM,
    db: str | None = DB,
    workspace: Path | None = WORKSPACE,
    project: str | None = PROJECT,
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
    out: Path | None = typer.Option(None, "--out", help="Write pairs/unpaired/ties Parquet into this new folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON on stdout."),
) -> None:
    import pyarrow.parquet as pq

    from preflab.derive import split_counts
    from preflab.formats.card import summarize_rules

    options = build_options(tie_policy, ranking_rule, rating_rule, min_margin, attribute_weight,
                            helpsteer2_weights, aggregate, multiturn, from_pairs, seed, split, gold_prompts,
                            judge=judge)
    source = load_source(from_, db, workspace, project)
    result = run_derive(source, options)
    if out is not None:
        with _new_folder(out, overwrite) as tmp:
            pq.write_table(result.pairs, tmp / "pairs.parquet")
            pq.write_table(result.unpaired, tmp / "unpaired.parquet")
            pq.write_table(result.ties, tmp / "ties.parquet")
    if as_json:
        payload: dict[str, Any] = {
            "source": source.label,
            "counts": result.counts,
            "splits": {
                "pairs": split_counts(result.pairs) if result.pairs.num_rows else {},
                "unpaired": split_counts(result.unpaired) if result.unpaired.num_rows else {},
                "ties": split_counts(result.ties) if result.ties.num_rows else {},
            },
            "rules": summarize_rules(result.pairs) + summarize_rules(result.unpaired),
            "out": str(out) if out else None,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    console = Console()
    console.print(f"source: {source.label}", highlight=False)
    show_derivation(result, console)
    if out is not None:
        console.print(f"wrote {out}/pairs.parquet, unpaired.parquet, ties.parquet", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``preflab derive`` to ``app``."""
    app.command("derive", help=HELP)(derive_command)
