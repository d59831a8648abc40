"""The dataset card (README.md) written beside every export.

The card says what is in the folder and where it came from: rows per split, the prompt
convention, which TRL trainer it is for and with which arguments, how many usable pairs it holds
against published rules of thumb (:mod:`preflab.records.sufficiency`), the rows left out or kept
by the bad-row policy (counted by reason), the conversion rules and their parameters, the
sources, every column, and how to load it.

The YAML header has a ``configs:`` list whose ``data_files`` are relative to the card, as
``datasets`` expects, so ``load_dataset(OUT)`` works from any working directory and for any
split name (``gold`` too), and side tables (``ties/``) are a config of their own instead of being
mixed into the splits. ``datasets`` (5.2) caches a local folder's load under the folder's name,
the config and a hash of the YAML configs, so two exports in folders of the same name would
share one cache entry and the second load would return the first one's rows; each config's
``description`` therefore carries the SHA-256 of the data files (computed by
:func:`~preflab.formats.writers.data_digest`), which makes the hash differ exactly when the data do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from preflab.formats.row_policy import BAD_ROW_REASONS, NOTE_REASONS

__all__ = ["CardInfo", "render_dataset_card", "summarize_rules", "summarize_sources", "write_dataset_card"]

COLUMN_DOCS: Mapping[str, str] = {
    "prompt": "the prompt: a string (standard) or a list of {role, content} messages (conversational)",
    "chosen": "the preferred completion (implicit prompt: prompt and completion together)",
    "rejected": "the dispreferred completion (implicit prompt: prompt and completion together)",
    "completion": "the completion judged on its own",
    "label": "true if the completion is desirable, false if not",
    "margin": "how much better chosen is than rejected (RewardTrainer subtracts it inside the loss)",
    "prompt_id": "stable hash of the prompt messages; splits never share one",
    "chosen_id": "response id of chosen",
    "rejected_id": "response id of rejected",
    "completion_id": "response id of the completion",
    "agreement": "share of the item's judgments agreeing with the outcome (null: one judgment)",
    "rule": "the named conversion rule that made the row",
    "rule_params": "JSON parameters of that rule",
    "judgment_ids": "the judgments behind the row",
    "judge_ids": "the judges (annotators, AI judges) behind the row",
    "guideline_version": "guideline version the judgments followed (null: mixed or unknown)",
    "batch_id": "vendor batch of the judgments (null: mixed or unknown)",
    "source": "where the judgments came from (file or project)",
    "chosen_ids": "token ids of prompt + chosen (TRL RewardTrainer, pre-tokenized)",
    "rejected_ids": "token ids of prompt + rejected (TRL RewardTrainer, pre-tokenized)",
    "input_ids_chosen": "token ids of prompt + chosen",
    "attention_mask_chosen": "attention mask of input_ids_chosen",
    "input_ids_rejected": "token ids of prompt + rejected",
    "attention_mask_rejected": "attention mask of input_ids_rejected",
}


@dataclass(slots=True)
class CardInfo:
    """Everything a dataset card shows."""

    title: str
    export_format: str
    file_format: str
    split_counts: Mapping[str, int]
    columns: Sequence[str]
    rules: Sequence[Mapping[str, Any]] = ()
    sources: Mapping[str, int] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    derive_counts: Mapping[str, int] = field(default_factory=dict)
    load_example: str = ""
    extras: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    folder: str = ""
    rows: Mapping[str, Any] = field(default_factory=dict)
    prompt_convention: str = ""
    training: Sequence[str] = ()
    sufficiency: Mapping[str, Any] = field(default_factory=dict)


def summarize_rules(table: pa.Table) -> list[dict[str, Any]]:
    """Return each distinct (rule, parameters) of a derived table with its row count."""
    if "rule" not in table.column_names:
        return []
    keys = ["rule"] + (["rule_params"] if "rule_params" in table.column_names else [])
    grouped = table.select(keys).group_by(keys).aggregate([([], "count_all")])
    rows = []
    for r in grouped.to_pylist():
        params = json.loads(r["rule_params"]) if r.get("rule_params") else {}
        rows.append({"rule": r["rule"] or "", "params": params, "rows": r["count_all"]})
    return sorted(rows, key=lambda r: (r["rule"], json.dumps(r["params"], sort_keys=True)))


def summarize_sources(table: pa.Table) -> dict[str, int]:
    """Return the row count per ``source`` value (``unknown`` for missing)."""
    if "source" not in table.column_names:
        return {}
    values = pc.fill_null(table.column("source"), "unknown")
    return {r["values"]: r["counts"] for r in pc.value_counts(values).to_pylist()}


_OTHER_REASONS = {"too_long": "longer than --max-length tokens (RewardTrainer would filter it out)"}


def _configs(info: CardInfo, files: Mapping[str, str], digest: str | None) -> list[str]:
    """Return the YAML ``configs:`` lines: the splits, then one config per side table."""
    def data_path(split: str, rel: str) -> str:
        return f"{split}/data-*.arrow" if info.file_format == "hf" else rel

    side_suffix = "jsonl" if info.file_format == "jsonl" else "parquet"
    groups = [("default", {s: data_path(s, rel) for s, rel in files.items()})]
    if info.file_format != "hf":  # hf side tables are Parquet: `datasets` builds every config with one builder
        groups += [(name, {s: f"{name}/{s}/data.{side_suffix}" for s in counts})
                   for name, counts in info.extras.items()]
    lines = ["configs:"]
    for name, paths in groups:
        lines.append(f"- config_name: {name}")
        if digest:
            lines.append(f'  description: "preflab {info.export_format} export; data sha256 {digest}"')
        lines.append("  data_files:")
        for split, path in paths.items():
            lines += [f"  - split: {json.dumps(split)}", f"    path: {json.dumps(path)}"]
    return lines


def _load_snippet(info: CardInfo) -> str:
    folder = info.folder or "."
    if info.file_format == "hf":
        return (f'from datasets import load_from_disk\n\nds = load_from_disk({json.dumps(folder)})  '
                "# any working directory\n# or load_dataset(<this folder>), through the configs above")
    return (f"from datasets import load_dataset\n\nds = load_dataset({json.dumps(folder)})  "
            "# any working directory\n# moved or copied elsewhere: load_dataset(<the folder's new path>)")


def _where(example: Mapping[str, Any]) -> str:
    unit = "row" if "completion_id" in example else "pair"
    ids = ", ".join(f"{k} `{example[k]}`" for k in ("prompt_id", "chosen_id", "rejected_id", "completion_id")
                    if k in example)
    judgments = example.get("judgment_ids") or []
    if judgments:
        ids += f", judgment `{judgments[0]}`" + (f" (+{len(judgments) - 1})" if len(judgments) > 1 else "")
    src = f" from `{example['source']}`" if example.get("source") else ""
    line = f" line {example['line']}" if example.get("line") is not None else ""
    return f"{unit} {example['row']} ({ids}){src}{line}"


def _rows_section(rows: Mapping[str, Any]) -> list[str]:
    policy = rows.get("on_bad_row", "error")
    out = ["", "## Row checks", "",
           f"On bad rows: `{policy}` (`--on-bad-row error|skip|keep`); {rows.get('rows_in', 0):,} rows checked, "
           f"{rows.get('rows_out', 0):,} written."]
    table = [(r, n, "left out") for r, n in rows.get("skipped", {}).items()]
    table += [(r, n, "written as is") for r, n in rows.get("kept", {}).items()]
    table += [(r, n, "written (note)") for r, n in rows.get("notes", {}).items()]
    if not table:
        out += ["", "Every row passed every check."]
        return out
    out += ["", "| reason | what | rows | done |", "| --- | --- | ---: | --- |"]
    for reason, n, done in table:
        what = BAD_ROW_REASONS.get(reason) or NOTE_REASONS.get(reason) or _OTHER_REASONS.get(reason, "")
        out.append(f"| `{reason}` | {what} | {n:,} | {done} |")
    examples = rows.get("examples") or []
    if examples:
        out += ["", "Where they came from (first ones):", ""]
        out += [f"- {_where(e)}: `{e['reason']}` ({e['action']})" for e in examples[:10]]
    return out


def _sufficiency_section(s: Mapping[str, Any]) -> list[str]:
    out = ["", "## How much is enough", ""]
    split = ", ".join(f"{k} {v:,}" for k, v in s.get("by_split", {}).items())
    out.append(f"{s['rows']:,} usable {s['unit']} ({split}): {s['training']:,} for training, "
               f"{s['held_out']:,} held out for evaluation, {s['gold']:,} in the gold split.")
    out += ["", f"| use | published figure | this export ({s['unit']}) | verdict |", "| --- | --- | ---: | --- |"]
    for u in s["uses"]:
        out.append(f"| {u['label']} | {u['low']:,}–{u['high']:,} {u['counts']} | {u['have']:,} | {u['status']} |")
    pa_ = s.get("pair_agreement") or {}
    if pa_.get("multi_judged"):
        out += ["", f"Agreement: {pa_['multi_judged']:,} pairs rest on several judgments, {pa_['unanimous']:,} of "
                    f"them unanimous (mean share agreeing {pa_['mean']:.2f})."]
    else:
        out += ["", "Agreement: not measured (no pair rests on more than one judgment)."]
    a = s.get("agreement")
    if a:
        out.append(f"{a.get('name', 'Agreement')}: {a.get('value', float('nan')):.3f} ({a.get('verdict')}).")
    if s.get("gold_accuracy") is not None:
        out.append(f"Gold accuracy: {100 * s['gold_accuracy']:.1f}% on {s.get('gold_judgments') or 0:,} judgments.")
    else:
        out.append("Gold accuracy: not measured here (`preflab audit` measures it against gold answers).")
    out += ["", s["advice"], "", f"Source of the figures: {s['source']}."]
    return out


def render_dataset_card(info: CardInfo, files: Mapping[str, str] | None = None, digest: str | None = None) -> str:
    """Return the card's Markdown text (with a YAML header for ``load_dataset``).

    Args:
        info: what to show.
        files: split → data file relative to the card; gives the YAML ``configs``.
        digest: SHA-256 of the data files, put in the configs (see the module docstring).
    """
    header = ["---", "tags:", "- preflab", "- preference", "- trl"]
    if files:
        header += _configs(info, files, digest)
    header.append("---")
    out = ["\n".join(header), "", f"# {info.title}", ""]
    out.append(
        f"Exported by preflab as **{info.export_format}** ({info.file_format}). "
        "Every row records the rule that made it and the judgments behind it."
    )
    out += ["", "## Splits", "", "| split | rows |", "| --- | ---: |"]
    for split, n in info.split_counts.items():
        out.append(f"| {split} | {n} |")
    out.append(f"| **total** | {sum(info.split_counts.values())} |")
    out.append("")
    out.append("Splits are grouped by `prompt_id`: no prompt appears in two splits.")
    for name, counts in info.extras.items():
        how = (f"`load_dataset(\"parquet\", data_dir=…/{name})`" if info.file_format == "hf"
               else f"`load_dataset(…, {json.dumps(name)})`")
        out.append(f"Side table `{name}/` (not a training split; {how}): "
                   + ", ".join(f"{k}: {v}" for k, v in counts.items()) + ".")
    if info.prompt_convention:
        out += ["", "## Prompt convention", "", info.prompt_convention]
    if info.training:
        out += ["", "## Training with TRL", ""]
        out += [f"- {t}" for t in info.training]
    if info.sufficiency:
        out += _sufficiency_section(info.sufficiency)
    if info.rows and info.rows.get("on_bad_row") != "unchecked":
        out += _rows_section(info.rows)
    if info.options:
        out += ["", "## Export options", ""]
        out += [f"- `{k}`: `{json.dumps(v)}`" for k, v in info.options.items()]
    out += ["", "## Rules used", ""]
    if info.rules:
        out += ["| rule | parameters | rows |", "| --- | --- | ---: |"]
        for r in info.rules:
            out.append(f"| `{r['rule']}` | `{json.dumps(r['params'], sort_keys=True)}` | {r['rows']} |")
    else:
        out.append("No rule column in this export.")
    if info.derive_counts:
        out += ["", "What the rules kept and dropped:", ""]
        out += [f"- {k}: {v}" for k, v in sorted(info.derive_counts.items())]
    out += ["", "## Sources", ""]
    if info.sources:
        out += [f"- `{s}`: {n} rows" for s, n in info.sources.items()]
    else:
        out.append("Not recorded.")
    out += ["", "## Columns", ""]
    for c in info.columns:
        out.append(f"- `{c}`: {COLUMN_DOCS.get(c, '')}".rstrip(": "))
    load = info.load_example or (_load_snippet(info) if info.folder else "")
    if load:
        out += ["", "## How to load it", "", "```python", load.strip(), "```"]
    if files:
        out += ["", "## Files", ""]
        out += [f"- `{split}`: `{rel}`" for split, rel in files.items()]
        if digest:
            out.append(f"- SHA-256 of the data files (paths and bytes, in path order): `{digest}`")
    return "\n".join(out) + "\n"


def write_dataset_card(folder: str | Path, info: CardInfo, files: Mapping[str, str] | None = None,
                       digest: str | None = None) -> Path:
    """Write ``README.md`` into ``folder`` and return its path."""
    path = Path(folder) / "README.md"
    path.write_text(render_dataset_card(info, files, digest), encoding="utf-8")
    return path
