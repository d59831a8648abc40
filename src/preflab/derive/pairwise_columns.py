"""Pairwise judgments → pairs a column at a time (rule ``pairwise_likert``, ``aggregate="none"``).

The same rule as :func:`preflab.derive.pairs.derive` applies judgment by judgment (see its
module docstring), computed with Arrow and Polars over whole columns instead of one Python
object per judgment: 160,800 HH-RLHF judgments take a tenth of a second instead of seconds
(issue 18). Ties and both-bad judgments, which make no pair, are handed back to the
per-judgment code with their agreement, so ties and unpaired rows come out as before.

:func:`columnar_pairwise` returns ``None`` when a pairwise row has a shape the per-judgment code
must judge itself (a missing value field, other than two responses shown): that code then runs
for every row, with its own errors.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from preflab.errors import InputError
from preflab.records import PAIR_SCHEMA, normalize_text

__all__ = ["ColumnarPairwise", "columnar_pairwise", "missing_prompt", "missing_response"]

# What Python's str.strip() removes (every character whose str.isspace() is true).
_SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
RULE = "pairwise_likert"


def missing_prompt(judgment_id: str, prompt_id: str) -> InputError:
    """Return the error for a judgment whose prompt is not in the prompts table."""
    return InputError(
        f"judgment {judgment_id} refers to prompt {prompt_id!r}, which is not in the "
        "prompts table. Derive from tables read from the same project or file.",
        field="prompt_id",
        value=prompt_id,
    )


def missing_response(judgment_id: str, response_id: str) -> InputError:
    """Return the error for a judgment naming a response that is not in the responses table."""
    return InputError(
        f"judgment {judgment_id} refers to response {response_id!r}, which is not in "
        "the responses table. Derive from tables read from the same project or file.",
        field="response_ids",
        value=response_id,
    )


@dataclass(slots=True)
class ColumnarPairwise:
    """The pairwise part of a derivation.

    Attributes:
        pairs: the pairs, ``PAIR_SCHEMA`` except ``prompt``: the row of the prompt in the
            prompts table (int64), as the per-judgment buffers hold it.
        rest: rows of the judgments table (ascending) left to the per-judgment code: every
            other kind, and pairwise ties and both-bad judgments.
        agreement: for the pairwise rows among ``rest``: row → agreement (or ``None``).
        counts: what the pairs part counted (``pairs``, ``identical_dropped``), keys in the
            order the per-judgment code would first count them.
        first_count_row: row of the first judgment behind each key of ``counts``.
        error_row: the row whose judgment names a missing prompt or response, if any, and
            the error; the per-judgment code raises it when it reaches that row.
    """

    pairs: pa.Table
    rest: np.ndarray
    agreement: dict[int, float | None]
    counts: dict[str, int]
    first_count_row: dict[str, int]
    error_row: int | None = None
    error: InputError | None = None


def _last_index(keys: pa.ChunkedArray | pa.Array, query: pa.Array) -> pa.Array:
    """Return, per value of ``query``, the last row of ``keys`` holding it (null if none).

    (``{key: row}`` dicts keep the last row of a repeated key; this matches them.)
    """
    n = len(keys)
    reverse = pa.array(np.arange(n - 1, -1, -1, dtype=np.int64))
    flipped = pc.take(keys, reverse)
    found = pc.index_in(query, value_set=flipped)
    return pc.subtract(pa.scalar(n - 1, pa.int64()), found.cast(pa.int64()))


def _is_regular(pw: pa.StructArray, kinds: pa.Array, shown: pa.ListArray) -> pa.Array | None:
    """Return the mask of pairwise rows, or None when one of them needs the per-judgment code."""
    is_pairwise = pc.fill_null(pc.equal(kinds, "pairwise"), False)
    if not pc.any(is_pairwise).as_py():
        return is_pairwise
    sub = pc.filter(pw, is_pairwise)
    shown_sub = pc.filter(shown, is_pairwise)
    tie, both_bad = sub.field("tie"), sub.field("both_bad")
    if sub.null_count or tie.null_count or both_bad.null_count:
        return None
    if pc.any(pc.not_equal(pc.list_value_length(shown_sub), 2)).as_py():
        return None
    if shown_sub.null_count or pc.list_flatten(shown_sub).null_count:
        return None
    paired = pc.invert(pc.or_(tie, both_bad))
    for name in ("preferred", "scale", "strength"):
        if pc.any(pc.and_(paired, pc.is_null(sub.field(name)))).as_py():
            return None
    return is_pairwise


def _comparable_texts(contents: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Return each response text as ``normalize_text`` leaves it, for equality tests.

    Texts already in NFC (every ASCII text, and most others: ``unicodedata.is_normalized``)
    only need the line endings unified and the outer whitespace cut, done on the whole column;
    the few others go through :func:`~preflab.records.normalize_text` itself.
    """
    contents = pa.chunked_array([contents]) if isinstance(contents, pa.Array) else contents
    contents = contents.combine_chunks() if contents.num_chunks != 1 else contents.chunk(0)
    ascii_ = pc.fill_null(pc.string_is_ascii(contents), True).to_numpy(zero_copy_only=False)
    odd = [
        int(i)
        for i in np.flatnonzero(~ascii_)
        if not unicodedata.is_normalized("NFC", contents[int(i)].as_py())
    ]
    texts = pc.utf8_trim(pc.replace_substring(contents, "\r\n", "\n"), _SPACE)
    if odd:
        fixed = [normalize_text(contents[i].as_py()) for i in odd]
        texts = _replace_at(texts, odd, fixed)
    return texts


