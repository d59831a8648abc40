"""Contamination: the dataset's texts against a user-given eval set, by three tests.

An eval item is looked for in each pair's prompt (the whole prompt, and each user turn of a
multi-turn prompt, message contents only: no ``user:`` role prefix), chosen and rejected text.
Each hit says which test found it:

- ``exact``: the normalized eval item equals a normalized text (see
  :data:`~preflab.audit.shingles.NORMALIZE_RULE`: lower case, punctuation removed, whitespace
  collapsed). Finds every verbatim item, however short.
- ``ngram``: the 13-gram rule of GPT-3 (Brown et al. 2020, "Language Models are Few-Shot
  Learners", appendix C): the text shares any 13-word sequence with the eval item (lower-cased
  ``\\w+`` words). Eval items shorter than ``n`` words count as one n-gram of all their words.
  Finds long items copied into longer texts.
- ``similar``: the Jaccard similarity of the sets of character 5-grams of the normalized
  eval item and a normalized user turn of the prompt (the prompt, when it is text) is at least
  :data:`SIMILARITY_THRESHOLD`, their normalized Indel similarity (RapidFuzz ``fuzz.ratio``)
  at least :data:`SIMILARITY_RATIO`, and at most a few words differ
  (:data:`SIMILARITY_WORD_EDITS`). Finds light paraphrases (a word changed, punctuation dropped)
  that the other two miss. Computed exactly (no sketch) with prefix filtering (Chaudhuri,
  Ganti & Kaushik 2006, "A primitive operator for similarity joins in data cleaning";
  Bayardo, Ma & Srikant 2007, "Scaling up all pairs similarity search"): every text indexes
  only its rarest ``|A| − ⌈t·|A|⌉ + 1`` n-grams, which two sets with Jaccard ≥ t must share;
  the positional filter of PPJoin (Xiao, Wang, Lin & Yu 2008, "Efficient similarity joins for
  near duplicate detection") drops candidates that cannot reach the overlap, and the rest are
  verified by counting their common n-grams. docs/audit.md gives the
  recall on paraphrased HH-RLHF prompts and the false-alarm rate on unrelated eval text.

Each row's result depends only on that row and the eval set, so shards of a dataset can be
checked apart and their hits concatenated (row indices offset by the shard's start).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from numpy.typing import NDArray

from preflab.audit.duplicates import pair_similarity, prompt_text
from preflab.audit.shingles import (
    NORMALIZE_RULE,
    Shingles,
    char_shingles,
    normalize_texts,
    shingle_texts,
)
from preflab.errors import InputError, UsageError

__all__ = [
    "SIMILARITY_NGRAM",
    "SIMILARITY_RATIO",
    "SIMILARITY_THRESHOLD",
    "SIMILARITY_WORD_EDITS",
    "contamination",
    "read_eval_texts",
    "similar_texts",
    "word_edits",
]

SIMILARITY_NGRAM = 5
"""Character n-gram length of the similarity test (the n of the issue's char 5-gram rule)."""

SIMILARITY_THRESHOLD = 0.35
"""Jaccard of character 5-gram sets at or above which an eval item and a prompt text are close.

With :data:`SIMILARITY_RATIO`, chosen on the HH-RLHF sample (docs/audit.md, "Contamination"):
with one word changed and the punctuation dropped, 48 of 50 short (3–8 words) and 50 of 50
longer first turns of HH prompts are found; 0 of 1,000 unrelated eval texts (lm-eval's few-shot
examples) match, and 1 of 1,000 HH helpful-online questions does."""

SIMILARITY_RATIO = 0.8
"""Normalized Indel similarity (RapidFuzz ``fuzz.ratio`` / 100, as the pair-similarity check)
that a close pair must also reach: short questions on one template ("What is the best way to
clean a carpet" / "… to trip someone") share many 5-grams but differ in many characters."""

SIMILARITY_WORD_EDITS = (2, 0.1)
"""At most ``max(2, ⌊0.1 · words⌋)`` words inserted, deleted or replaced (word-level
Levenshtein distance, ``words`` of the longer text): a long template shared by different
questions ("Question 1: … what the capital of Peru is …" / "… the boiling point of ethanol
…") is similar in characters but not a light paraphrase."""

TESTS = ("exact", "ngram", "similar")


def similar_texts(
    queries: Shingles, targets: Shingles, *, threshold: float = SIMILARITY_THRESHOLD, block: int = 256
) -> pl.DataFrame:
    """Return every (query, target) pair of texts whose shingle sets have Jaccard ≥ ``threshold``.

    Exact set-similarity join by prefix filtering (module docstring): shingles are ordered by
    how many texts hold them (rarest first, ties by value, one order for both sides); each text
    keeps its first ``|A| − ⌈t·|A|⌉ + 1``; pairs sharing a kept shingle whose sizes allow
    Jaccard ≥ t (``t·|A| ≤ |B| ≤ |A|/t``) are verified by counting common shingles.

    Args:
        queries: shingles of the first side (e.g. eval items), one set per text.
        targets: shingles of the second side (e.g. prompts).
        threshold: the Jaccard needed, in (0, 1].
        block: queries joined at a time (bounds the memory of the candidate pairs).

    Returns:
        Columns ``query``, ``target`` (text indices), ``common``, ``jaccard``; sorted.

    >>> from preflab.audit.shingles import char_shingles
    >>> q, t = char_shingles(["the cat sat"], n=3), char_shingles(["the cat sat!", "dog"], n=3)
    >>> similar_texts(q, t, threshold=0.8)["target"].to_list()
    [0]
    """
    if not 0.0 < threshold <= 1.0:
        raise UsageError(f"threshold must be within (0, 1], got {threshold}", field="threshold")
    empty = pl.DataFrame(schema={"query": pl.Int64, "target": pl.Int64, "common": pl.UInt32, "jaccard": pl.Float64})
    if not len(queries.hashes) or not len(targets.hashes):
        return empty
    q_all = pl.DataFrame({"d": queries.docs, "h": queries.hashes})
    t_all = pl.DataFrame({"d": targets.docs, "h": targets.hashes})
    # only n-grams on both sides can be shared; the others come first in the global order (any
    # one order keeps prefix filtering exact), so no text indexes them and they are dropped here
    q = q_all.join(t_all.select("h").unique(), on="h", how="semi")
    t = t_all.join(q.select("h").unique(), on="h", how="semi")
    rank = (
        pl.concat([q["h"], t["h"]]).value_counts(name="n")
        .sort(["n", "h"]).with_row_index("rank").select("h", "rank")
    )

    def prefix(side: pl.DataFrame, full: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        sizes = full.group_by("d").agg(pl.len().alias("size"))
        both = side.group_by("d").agg(pl.len().alias("both"))
        ranked = (side.join(rank, on="h").join(sizes, on="d").join(both, on="d").sort(["d", "rank"])
                  .with_columns((pl.col("size") - pl.col("both") + pl.int_range(pl.len()).over("d")).alias("pos")))
        keep = pl.col("size") - (pl.col("size").cast(pl.Float64) * threshold - 1e-9).ceil().cast(pl.Int64) + 1
        return ranked.filter(pl.col("pos") < keep).select("d", "h", "size", "pos"), sizes

    qp, q_sizes = prefix(q, q_all)
    tp, t_sizes = prefix(t, t_all)
    # overlap needed for Jaccard ≥ t: |A∩B| ≥ t/(1+t)·(|A|+|B|)
    need = (threshold / (1 + threshold) * (pl.col("size") + pl.col("size_t")) - 1e-9).ceil()
    # positional filter (Xiao et al. 2008, PPJoin): common n-grams ranked after the last shared
    # prefix one lie after its positions on both sides
    bound = pl.col("shared") + pl.min_horizontal(pl.col("size") - 1 - pl.col("pos"),
                                                 pl.col("size_t") - 1 - pl.col("pos_t"))
    out = [empty]
    ids = qp["d"].unique().sort().to_numpy()  # queries that can match at all
    for lo in range(0, len(ids), block):  # bounded memory: the candidates of one block at a time
        part = qp.filter(pl.col("d").is_between(int(ids[lo]), int(ids[min(lo + block, len(ids)) - 1])))
        cand = (
            part.join(tp, on="h", suffix="_t")
            .filter((pl.col("size_t") >= threshold * pl.col("size") - 1e-9)
                    & (pl.col("size") >= threshold * pl.col("size_t") - 1e-9))
            .group_by(["d", "d_t"])
            .agg(pl.len().alias("shared"), pl.col("pos").max(), pl.col("pos_t").max(),
                 pl.col("size").first(), pl.col("size_t").first())
            .filter(bound >= need)
            .select(pl.col("d").alias("query"), pl.col("d_t").alias("target"))
        )
        if cand.height == 0:
            continue
        common = (
            cand.join(q.rename({"d": "query"}), on="query")
            .join(t.rename({"d": "target"}), on=["target", "h"], how="semi")
            .group_by(["query", "target"]).agg(pl.len().alias("common"))
        )
        out.append(
            common.join(q_sizes.rename({"d": "query", "size": "qs"}), on="query")
            .join(t_sizes.rename({"d": "target", "size": "ts"}), on="target")
            .with_columns((pl.col("common") / (pl.col("qs") + pl.col("ts") - pl.col("common"))).alias("jaccard"))
            .filter(pl.col("jaccard") >= threshold - 1e-12)
            .select(pl.col("query").cast(pl.Int64), pl.col("target").cast(pl.Int64),
                    pl.col("common").cast(pl.UInt32), "jaccard")
        )
    return pl.concat(out).sort(["query", "target"])


TARGET_BLOCK = 50_000  # texts shingled at a time: memory bounded by the block, not the dataset


def _similar_in_blocks(queries: Shingles, targets: pl.Series, *, n: int, threshold: float,
                       block: int = TARGET_BLOCK) -> pl.DataFrame:
    """Return :func:`similar_texts` of ``queries`` against ``targets``, shingling a block at a time.

    Each (query, target) pair is decided on its own two sets, so the blocks give exactly the
    pairs of one join over all targets; only the character n-grams of one block are held.
    """
    out = []
    for lo in range(0, max(len(targets), 1), block):
        part = similar_texts(queries, char_shingles(targets.slice(lo, block), n=n), threshold=threshold)
        out.append(part.with_columns(pl.col("target") + lo))
    return pl.concat(out).sort(["query", "target"])


def word_edits(a: pl.Series, b: pl.Series) -> NDArray[np.int64]:
    """Return the word-level Levenshtein distance of each ``a[i]``, ``b[i]`` (texts split on spaces).

    One vectorised :func:`rapidfuzz.process.cpdist` call.

    >>> word_edits(pl.Series(["what do you look like"]), pl.Series(["what do they look like now"])).tolist()
    [2]
    """
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    if len(a) == 0:
        return np.zeros(0, np.int64)
    return np.asarray(process.cpdist(a.to_list(), b.to_list(), scorer=Levenshtein.distance,
                                     processor=str.split, workers=-1), dtype=np.int64)


def _units(df: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """Return one row per text to check: ``row``, ``column``, ``part`` (whole / turn), ``text``."""
    parts = []
    base = df.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), *[c for c in columns if c in df.columns])
    for col in columns:
        if col not in df.columns:
            continue
        if col == "prompt":
            parts.append(base.select("row", pl.lit(col).alias("column"), pl.lit("whole").alias("part"),
                                     prompt_text(df, col, roles=False).alias("text")))
            if df[col].dtype != pl.String:  # messages: each user turn on its own too
                turns = (
                    base.select("row", pl.col(col).alias("m")).explode("m")
                    .filter(pl.col("m").struct.field("role") == "user")
                    .select("row", pl.lit(col).alias("column"), pl.lit("turn").alias("part"),
                            pl.col("m").struct.field("content").fill_null("").alias("text"))
                )
                parts.append(turns)
        else:
            parts.append(base.select("row", pl.lit(col).alias("column"), pl.lit("whole").alias("part"),
                                     pl.col(col).cast(pl.String).fill_null("").alias("text")))
    schema = pl.Schema({"row": pl.Int64, "column": pl.String, "part": pl.String, "text": pl.String})
    return pl.concat([p.cast(schema) for p in parts]) if parts else pl.DataFrame(schema=schema)


def _ngram_hits(df: pl.DataFrame, eval_series: pl.Series, n: int, columns: tuple[str, ...]) -> pl.DataFrame:
    """Return (row, column, eval_item) of the word n-gram rule, one per pair and eval item."""
    ev = shingle_texts(eval_series, n=n)
    order = np.argsort(ev.hashes, kind="stable")
    ev_hash, ev_doc = ev.hashes[order], ev.docs[order]
    frames = []
    for col in columns:
        if col not in df.columns or len(ev_hash) == 0:
            continue
        text = prompt_text(df, col, roles=False) if col == "prompt" else df[col].cast(pl.String).fill_null("")
        # each distinct text once (repeated prompts and answers are common), rows mapped back
        groups = (pl.DataFrame({"text": text}).with_row_index("row")
                  .group_by("text", maintain_order=True).agg(pl.col("row")))
        sh = shingle_texts(groups["text"], n=n)
        if len(sh.hashes) == 0:
            continue
        pos = np.minimum(np.searchsorted(ev_hash, sh.hashes), len(ev_hash) - 1)
        match = ev_hash[pos] == sh.hashes
        # every eval item holding the matched n-gram (an n-gram may belong to several items)
        lo = np.searchsorted(ev_hash, sh.hashes[match], side="left")
        hi = np.searchsorted(ev_hash, sh.hashes[match], side="right")
        reps = hi - lo
        docs = np.repeat(sh.docs[match], reps)
        idx = np.repeat(lo - np.r_[0, np.cumsum(reps)[:-1]], reps) + np.arange(int(reps.sum()))
        found = (pl.DataFrame({"doc": pl.Series(docs, dtype=pl.Int64),
                               "eval_item": pl.Series(ev_doc[idx], dtype=pl.Int64)}).unique()
                 .join(groups.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("doc"), "row"), on="doc")
                 .explode("row"))
        frames.append(found.select(pl.col("row").cast(pl.Int64), pl.lit(col).alias("column"), "eval_item"))
    schema = {"row": pl.Int64, "column": pl.String, "eval_item": pl.Int64}
    return pl.concat(frames).unique() if frames else pl.DataFrame(schema=schema)


