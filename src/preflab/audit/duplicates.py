"""Duplicates and leaks inside a dataset: near-duplicate pairs, duplicate prompts, split leaks.

- Pair similarity uses RapidFuzz's ``fuzz.ratio``: the normalized Indel similarity
  ``1 − indel(a, b) / (|a| + |b|) = 2·LCS(a, b) / (|a| + |b|)`` (RapidFuzz docs, "fuzz.ratio"
  and "Indel.normalized_similarity"). ``difflib.SequenceMatcher.ratio`` has the same formula
  ``2·M / T`` (Python docs, ``SequenceMatcher.ratio``) but counts M with the Ratcliff–Obershelp
  matching blocks, which never exceed the LCS: so ``fuzz.ratio ≥ difflib ratio`` always, and
  they are equal when the greedy matching finds a longest common subsequence (and difflib's
  ``autojunk`` heuristic, on for strings of 200+ characters, drops nothing). The bench and the
  tests measure the gap on the HH-RLHF sample.
- Exact duplicates are counted before anything collapses: pairs repeated with the same prompt,
  chosen and rejected text (a file with lines copied twice), and prompts repeated across pairs,
  each group with its count (:func:`exact_duplicates`).
- Prompt near-duplicates use MinHash (Broder 1997) with LSH banding (Leskovec, Rajaraman &
  Ullman, "Mining of Massive Datasets", ch. 3.4), vectorised with numpy: see
  :mod:`preflab.audit.shingles`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from numpy.typing import NDArray
from rapidfuzz import fuzz, process

from preflab.audit.shingles import minhash_signatures, shingle_texts, unique_sorted
from preflab.errors import InputError, UsageError

__all__ = [
    "exact_duplicates",
    "lsh_params",
    "near_duplicate_pairs",
    "near_duplicate_report",
    "near_duplicate_texts",
    "pair_similarity",
    "prompt_text",
    "split_leaks",
]


def _frame(table: pa.Table | pl.DataFrame) -> pl.DataFrame:
    df = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return df


def prompt_text(
    table: pa.Table | pl.DataFrame, column: str = "prompt", *, roles: bool = True
) -> pl.Series:
    """Return each row's prompt as one string (messages joined as ``role: content`` lines).

    Accepts a messages column (``list[struct{role, content}]``) or a plain string column.

    Args:
        table: the pairs.
        column: the prompt column.
        roles: prefix each message with its role (``user: …``); False joins the contents
            only, the text to compare with outside text (contamination).

    >>> df = pl.DataFrame({"prompt": [[{"role": "user", "content": "Hi"}]]})
    >>> prompt_text(df).to_list(), prompt_text(df, roles=False).to_list()
    (['user: Hi'], ['Hi'])
    """
    df = _frame(table)
    if column not in df.columns:
        raise InputError(f"the table has no column {column!r}", field=column)
    col = df[column]
    if col.dtype == pl.String:
        return col.fill_null("")
    content = pl.element().struct.field("content")
    return df.select(
        pl.col(column)
        .list.eval(pl.element().struct.field("role") + pl.lit(": ") + content if roles else content)
        .list.join("\n")
        .fill_null("")
    ).to_series()


def _groups(df: pl.DataFrame, keys: list[str], examples: int) -> tuple[int, int, list[dict[str, Any]]]:
    """Return (groups of rows sharing ``keys`` that have 2+ rows, extra copies, largest first)."""
    extra = [c for c in ("source_line",) if c in df.columns]
    grouped = (
        df.with_row_index("_row")
        .group_by(keys)
        .agg(pl.len().alias("count"), pl.col("_row").head(10).alias("rows"),
             *[pl.col(c).head(10).alias(c) for c in extra])
        .filter(pl.col("count") > 1)
    )
    if grouped.height == 0:
        return 0, 0, []
    copies = int(grouped["count"].sum()) - grouped.height
    top = grouped.with_columns(pl.col("rows").list.first().alias("_first")).sort(
        ["count", "_first"], descending=[True, False]).head(examples)
    out = []
    for r in top.iter_rows(named=True):
        ex: dict[str, Any] = {"row": int(r["rows"][0]), "count": int(r["count"]),
                              "rows": [int(i) for i in r["rows"]]}
        for c in extra:
            ex[c] = [v for v in r[c] if v is not None]
        out.append(ex)
    return grouped.height, copies, out


def exact_duplicates(pairs: pa.Table | pl.DataFrame, *, examples: int = 20) -> dict[str, Any]:
    """Return pairs repeated exactly and prompts repeated across pairs, each with its count.

    A repeated pair has the same prompt (messages or text), chosen and rejected text as another
    row: usually a line copied twice in a file or a batch delivered twice. It counts twice in
    training and, across splits, leaks. A repeated prompt is shared by several pairs (by
    ``prompt_id`` when present, else by its text): normal where several response pairs were
    judged per prompt, a sign of copying when the pairs are repeated too.

    Args:
        pairs: table with ``chosen``, ``rejected`` and optionally ``prompt`` / ``prompt_id``
            (and ``source_line``, shown in the examples).
        examples: how many groups to keep per kind (largest first); each lists up to 10 rows.

    Returns:
        ``repeated_pairs`` (groups of 2+ identical pairs), ``extra_pair_copies`` (rows beyond
        the first of each group), ``pair_examples`` (``row``, ``count``, ``rows``,
        ``source_line``); the same for prompts (``repeated_prompts``, ``extra_prompt_rows``,
        ``prompt_examples`` with the ``prompt`` text cut to 200 characters).

    >>> df = pl.DataFrame({"prompt": ["q", "q", "q"], "chosen": ["a", "a", "b"], "rejected": ["b", "b", "c"]})
    >>> d = exact_duplicates(df)
    >>> d["repeated_pairs"], d["extra_pair_copies"], d["pair_examples"][0]["count"], d["repeated_prompts"]
    (1, 1, 2, 1)
    """
    df = _frame(pairs)
    for col in ("chosen", "rejected"):
        if col not in df.columns:
            raise InputError(f"the table has no column {col!r}", field=col)
    has_prompt = "prompt" in df.columns
    text = prompt_text(df) if has_prompt else pl.Series("_prompt", [""] * df.height, dtype=pl.String)
    base = df.select(
        *[c for c in ("prompt_id", "source_line") if c in df.columns],
        text.alias("_prompt"),
        pl.col("chosen").fill_null(""),
        pl.col("rejected").fill_null(""),
    )
    n_pairs, pair_copies, pair_ex = _groups(base, ["_prompt", "chosen", "rejected"], examples)
    out: dict[str, Any] = {
        "pairs": df.height,
        "repeated_pairs": n_pairs,
        "extra_pair_copies": pair_copies,
        "pair_examples": pair_ex,
    }
    if has_prompt or "prompt_id" in df.columns:
        key = "prompt_id" if "prompt_id" in df.columns else "_prompt"
        n_prompts, prompt_rows, prompt_ex = _groups(base, [key], examples)
        texts = base["_prompt"]
        for ex in prompt_ex:
            ex["prompt"] = texts[ex["row"]][:200]
        out.update({"prompt_key": key.lstrip("_"), "distinct_prompts": base[key].n_unique(),
                    "repeated_prompts": n_prompts, "extra_prompt_rows": prompt_rows,
                    "prompt_examples": prompt_ex})
    return out


def pair_similarity(
    chosen: list[str] | pl.Series, rejected: list[str] | pl.Series, *, workers: int = -1
) -> NDArray[np.float64]:
    """Return the similarity in [0, 1] of each chosen/rejected pair (``fuzz.ratio`` / 100).

    One vectorised :func:`rapidfuzz.process.cpdist` call over all pairs, on all cores.

    >>> pair_similarity(["abcd"], ["abce"]).round(2).tolist()
    [0.75]
    """
    a = chosen.to_list() if isinstance(chosen, pl.Series) else list(chosen)
    b = rejected.to_list() if isinstance(rejected, pl.Series) else list(rejected)
    if len(a) != len(b):
        raise UsageError(f"chosen has {len(a)} texts but rejected has {len(b)}")
    if not a:
        return np.zeros(0)
    scores = process.cpdist(a, b, scorer=fuzz.ratio, workers=workers, dtype=np.float32)
    return np.asarray(scores, dtype=np.float64) / 100.0


SIMILARITY_BLOCK = 1 << 16
"""Pairs compared at a time: bounds the memory of the transcripts built for the comparison."""


def _block_similarities(
    df: pl.DataFrame, include_prompt: bool, block: int = SIMILARITY_BLOCK
) -> NDArray[np.float64]:
    """Return :func:`pair_similarity` of every row, ``block`` rows at a time.

    Each distinct (chosen, rejected) text pair of a block is compared once (a file with
    repeated pairs pays once per distinct pair); the values are those of comparing every row.
    """
    parts = [np.zeros(0)]
    for lo in range(0, df.height, block):
        part = df.slice(lo, block)
        a, b = part["chosen"], part["rejected"]
        if include_prompt:
            p = prompt_text(part)
            a, b = p + "\n" + a, p + "\n" + b
        groups = (
            pl.DataFrame({"a": a, "b": b}).with_row_index("i")
            .group_by("a", "b", maintain_order=True).agg(pl.col("i"))
        )
        values = pair_similarity(groups["a"], groups["b"])
        sim = np.empty(part.height)
        sim[groups["i"].explode().to_numpy()] = np.repeat(values, groups["i"].list.len().to_numpy())
        parts.append(sim)
    return np.concatenate(parts)


def near_duplicate_pairs(
    pairs: pa.Table | pl.DataFrame,
    *,
    threshold: float = 0.9,
    include_prompt: bool = False,
    bins: int = 20,
    examples: int = 20,
) -> dict[str, Any]:
    """Return chosen-vs-rejected similarity figures: mean, share above ``threshold``, examples.

    Args:
        pairs: table with ``chosen`` and ``rejected`` (and ``prompt`` if ``include_prompt``).
        threshold: similarity above which a pair is a near-duplicate (0.9 as in the
            reference notebook, shared/reference/003).
        include_prompt: compare whole transcripts (prompt + response), as the reference
            notebook does on HH-RLHF's full-conversation fields.
        bins: histogram bins over [0, 1].
        examples: how many example row indices to keep (most similar first).
    """
    df = _frame(pairs)
    for col in ("chosen", "rejected"):
        if col not in df.columns:
            raise InputError(f"the table has no column {col!r}", field=col)
    sim = _block_similarities(df, include_prompt)
    hist, edges = np.histogram(sim, bins=bins, range=(0.0, 1.0))
    high = np.flatnonzero(sim > threshold)
    order = high[np.argsort(-sim[high], kind="stable")]
    n = len(sim)
    return {
        "pairs": n,
        "text": "transcript" if include_prompt else "response",
        "threshold": threshold,
        "mean": float(sim.mean()) if n else None,
        "high": len(high),
        "share_high": float(len(high) / n) if n else None,
        "medium": int(((sim > 0.7) & (sim <= threshold)).sum()),
        "low": int((sim <= 0.7).sum()),
        "histogram": {"counts": hist.tolist(), "edges": edges.tolist()},
        "examples": [{"row": int(i), "similarity": float(sim[i])} for i in order[:examples]],
        "values": sim,
    }


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """Return (bands, rows) minimising false positives + false negatives around ``threshold``.

    The criterion of datasketch's ``MinHashLSH`` (equal weights): integrate the probability
    of becoming a candidate ``1 − (1 − s^r)^b`` below the threshold (false positives) and
    its complement above it (false negatives).
    """
    if not 0.0 < threshold < 1.0:
        raise UsageError(f"threshold must be within (0, 1), got {threshold}")
    s_lo = np.linspace(0.0, threshold, 200)
    s_hi = np.linspace(threshold, 1.0, 200)
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(1.0 - (1.0 - s_lo**r) ** b, s_lo)
            fn = np.trapezoid((1.0 - s_hi**r) ** b, s_hi)
            if float(fp + fn) < best_err:
                best, best_err = (b, r), float(fp + fn)
    return best


def _components(n: int, src: NDArray[np.int64], dst: NDArray[np.int64]) -> NDArray[np.int64]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n))
    labels: NDArray[np.int64] = connected_components(graph, directed=False)[1]
    return labels


def near_duplicate_texts(
    texts: list[str] | pl.Series,
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    ngram: int = 5,
    seed: int = 1,
    chunk: int = 20_000,
) -> dict[str, Any]:
    """Return clusters of exact and near-duplicate texts (MinHash LSH on word n-grams).

    Exact duplicates (same text up to case and outer whitespace) are grouped first and MinHash runs on
    one representative each. Candidates from LSH bands are kept when their estimated
    Jaccard similarity (share of equal MinHash values) reaches ``threshold``.

    Texts are shingled and hashed ``chunk`` at a time, which bounds memory.

    Returns:
        ``exact_groups`` / ``exact_duplicates`` (texts beyond the first of each group),
        ``near_clusters`` (lists of row indices, largest first), ``near_duplicates`` (rows in
        a cluster beyond its first), ``bands``/``rows``.
    """
    series = texts if isinstance(texts, pl.Series) else pl.Series("t", list(texts), dtype=pl.String)
    n = len(series)
    key = series.fill_null("").str.to_lowercase().str.strip_chars()
    keyed = pl.DataFrame({"k": key}).with_row_index("row")
    groups = keyed.group_by("k", maintain_order=True).agg(pl.col("row"))
    reps = groups["row"].list.first().cast(pl.Int64).to_numpy()
    exact = [g for g in groups["row"].to_list() if len(g) > 1]
    keys = groups["k"]
    sig = np.empty((len(keys), num_perm), dtype=np.uint32)
    has = np.empty(len(keys), dtype=bool)
    for lo in range(0, len(keys), chunk):  # bounded memory: shingles of one chunk at a time
        part = shingle_texts(keys.slice(lo, chunk), n=ngram)
        sig[lo : lo + chunk], has[lo : lo + chunk] = minhash_signatures(part, num_perm=num_perm, seed=seed)
    b, r = lsh_params(threshold, num_perm)
    m = len(reps)
    srcs, dsts = [], []
    live = np.flatnonzero(has)
    for band in range(b):
        cols = sig[live, band * r : (band + 1) * r].astype(np.uint64)
        keyv = np.zeros(len(live), np.uint64)
        for c in range(cols.shape[1]):
            keyv = keyv * np.uint64(0x100000001B3) + cols[:, c]
        order = np.argsort(keyv, kind="stable")
        sk = keyv[order]
        same = np.flatnonzero(sk[1:] == sk[:-1])
        if len(same):
            srcs.append(live[order[same]])
            dsts.append(live[order[same + 1]])
    near: list[list[int]] = []
    if srcs:
        src = np.concatenate(srcs)
        dst = np.concatenate(dsts)
        pair_keys = unique_sorted(src * m + dst)
        src, dst = pair_keys // m, pair_keys % m
        need = int(np.ceil(threshold * num_perm))  # equal MinHash values for est. Jaccard ≥ threshold
        ok = np.empty(len(src), dtype=bool)
        for lo in range(0, len(src), 1 << 15):  # blocks that stay in cache
            a_, b_ = sig[src[lo : lo + (1 << 15)]], sig[dst[lo : lo + (1 << 15)]]
            ok[lo : lo + (1 << 15)] = np.count_nonzero(a_ == b_, axis=1) >= need
        labels = _components(m, src[ok], dst[ok])
        sizes = np.bincount(labels)
        # every row inherits the cluster label of its exact-duplicate group
        flat = groups.select(pl.col("row").list.len().alias("n"), pl.col("row"))
        row_ids = flat["row"].explode().cast(pl.Int64).to_numpy()
        row_labels = np.repeat(labels, flat["n"].to_numpy())
        in_cluster = sizes[row_labels] > 1
        row_ids, row_labels = row_ids[in_cluster], row_labels[in_cluster]
        order = np.lexsort((row_ids, row_labels))
        row_ids, row_labels = row_ids[order], row_labels[order]
        cuts = np.flatnonzero(np.diff(row_labels)) + 1
        near = [c.tolist() for c in np.split(row_ids, cuts)] if len(row_ids) else []
        near.sort(key=lambda c: (-len(c), c[0]))
    return near_duplicate_report(n, m, exact, near, threshold=threshold, num_perm=num_perm,
                                 bands=b, rows=r)


def near_duplicate_report(
    n: int, m: int, exact: Sequence[Sequence[int]], near: list[list[int]], *,
    threshold: float, num_perm: int, bands: int, rows: int,
) -> dict[str, Any]:
    """Return the figures of :func:`near_duplicate_texts` from its groups (one shape for every engine).

    Args:
        n: texts checked; m: distinct texts among them.
        exact: groups of text indices with equal texts; near: clusters of near-duplicate indices.
        threshold, num_perm, bands, rows: the MinHash/LSH parameters used.
    """
    return {
        "texts": n,
        "unique_texts": m,
        "exact_groups": len(exact),
        "exact_duplicates": int(sum(len(g) - 1 for g in exact)),
        "exact_examples": [sorted(int(x) for x in g) for g in sorted(exact, key=len, reverse=True)[:20]],
        "threshold": threshold,
        "num_perm": num_perm,
        "bands": bands,
        "rows": rows,
        "near_clusters": len(near),
        "near_duplicates": int(sum(len(c) - 1 for c in near)),
        "near_examples": near[:20],
        "clusters": near,
    }


def split_leaks(
    pairs: pa.Table | pl.DataFrame, *, key: str = "prompt_id", split: str = "split"
) -> dict[str, Any]:
    """Return prompts that appear in more than one split (a train/test leak).

    Compares by ``prompt_id`` (a hash of the normalized messages) when present, otherwise
    by the prompt text.
    """
    df = _frame(pairs)
    if split not in df.columns:
        return {"checked": False, "reason": f"no {split!r} column"}
    if key not in df.columns:
        df = df.with_columns(prompt_text(df).alias("_key"))
        key = "_key"
    per = (
        df.with_row_index("_row")
        .group_by(key)
        .agg(
            pl.col(split).drop_nulls().unique().sort().alias("splits"),
            pl.len().alias("rows"),
            pl.col("_row").first().alias("first_row"),
        )
        .filter(pl.col("splits").list.len() > 1)
        .sort("rows", descending=True)
    )
    counts = df.group_by(split).agg(pl.col(key).n_unique().alias("prompts")).sort(split)
    return {
        "checked": True,
        "splits": {str(r[split]): int(r["prompts"]) for r in counts.iter_rows(named=True)},
        "leaked_prompts": per.height,
        "examples": [
            {"prompt": str(r[key])[:200], "splits": r["splits"], "rows": int(r["rows"]),
             "row": int(r["first_row"])}
            for r in per.head(20).iter_rows(named=True)
        ],
    }