def _replace_at(values: pa.Array, at: list[int], new: list[str]) -> pa.Array:
    """Return ``values`` with the rows ``at`` replaced by ``new``."""
    mask = np.zeros(len(values), dtype=bool)
    mask[at] = True
    spread = [None] * len(values)
    for i, text in zip(at, new, strict=True):
        spread[i] = text
    return pc.if_else(pa.array(mask), pa.array(spread, pa.string()), values)


def columnar_pairwise(
    prompts: pa.Table, responses: pa.Table, judgments: pa.Table, params: str
) -> ColumnarPairwise | None:
    """Return the pairs of the regular pairwise judgments, or None (see the module docstring).

    Args:
        prompts, responses, judgments: the record tables given to ``derive``.
        params: the ``rule_params`` JSON recorded on each pair.
    """
    n = judgments.num_rows
    if "pairwise" not in judgments.column_names or n == 0:
        return None
    kinds = judgments.column("kind").combine_chunks()
    pw = judgments.column("pairwise").combine_chunks()
    shown = judgments.column("response_ids").combine_chunks()
    mask = _is_regular(pw, kinds, shown)
    if mask is None:
        return None
    is_pairwise = mask.to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(is_pairwise)
    at = pa.array(rows, pa.int64())

    def pick(name: str, type_: pa.DataType, index: pa.Array = at) -> pa.Array:
        if name not in judgments.column_names:
            return pa.nulls(len(index), type_)
        return pc.take(judgments.column(name), index).combine_chunks()

    spw = pc.take(pw, at)
    sshown = pc.take(shown, at)
    first = pc.list_element(sshown, 0)
    second = pc.list_element(sshown, 1)
    in_order = pc.less_equal(first, second)
    a = pc.if_else(in_order, first, second)
    b = pc.if_else(in_order, second, first)
    tie = spw.field("tie").to_numpy(zero_copy_only=False)
    both_bad = spw.field("both_bad").to_numpy(zero_copy_only=False) & ~tie
    preferred_a = pc.fill_null(pc.equal(spw.field("preferred"), a), False).to_numpy(
        zero_copy_only=False
    )
    # 0 a, 1 b, 2 tie, 3 both bad: the label of the vote, as derive.aggregate's Vote has it
    label = np.where(tie, 2, np.where(both_bad, 3, np.where(preferred_a, 0, 1))).astype(np.int8)
    prompt_ids = pick("prompt_id", pa.string())
    counted = pl.DataFrame(
        {"p": pl.from_arrow(prompt_ids), "a": pl.from_arrow(a), "b": pl.from_arrow(b),
         "label": label}
    ).select(
        pl.len().over(["p", "a", "b"]).alias("votes"),
        pl.len().over(["p", "a", "b", "label"]).alias("same"),
    )
    votes = counted.get_column("votes").to_numpy()
    agreement = np.where(votes > 1, counted.get_column("same").to_numpy() / votes, np.nan)

    paired = label <= 1
    # the rest: every non-pairwise row and the pairwise ties and both-bad votes, in row order
    unpaired_rows = rows[~paired]
    rest = np.sort(np.concatenate([np.flatnonzero(~is_pairwise), unpaired_rows]))
    rest_agreement = {
        int(r): (None if np.isnan(g) else float(g))
        for r, g in zip(unpaired_rows, agreement[~paired], strict=True)
    }

    take = pa.array(np.flatnonzero(paired), pa.int64())
    p_rows = rows[paired]
    is_a = pa.array(label[paired] == 0)
    a_p, b_p = pc.take(a, take), pc.take(b, take)
    chosen_id = pc.if_else(is_a, a_p, b_p)
    rejected_id = pc.if_else(is_a, b_p, a_p)
    ppw = pc.take(spw, take)
    scale = ppw.field("scale").to_numpy(zero_copy_only=False).astype(np.int64)
    strength = ppw.field("strength").to_numpy(zero_copy_only=False).astype(np.int64)
    margin = strength / np.maximum(scale // 2, 1)
    pair_prompt_ids = pc.take(prompt_ids, take)

    response_ids = responses.column("response_id")
    chosen_row = _last_index(response_ids, chosen_id)
    rejected_row = _last_index(response_ids, rejected_id)
    prompt_row = _last_index(prompts.column("prompt_id"), pair_prompt_ids)
    missing_c = pc.is_null(chosen_row).to_numpy(zero_copy_only=False)
    missing_r = pc.is_null(rejected_row).to_numpy(zero_copy_only=False)
    lookup_failed = missing_c | missing_r
    identical = pc.equal(chosen_id, rejected_id).to_numpy(zero_copy_only=False)
    if responses.num_rows:
        # equal texts get equal codes: compare integers per pair, not strings
        codes = pc.dictionary_encode(_comparable_texts(responses.column("content"))).indices
        same_text = pc.equal(
            pc.take(codes, pc.fill_null(chosen_row, 0)),
            pc.take(codes, pc.fill_null(rejected_row, 0)),
        ).to_numpy(zero_copy_only=False)
        identical = identical | (same_text & ~lookup_failed)
    missing_p = pc.is_null(prompt_row).to_numpy(zero_copy_only=False) & ~identical
    failed = lookup_failed | missing_p

    # the first row whose lookup fails, with the error the per-judgment code raises there
    error_row, error = None, None
    reached = len(p_rows)
    if failed.any():
        k = int(np.flatnonzero(failed)[0])
        jid = pc.take(pick("judgment_id", pa.string()), take)[k].as_py()
        if missing_c[k]:
            error = missing_response(jid, chosen_id[k].as_py())
        elif missing_r[k]:
            error = missing_response(jid, rejected_id[k].as_py())
        else:
            error = missing_prompt(jid, pair_prompt_ids[k].as_py())
        error_row = int(p_rows[k])
        reached = k  # rows after the failing one are never reached
    live = ~identical
    live[reached:] = False
    kept = np.flatnonzero(live)
    dropped = np.flatnonzero(identical[:reached])

    counts: dict[str, int] = {}
    first_count_row: dict[str, int] = {}
    events = []
    if len(kept):
        events.append((int(p_rows[kept[0]]), "pairs", len(kept)))
    if len(dropped):
        events.append((int(p_rows[dropped[0]]), "identical_dropped", len(dropped)))
    for row, key, count in sorted(events):
        counts[key] = count
        first_count_row[key] = row
        if key == "pairs":
            counts[f"pairs.{RULE}"] = count
            first_count_row[f"pairs.{RULE}"] = row

    keep = pa.array(kept, pa.int64())
    at_kept = pa.array(p_rows[kept], pa.int64())  # rows of the judgments table
    m = len(kept)
    contents = responses.column("content")
    one = pa.array(np.arange(m + 1, dtype=np.int32))
    agree_kept = agreement[paired][kept]
    columns: dict[str, Any] = {
        "prompt_id": pc.take(pair_prompt_ids, keep),
        "prompt": pc.take(prompt_row, keep),
        "chosen": pc.take(contents, pc.take(chosen_row, keep)) if m else pa.array([], pa.string()),
        "rejected": pc.take(contents, pc.take(rejected_row, keep)) if m else pa.array([], pa.string()),
        "chosen_id": pc.take(chosen_id, keep),
        "rejected_id": pc.take(rejected_id, keep),
        "margin": pa.array(margin[kept], pa.float64()),
        "agreement": pa.array(agree_kept, pa.float64(), mask=np.isnan(agree_kept)),
        "split": pa.repeat(pa.scalar("train"), m),
        "rule": pa.repeat(pa.scalar(RULE), m),
        "rule_params": pa.repeat(pa.scalar(params), m),
        "judgment_ids": pa.ListArray.from_arrays(one, pick("judgment_id", pa.string(), at_kept)),
        "judge_ids": pa.ListArray.from_arrays(one, pick("judge_id", pa.string(), at_kept)),
        "guideline_version": pick("guideline_version", pa.int32(), at_kept),
        "batch_id": pick("batch_id", pa.string(), at_kept),
        "source": pick("source", pa.string(), at_kept),
    }
    fields = [pa.field("prompt", pa.int64()) if f.name == "prompt" else f for f in PAIR_SCHEMA]
    arrays = [_chunked(columns[f.name]).cast(f.type) for f in fields]
    return ColumnarPairwise(
        pairs=pa.Table.from_arrays(arrays, schema=pa.schema(fields)),
        rest=rest,
        agreement=rest_agreement,
        counts=counts,
        first_count_row=first_count_row,
        error_row=error_row,
        error=error,
    )


def _chunked(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])
