"""Train/test splits grouped by ``prompt_id``, so that no prompt appears in two splits.

Each prompt id is hashed with the seed (BLAKE2b, so the result is the same on every machine
and Python version) to a number in ``[0, 1)`` that picks the split by the cumulative
fractions. Every row of a prompt therefore lands in the same split, the assignment does not
depend on row order, and adding rows never moves an existing prompt. Prompt ids given as a
gold set go to their own held-out split (``gold``) whatever their hash.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from preflab.errors import UsageError

__all__ = ["DEFAULT_FRACTIONS", "assign_splits", "split_counts"]

DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.9, "test": 0.1}


def _unit(seed: int, prompt_id: str) -> float:
    digest = hashlib.blake2b(f"{seed}:{prompt_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _check(fractions: Mapping[str, float], gold_split: str) -> list[tuple[str, float]]:
    if not fractions:
        raise UsageError("fractions is empty; give e.g. {'train': 0.9, 'test': 0.1}.",
                         field="fractions")
    for name, share in fractions.items():
        if not name:
            raise UsageError("a split needs a name.", field="fractions")
        if not (share >= 0) or math.isinf(share):
            raise UsageError(f"split {name!r}: the fraction must be zero or more, got {share}.",
                             field="fractions", value=share)
    total = sum(fractions.values())
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        raise UsageError(
            f"split fractions must add up to 1, got {total:g} ({dict(fractions)}).",
            field="fractions",
            value=dict(fractions),
        )
    if gold_split in fractions:
        raise UsageError(f"{gold_split!r} is reserved for the gold set; rename that split.",
                         field="fractions", value=gold_split)
    edges, acc = [], 0.0
    for name, share in fractions.items():
        acc += share
        edges.append((name, acc))
    return edges


def assign_splits(
    table: pa.Table,
    fractions: Mapping[str, float] | None = None,
    *,
    seed: int = 0,
    gold_prompt_ids: Iterable[str] | None = None,
    gold_split: str = "gold",
) -> pa.Table:
    """Return ``table`` with its ``split`` column set, grouped by ``prompt_id``.

    Args:
        table: any table with a ``prompt_id`` column (pairs, unpaired rows, ties).
        fractions: share of prompts per split, in order; must add up to 1.
            Defaults to ``{"train": 0.9, "test": 0.1}``.
        seed: changes the assignment; the same seed always gives the same splits.
        gold_prompt_ids: prompts held out in ``gold_split`` (e.g. a gold-labelled set).
        gold_split: name of the held-out split.

    Returns:
        The table with a ``split`` column (replaced or appended).

    Raises:
        UsageError: fractions that do not add up to 1, or a negative fraction.

    >>> t = pa.table({"prompt_id": ["a", "b", "a"]})
    >>> s = assign_splits(t, {"train": 0.5, "test": 0.5}, seed=1).column("split").to_pylist()
    >>> s[0] == s[2]
    True
    """
    edges = _check(DEFAULT_FRACTIONS if fractions is None else fractions, gold_split)
    gold = set(gold_prompt_ids or ())
    ids = table.column("prompt_id")
    unique = pc.unique(ids).to_pylist()
    names = [name for name, _ in edges]
    lookup: dict[str, int] = {}
    for pid in unique:
        if pid in gold:
            lookup[pid] = len(names)
            continue
        u = _unit(seed, pid)
        for k, (_, upper) in enumerate(edges):
            if u < upper:
                lookup[pid] = k
                break
        else:  # u within float rounding of 1.0
            lookup[pid] = len(edges) - 1
    labels = pa.array(names + [gold_split], pa.string())
    codes = pc.index_in(ids, value_set=pa.array(unique, ids.type))
    per_unique = pa.array([lookup[p] for p in unique], pa.int32())
    split = pc.take(labels, pc.take(per_unique, codes))
    if isinstance(split, pa.ChunkedArray):
        split = split.combine_chunks()
    field = pa.field("split", pa.string())
    if "split" in table.column_names:
        return table.set_column(table.schema.get_field_index("split"), field, split)
    return table.append_column(field, split)


def split_counts(table: pa.Table) -> dict[str, int]:
    """Return the number of rows per split, in first-seen order."""
    counts: dict[str, int] = {}
    for row in pc.value_counts(table.column("split")).to_pylist():
        counts[row["values"]] = row["counts"]
    return counts
