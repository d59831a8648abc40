"""Judgments → unpaired rows (one completion, desirable or not), as KTO trains on.

Rules recorded in the ``rule`` column:

- ``binary_thumbs``: a thumbs-up is a desirable row, a thumbs-down an undesirable one.
- ``pairwise_both_bad``: a pairwise judgment marked both-bad gives two undesirable rows.
- ``unpair`` (only with ``from_pairs="unpair"``): every pair gives its chosen response as a
  desirable row and its rejected response as an undesirable one, like
  ``trl.data_utils.unpair_preference_dataset``.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from preflab.records import UNPAIRED_SCHEMA

__all__ = ["UnpairedRows", "derive_unpaired", "unpair_pairs"]


class UnpairedRows:
    """A column buffer for ``UNPAIRED_SCHEMA`` rows."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {f.name: [] for f in UNPAIRED_SCHEMA}

    def add(self, *, prompt_id: str, prompt: int, completion: str,
            completion_id: str, label: bool, rule: str, judgment_ids: list[str],
            judge_ids: list[str], source: str | None, split: str = "train") -> None:
        """Append one row; ``prompt`` is the row of the prompt in the prompts table."""
        c = self.columns
        c["prompt_id"].append(prompt_id)
        c["prompt"].append(prompt)
        c["completion"].append(completion)
        c["completion_id"].append(completion_id)
        c["label"].append(label)
        c["split"].append(split)
        c["rule"].append(rule)
        c["judgment_ids"].append(judgment_ids)
        c["judge_ids"].append(judge_ids)
        c["source"].append(source)

    def to_table(self, messages: pa.ChunkedArray | pa.Array) -> pa.Table:
        """Return the rows as an Arrow table, prompts taken from the prompts' ``messages``."""
        rows = pa.array(self.columns["prompt"], pa.int64())
        prompt = messages.take(rows).cast(UNPAIRED_SCHEMA.field("prompt").type)
        return pa.table({**self.columns, "prompt": prompt}, schema=UNPAIRED_SCHEMA)


def unpair_pairs(pairs: pa.Table) -> pa.Table:
    """Return two unpaired rows per pair: chosen (label true) and rejected (label false).

    The split of each pair is kept, so a prompt never crosses splits.
    """
    n = pairs.num_rows

    def side(text: str, rid: str, label: bool) -> pa.Table:
        return pa.table(
            {
                "prompt_id": pairs.column("prompt_id"),
                "prompt": pairs.column("prompt"),
                "completion": pairs.column(text),
                "completion_id": pairs.column(rid),
                "label": pa.array([label] * n, pa.bool_()),
                "split": pairs.column("split"),
                "rule": pa.array(["unpair"] * n, pa.string()),
                "judgment_ids": pairs.column("judgment_ids"),
                "judge_ids": pairs.column("judge_ids"),
                "source": pairs.column("source"),
            },
            schema=UNPAIRED_SCHEMA,
        )

    both = pa.concat_tables([side("chosen", "chosen_id", True), side("rejected", "rejected_id", False)])
    # keep each pair's two rows next to each other, as TRL's unpairing does per batch
    order = pc.sort_indices(
        pa.table({"i": pa.concat_arrays([pa.array(range(n)), pa.array(range(n))]),
                  "s": pa.array([0] * n + [1] * n)}),
        sort_keys=[("i", "ascending"), ("s", "ascending")],
    )
    return both.take(order)


def derive_unpaired(
    prompts: pa.Table,
    responses: pa.Table,
    judgments: pa.Table,
    config: Any = None,
    **options: Any,
) -> pa.Table:
    """Return the unpaired rows (``UNPAIRED_SCHEMA``) derived from judgments.

    Thumbs give one row each, both-bad judgments two undesirable rows; with
    ``from_pairs="unpair"`` every derived pair adds its two sides as well. Options are those of
    :class:`preflab.derive.rules.DeriveConfig`.
    """
    from preflab.derive.pairs import derive  # pairs builds on this module's row buffer

    return derive(prompts, responses, judgments, config, **options).unpaired
