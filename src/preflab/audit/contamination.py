"""Contamination: long word n-gram overlap between the dataset and a user-given eval set.

The 13-gram rule of GPT-3 (Brown et al. 2020, "Language Models are Few-Shot Learners",
appendix C): a training text is contaminated when it shares any 13-word sequence with an
eval item (lower-cased ``\\w+`` words). Eval items shorter than ``n`` words count as one
n-gram of all their words, so they match only texts that equal them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from preflab.audit.duplicates import prompt_text
from preflab.audit.shingles import shingle_texts, unique_sorted
from preflab.errors import InputError

__all__ = ["contamination", "read_eval_texts"]


def contamination(
    pairs: pa.Table | pl.DataFrame,
    eval_texts: list[str] | pl.Series,
    *,
    n: int = 13,
    columns: tuple[str, ...] = ("prompt", "chosen", "rejected"),
    examples: int = 20,
) -> dict[str, Any]:
    """Return rows of ``pairs`` sharing a word ``n``-gram with any of ``eval_texts``.

    Args:
        pairs: the dataset (``prompt`` may be messages or text; other columns text).
        eval_texts: the eval set (questions, or questions with answers).
        n: n-gram length in words (13 as in GPT-3's contamination study).
        columns: which columns of ``pairs`` to check.
        examples: how many (row, eval item) examples to keep.

    Returns:
        ``contaminated_rows`` and share, per column counts, ``eval_items_hit`` and examples.
    """
    df = pairs if isinstance(pairs, pl.DataFrame) else pl.from_arrow(pairs)
    assert isinstance(df, pl.DataFrame)
    ev = shingle_texts(eval_texts if isinstance(eval_texts, pl.Series) else pl.Series(list(eval_texts), dtype=pl.String), n=n)
    order = np.argsort(ev.hashes, kind="stable")
    ev_hash, ev_doc = ev.hashes[order], ev.docs[order]
    hit_rows = np.zeros(df.height, dtype=bool)
    per_column: dict[str, int] = {}
    found: dict[int, int] = {}
    eval_hit: set[int] = set()
    for col in columns:
        if col not in df.columns:
            continue
        text = prompt_text(df, col) if col == "prompt" else df[col].fill_null("")
        sh = shingle_texts(text, n=n)
        if len(ev_hash) == 0 or len(sh.hashes) == 0:
            per_column[col] = 0
            continue
        pos = np.searchsorted(ev_hash, sh.hashes)
        pos = np.minimum(pos, len(ev_hash) - 1)
        match = ev_hash[pos] == sh.hashes
        rows = unique_sorted(sh.docs[match])
        per_column[col] = len(rows)
        hit_rows[rows] = True
        rows_m, ev_m = sh.docs[match], ev_doc[pos[match]]
        eval_hit.update(unique_sorted(ev_m).tolist())
        first_rows, first_idx = unique_sorted(rows_m, return_index=True)
        for r, e in zip(first_rows[:examples].tolist(), ev_m[first_idx[:examples]].tolist(), strict=True):
            found.setdefault(r, e)
    n_rows = df.height
    return {
        "ngram": n,
        "eval_items": ev.n_texts,
        "rows": n_rows,
        "contaminated_rows": int(hit_rows.sum()),
        "share": float(hit_rows.mean()) if n_rows else None,
        "by_column": per_column,
        "eval_items_hit": len(eval_hit),
        "examples": [{"row": r, "eval_item": e} for r, e in sorted(found.items())[:examples]],
    }


_TEXT_FIELDS = ("prompt", "question", "input", "instruction", "text", "problem", "query")


def read_eval_texts(path: str | Path) -> list[str]:
    """Return the texts of an eval set file: ``.txt`` (one per line) or JSON lines / Parquet.

    In JSON lines and Parquet the first column named ``prompt``, ``question``, ``input``,
    ``instruction``, ``text``, ``problem`` or ``query`` is used (gzip is read as is).

    Raises:
        InputError: no such column, or a JSON line that does not parse (with its line).
    """
    import gzip
    import json

    p = Path(path)
    name = p.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        df = pl.read_parquet(p)
        col = next((c for c in _TEXT_FIELDS if c in df.columns), None)
        if col is None:
            raise InputError(
                f"{p}: no text column; expected one of {', '.join(_TEXT_FIELDS)}, "
                f"found {', '.join(df.columns)}", path=str(p), field="columns")
        return df[col].drop_nulls().cast(pl.String).to_list()
    opener = gzip.open if p.name.endswith(".gz") else open
    with opener(p, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if not name.endswith((".jsonl", ".json")):
        return [ln for ln in lines if ln.strip()]
    out = []
    for i, ln in enumerate(lines, start=1):
        if not ln.strip():
            continue
        try:
            row = json.loads(ln)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg}); each line must be one JSON object",
                             path=str(p), line=i) from None
        col = next((c for c in _TEXT_FIELDS if isinstance(row, dict) and isinstance(row.get(c), str)), None)
        if col is None:
            raise InputError(
                f"no text field; expected one of {', '.join(_TEXT_FIELDS)} with a string value",
                path=str(p), line=i, field=_TEXT_FIELDS[0])
        out.append(row[col])
    return out
