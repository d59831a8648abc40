"""The dataset card (README.md) written beside every export.

The card says what is in the folder and where it came from: rows per split, the conversion
rules and their parameters, the sources, every column (TRL columns and provenance columns),
and how to load the data with ``datasets`` and TRL.

The YAML header carries tags only, no ``configs:`` list: with ``configs`` in a local README,
``datasets`` (5.2) caches the load under the folder's name and the config alone, so loading a
second export with the same folder name returns the first one's rows. The load example names
the files instead (``load_dataset("parquet", data_files={...})``), which works for any split
name; ``load_dataset(OUT)`` also works when the splits are the usual train/test/validation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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


def render_dataset_card(info: CardInfo, files: Mapping[str, str] | None = None) -> str:
    """Return the card's Markdown text (with a YAML header for ``load_dataset``)."""
    header = ["---", "tags:", "- preflab", "- preference", "- trl", "---"]
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
        out.append(f"Side table `{name}/` (not a training split): "
                   + ", ".join(f"{k}: {v}" for k, v in counts.items()) + ".")
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
    if info.load_example:
        out += ["", "## How to load it", "", "```python", info.load_example.strip(), "```"]
    if files:
        out += ["", "## Files", ""]
        out += [f"- `{split}`: `{rel}`" for split, rel in files.items()]
    return "\n".join(out) + "\n"


def write_dataset_card(folder: str | Path, info: CardInfo, files: Mapping[str, str] | None = None) -> Path:
    """Write ``README.md`` into ``folder`` and return its path."""
    path = Path(folder) / "README.md"
    path.write_text(render_dataset_card(info, files), encoding="utf-8")
    return path