def contamination(
    pairs: pa.Table | pl.DataFrame,
    eval_texts: list[str] | pl.Series,
    *,
    n: int = 13,
    columns: tuple[str, ...] = ("prompt", "chosen", "rejected"),
    examples: int = 20,
    similarity_threshold: float | None = SIMILARITY_THRESHOLD,
    similarity_ngram: int = SIMILARITY_NGRAM,
    similarity_ratio: float = SIMILARITY_RATIO,
) -> dict[str, Any]:
    """Return the rows of ``pairs`` that hold an item of ``eval_texts``, and which test found it.

    Args:
        pairs: the dataset (``prompt`` may be messages or text; other columns text).
        eval_texts: the eval set (questions, or questions with answers).
        n: word n-gram length of the ``ngram`` test (13 as in GPT-3's contamination study).
        columns: which columns of ``pairs`` to check.
        examples: how many hits to keep as examples (exact first, then n-gram, then similar).
        similarity_threshold: Jaccard of character n-gram sets for the ``similar`` test, run on
            each user turn of the prompt (or the prompt, when it is text); None turns it off.
        similarity_ngram: character n-gram length of the ``similar`` test.
        similarity_ratio: ``fuzz.ratio`` / 100 a close pair must also reach.

    Returns:
        ``contaminated_rows`` and ``share``; ``by_column`` (rows hit per column);
        ``eval_items_hit``; ``by_test`` (rows and eval items per test; a row found by two tests
        counts in both); ``hits`` (how many (row, eval item) hits there are);
        ``examples`` (``row``, ``eval_item``, ``test``, ``tests``, ``column``, ``part``,
        ``similarity``: ``fuzz.ratio`` / 100 for ``similar`` hits, 1 for exact ones);
        ``skipped_eval_items`` (empty after normalization); the rules used (``normalization``,
        ``ngram``, ``similarity``).

    >>> pairs = pl.DataFrame({"prompt": ["How do I bake bread?"], "chosen": ["Knead it."], "rejected": ["No."]})
    >>> contamination(pairs, ["how do i bake bread", "How can I bake bread?"])["by_test"]["exact"]["eval_items_hit"]
    1
    """
    df = pairs if isinstance(pairs, pl.DataFrame) else pl.from_arrow(pairs)
    assert isinstance(df, pl.DataFrame)
    eval_series = (eval_texts if isinstance(eval_texts, pl.Series)
                   else pl.Series("eval", list(eval_texts), dtype=pl.String)).cast(pl.String).fill_null("")
    ev_norm = pl.DataFrame({"eval_item": np.arange(len(eval_series), dtype=np.int64),
                            "norm": normalize_texts(eval_series)})
    skipped = int((ev_norm["norm"] == "").sum())
    ev_norm = ev_norm.filter(pl.col("norm") != "")
    units = _units(df, columns)
    units = units.with_columns(norm=normalize_texts(units["text"])).drop("text").filter(pl.col("norm") != "")
    hit_schema = pl.Schema({"row": pl.Int64, "column": pl.String, "part": pl.String, "eval_item": pl.Int64,
                            "test": pl.String, "similarity": pl.Float64})
    found = [units.join(ev_norm, on="norm").select(
        "row", "column", "part", "eval_item", pl.lit("exact").alias("test"), pl.lit(1.0).alias("similarity"))]
    ng = _ngram_hits(df, eval_series, n, columns)
    found.append(ng.select("row", "column", pl.lit("whole").alias("part"), "eval_item",
                           pl.lit("ngram").alias("test"), pl.lit(None, pl.Float64).alias("similarity")))
    sim_rule = None
    if similarity_threshold is not None:
        # user turns (and text prompts); a whole multi-turn prompt is long and rarely an eval item
        whole_ok = df["prompt"].dtype == pl.String if "prompt" in df.columns else False
        prompt_units = units.filter((pl.col("column") == "prompt") & ((pl.col("part") == "turn") | whole_ok))
        distinct = prompt_units.select("norm").unique(maintain_order=True)
        ev_distinct = ev_norm.select("norm").unique(maintain_order=True)
        matches = _similar_in_blocks(char_shingles(ev_distinct["norm"], n=similarity_ngram),
                                     distinct["norm"], n=similarity_ngram, threshold=similarity_threshold)
        pairs_norm = matches.select(
            pl.Series("ev", ev_distinct["norm"]).gather(matches["query"]).alias("ev_norm"),
            pl.Series("t", distinct["norm"]).gather(matches["target"]).alias("norm"),
            "jaccard",
        ).filter(pl.col("ev_norm") != pl.col("norm"))  # equal texts are the exact test's
        pairs_norm = pairs_norm.with_columns(
            similarity=pl.Series(pair_similarity(pairs_norm["ev_norm"], pairs_norm["norm"])),
            word_edits=pl.Series(word_edits(pairs_norm["ev_norm"], pairs_norm["norm"]), dtype=pl.Int64),
            words=pl.max_horizontal(pl.col("ev_norm").str.count_matches(" ") + 1,
                                    pl.col("norm").str.count_matches(" ") + 1),
        )
        least, share = SIMILARITY_WORD_EDITS
        pairs_norm = pairs_norm.filter(
            (pl.col("similarity") >= similarity_ratio)
            & (pl.col("word_edits") <= pl.max_horizontal(pl.lit(least), (pl.col("words") * share).floor()))
        )
        found.append(
            pairs_norm.join(prompt_units, on="norm")
            .join(ev_norm.rename({"norm": "ev_norm"}), on="ev_norm")
            .select("row", "column", "part", "eval_item", pl.lit("similar").alias("test"), "similarity")
        )
        sim_rule = {"measure": "Jaccard of character n-gram sets of the normalized texts, then "
                               "normalized Indel similarity (fuzz.ratio) and word edits",
                    "max_word_edits": f"max({SIMILARITY_WORD_EDITS[0]}, {SIMILARITY_WORD_EDITS[1]} × words)",
                    "ngram": similarity_ngram, "threshold": similarity_threshold, "ratio": similarity_ratio,
                    "texts": "each user turn of the prompt (the prompt itself when it is text)"}
    hits = pl.concat([f.cast(hit_schema) for f in found])
    rank = pl.col("test").replace_strict({t: i for i, t in enumerate(TESTS)}, return_dtype=pl.Int8)
    per_hit = (
        # column and part last: ties between columns resolve the same way on every run
        hits.sort(["row", "eval_item", rank, pl.col("similarity").fill_null(1.0), "column", "part"],
                  descending=[False, False, False, True, False, False])
        .group_by(["row", "eval_item"], maintain_order=True)
        .agg(pl.col("test").unique(maintain_order=True).alias("tests"), pl.col("test").first(),
             pl.col("column").first(), pl.col("part").first(), pl.col("similarity").first())
    )
    n_rows = df.height
    contaminated = per_hit["row"].n_unique()
    by_test = {}
    for t in TESTS:
        sub = hits.filter(pl.col("test") == t)
        by_test[t] = {"rows": sub["row"].n_unique(), "eval_items_hit": sub["eval_item"].n_unique()}
    ex = per_hit.sort([rank, "row", "eval_item"]).head(examples)
    return {
        "ngram": n,
        "eval_items": len(eval_series),
        "skipped_eval_items": {"empty after normalization": skipped},
        "rows": n_rows,
        "contaminated_rows": contaminated,
        "share": float(contaminated / n_rows) if n_rows else None,
        "by_column": {c: hits.filter(pl.col("column") == c)["row"].n_unique() for c in columns if c in df.columns},
        "eval_items_hit": per_hit["eval_item"].n_unique(),
        "by_test": by_test,
        "normalization": NORMALIZE_RULE,
        "similarity": sim_rule,
        "hits": per_hit.height,
        "examples": [
            {"row": int(r["row"]), "eval_item": int(r["eval_item"]), "test": r["test"], "tests": r["tests"],
             "column": r["column"], "part": r["part"],
             "similarity": None if r["similarity"] is None else round(float(r["similarity"]), 4)}
            for r in ex.iter_rows(named=True)
        ],
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
