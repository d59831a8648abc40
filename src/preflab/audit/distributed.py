"""The duplicate and contamination steps on Ray Data, over Parquet shards (extra ``ray``).

Where a dataset outgrows one machine, the two steps whose cost grows fastest run on an
existing engine (DESIGN.md, "Storage and scale": Ray Data, never a home-made one), with the
same results as the single-machine functions on the same input:

- :func:`near_duplicate_texts_ray` = :func:`preflab.audit.duplicates.near_duplicate_texts`.
  Shard-local ``map_batches`` computes the exact-duplicate key of each text; a global
  ``groupby`` on that key makes the exact groups (one representative each, its first row);
  ``map_batches`` computes the representatives' MinHash signatures and LSH band keys
  (:mod:`preflab.audit.shingles`, the same hashes as on one machine); a second ``groupby``
  on ``(band, band key)`` finds the candidates, verified in the group on the signatures
  (estimated Jaccard ≥ threshold) exactly as the single-machine pass does (neighbours in
  representative order); the driver joins the verified edges (small) into clusters.
- :func:`contamination_ray` = :func:`preflab.audit.contamination.contamination`. A row's
  result depends only on that row and the (small) eval set, which goes to every task: each
  batch runs the single-machine check on its rows (``map_batches``, every hit kept) and the
  driver joins the shard reports (counts of disjoint rows add up, eval items are a union).

Shards are Parquet files with a global ``row`` column (int64, the row's index in the whole
dataset: the results name rows by it) and the text columns; :func:`write_shards` writes them
from a table. Ray itself is set up by the caller (``ray.init(address=…)``) or by
:func:`ray_session` (a local instance, or an existing cluster by address).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from preflab.audit.contamination import TESTS, contamination
from preflab.audit.duplicates import lsh_params, near_duplicate_report
from preflab.audit.shingles import minhash_signatures, shingle_texts, unique_sorted
from preflab.errors import UsageError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "contamination_ray",
    "near_duplicate_texts_ray",
    "ray_session",
    "write_shards",
]

#: What the Ray steps read: Parquet shard paths, or an in-memory table or texts.
Source: TypeAlias = Sequence[str] | pa.Table | pl.DataFrame | pl.Series

#: Shards written from an in-memory source (a few per worker of a small cluster).
DEFAULT_SHARDS = 4

#: Partitions of each global grouping: enough for a few workers, few enough that a small
#: cluster does not spend its time on empty shuffle tasks (Ray's default is 200).
DEFAULT_PARTITIONS = 4


def _require_ray() -> Any:
    if importlib.util.find_spec("ray") is None:
        raise UsageError(
            "the Ray engine needs Ray Data, which is not installed; install the extra with "
            "`pip install 'preflab[ray]'` or run without --engine ray",
            field="engine", value="ray",
        )
    import ray
    import ray.data

    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Yield the ``ray`` module with a connection: to ``address``, or to a local instance.

    Reuses a connection the caller already made (and leaves it open); otherwise connects
    and shuts the connection down on exit. Progress bars are turned off (the CLI shows its own).

    Raises:
        UsageError: Ray is not installed.
    """
    ray = _require_ray()
    started = not ray.is_initialized()
    if started:
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None and num_cpus is not None:
            kw["num_cpus"] = num_cpus
        ray.init(address=address, **kw)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def write_shards(
    table: pa.Table | pl.DataFrame, folder: str | Path, *, shards: int = 4, columns: Sequence[str] = ()
) -> list[str]:
    """Write ``table`` as ``shards`` Parquet files with a global ``row`` column; return the paths.

    Args:
        table: the rows (a ``prompt`` column of messages stays messages: the contamination
            check reads each user turn too).
        folder: where the files go (created if missing).
        shards: how many files (at most one per row).
        columns: which columns to keep (default: all).
    """
    df = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    if columns:
        df = df.select([c for c in columns if c in df.columns])
    df = df.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    n = max(1, min(shards, df.height))
    step = -(-df.height // n) if df.height else 1
    paths = []
    for k in range(n):
        path = out / f"part-{k:05d}.parquet"
        df.slice(k * step, step).write_parquet(path)
        paths.append(str(path))
    return paths


@contextlib.contextmanager
def _shards(
    source: Source, column: str | None, shards: int, columns: Sequence[str] = ()
) -> Iterator[list[str]]:
    """Yield shard paths: ``source`` itself, or temporary shards written from it."""
    if isinstance(source, (list, tuple)) and source and all(
        isinstance(x, (str, Path)) and str(x).endswith(".parquet") for x in source
    ):  # paths of Parquet shards (texts are a Series, or a list of other strings)
        yield [str(x) for x in source]
        return
    if isinstance(source, (pa.Table, pl.DataFrame)):
        table: pa.Table | pl.DataFrame = source
    else:
        table = pl.DataFrame({column or "text": pl.Series(list(source), dtype=pl.String)})
    with tempfile.TemporaryDirectory(prefix="preflab-ray-") as folder:
        yield write_shards(table, folder, shards=shards, columns=columns)


# -- near-duplicate texts -------------------------------------------------------------------


def _exact_keys(batch: pa.Table, column: str) -> pa.Table:
    """Shard-local: the exact-duplicate key (lower-cased, outer whitespace stripped) per row."""
    df = pl.from_arrow(batch)
    assert isinstance(df, pl.DataFrame)
    key = df[column].cast(pl.String).fill_null("").str.to_lowercase().str.strip_chars()
    return pa.table({"k": key.to_arrow().cast(pa.large_string()), "row": df["row"].cast(pl.Int64).to_arrow()})


def _exact_groups(batch: pa.Table) -> pa.Table:
    """One exact group: its representative (first row), its rows (sorted) and its key."""
    rows = np.sort(np.asarray(batch.column("row").to_numpy(), dtype=np.int64))
    return pa.table({
        "rep": pa.array([int(rows[0])], pa.int64()),
        "rows": pa.array([rows.tolist()], pa.list_(pa.int64())),
        "k": batch.column("k").slice(0, 1),
    })


def _band_rows(batch: pa.Table, *, num_perm: int, ngram: int, seed: int, bands: int, rows: int) -> pa.Table:
    """Shard-local: each representative's MinHash signature and its ``bands`` band keys."""
    keys = pl.from_arrow(batch.column("k")).cast(pl.String)
    assert isinstance(keys, pl.Series)
    sig, has = minhash_signatures(shingle_texts(keys, n=ngram), num_perm=num_perm, seed=seed)
    rep = np.asarray(batch.column("rep").to_numpy(), dtype=np.int64)
    live = np.flatnonzero(has)
    out_band, out_key, out_rep, out_sig = [], [], [], []
    for band in range(bands):
        cols = sig[live, band * rows : (band + 1) * rows].astype(np.uint64)
        keyv = np.zeros(len(live), np.uint64)
        for c in range(cols.shape[1]):  # the same fold as near_duplicate_texts
            keyv = keyv * np.uint64(0x100000001B3) + cols[:, c]
        out_band.append(np.full(len(live), band, np.int32))
        out_key.append(keyv)
        out_rep.append(rep[live])
        out_sig.append(sig[live])
    flat_sig = np.concatenate(out_sig) if out_sig else np.zeros((0, num_perm), np.uint32)
    return pa.table({
        "band": np.concatenate(out_band) if out_band else np.zeros(0, np.int32),
        "key": np.concatenate(out_key) if out_key else np.zeros(0, np.uint64),
        "rep": np.concatenate(out_rep) if out_rep else np.zeros(0, np.int64),
        "sig": pa.FixedSizeListArray.from_arrays(pa.array(flat_sig.reshape(-1), pa.uint32()), num_perm),
    })


def _verified_edges(batch: pa.Table, *, need: int) -> pa.Table:
    """One LSH bucket: neighbours in representative order whose signatures agree enough."""
    rep = np.asarray(batch.column("rep").to_numpy(), dtype=np.int64)
    sig_col = batch.column("sig").combine_chunks()
    width = sig_col.type.list_size
    sig = np.asarray(sig_col.flatten().to_numpy(), dtype=np.uint32).reshape(-1, width)
    order = np.argsort(rep, kind="stable")
    rep, sig = rep[order], sig[order]
    ok = np.count_nonzero(sig[1:] == sig[:-1], axis=1) >= need if len(rep) > 1 else np.zeros(0, bool)
    return pa.table({"src": rep[:-1][ok] if len(rep) else rep, "dst": rep[1:][ok]})


def near_duplicate_texts_ray(
    source: Source,
    column: str = "text",
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    ngram: int = 5,
    seed: int = 1,
    partitions: int = DEFAULT_PARTITIONS,
    address: str | None = None,
    shards: int = DEFAULT_SHARDS,
) -> dict[str, Any]:
    """Return what :func:`~preflab.audit.duplicates.near_duplicate_texts` returns, on Ray Data.

    Args:
        source: Parquet shards with a global ``row`` column and the text ``column``
            (:func:`write_shards`; row numbers in the result are those of ``row``), or the
            texts themselves (a list or Series: written to ``shards`` temporary shards).
        column: the text column.
        threshold, num_perm, ngram, seed: as in the single-machine function.
        partitions: partitions of each global grouping.
        address: Ray cluster to connect to when not connected yet (default: a local one).
        shards: shards to write when ``source`` is in memory.
    """
    with _shards(source, column, shards) as paths, ray_session(address) as ray:
        return _near_duplicate_texts(ray, paths, column, threshold=threshold, num_perm=num_perm,
                                     ngram=ngram, seed=seed, partitions=partitions)


def _near_duplicate_texts(
    ray: Any, paths: list[str], column: str, *, threshold: float, num_perm: int, ngram: int,
    seed: int, partitions: int,
) -> dict[str, Any]:
    ds = ray.data.read_parquet(paths, columns=["row", column])
    n = ds.count()
    keyed = ds.map_batches(_exact_keys, batch_format="pyarrow", fn_kwargs={"column": column})
    groups = keyed.groupby("k", num_partitions=partitions).map_groups(_exact_groups, batch_format="pyarrow")
    groups = groups.materialize()
    b, r = lsh_params(threshold, num_perm)
    buckets = groups.select_columns(["rep", "k"]).map_batches(
        _band_rows, batch_format="pyarrow",
        fn_kwargs={"num_perm": num_perm, "ngram": ngram, "seed": seed, "bands": b, "rows": r},
    )
    need = int(np.ceil(threshold * num_perm))
    edges = buckets.groupby(["band", "key"], num_partitions=partitions).map_groups(
        _verified_edges, batch_format="pyarrow", fn_kwargs={"need": need}
    )
    edge_table = _collect(edges, {"src": pa.int64(), "dst": pa.int64()})
    group_table = _collect(groups.select_columns(["rep", "rows"]),
                           {"rep": pa.int64(), "rows": pa.list_(pa.int64())})
    return _assemble_near(n, group_table, edge_table, threshold=threshold, num_perm=num_perm, bands=b, rows=r)


def _collect(ds: Any, schema: dict[str, pa.DataType]) -> pa.Table:
    tables = [pa.Table.from_batches([rb]) if isinstance(rb, pa.RecordBatch) else rb
              for rb in ds.iter_batches(batch_format="pyarrow", batch_size=None)]
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return pa.table({k: pa.array([], t) for k, t in schema.items()})
    return pa.concat_tables(tables).select(list(schema))


def _assemble_near(
    n: int, groups: pa.Table, edges: pa.Table, *, threshold: float, num_perm: int, bands: int, rows: int
) -> dict[str, Any]:
    """Join verified edges into clusters on the driver, shaped as near_duplicate_texts does."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    order = np.argsort(np.asarray(groups.column("rep").to_numpy(), dtype=np.int64), kind="stable")
    groups = groups.take(pa.array(order))
    reps = np.asarray(groups.column("rep").to_numpy(), dtype=np.int64)
    members: list[list[int]] = groups.column("rows").to_pylist()
    m = len(reps)
    exact = [g for g in members if len(g) > 1]  # first-appearance order, as on one machine
    near: list[list[int]] = []
    if edges.num_rows:
        pos = {int(v): i for i, v in enumerate(reps)}
        src = np.asarray(edges.column("src").to_numpy(), dtype=np.int64)
        dst = np.asarray(edges.column("dst").to_numpy(), dtype=np.int64)
        src_i = np.fromiter((pos[int(x)] for x in src), np.int64, len(src))
        dst_i = np.fromiter((pos[int(x)] for x in dst), np.int64, len(dst))
        keys = unique_sorted(src_i * m + dst_i)
        graph = coo_matrix((np.ones(len(keys), np.int8), (keys // m, keys % m)), shape=(m, m))
        labels: NDArray[np.int64] = connected_components(graph, directed=False)[1]
        sizes = np.bincount(labels)
        clusters: dict[int, list[int]] = {}
        for i in np.flatnonzero(sizes[labels] > 1).tolist():
            clusters.setdefault(int(labels[i]), []).extend(members[i])
        near = [sorted(c) for c in clusters.values()]
        near.sort(key=lambda c: (-len(c), c[0]))
    return near_duplicate_report(n, m, exact, near, threshold=threshold, num_perm=num_perm,
                                 bands=bands, rows=rows)


# -- contamination --------------------------------------------------------------------------


def _shard_contamination(batch: pa.Table, *, eval_texts: list[str], kw: dict[str, Any]) -> pa.Table:
    """Shard-local: the single-machine check on these rows, every hit kept, rows made global."""
    df = pl.from_arrow(batch)
    assert isinstance(df, pl.DataFrame)
    rows = df["row"].cast(pl.Int64).to_list()
    # every (row, eval item) hit as an example: at most rows × items of them
    d = contamination(df.drop("row"), eval_texts, examples=df.height * max(len(eval_texts), 1) + 1, **kw)
    for e in d["examples"]:
        e["row"] = rows[e["row"]]
    return pa.table({"report": [json.dumps(d)]})


def _merge_contamination(parts: list[dict[str, Any]], examples: int) -> dict[str, Any]:
    """Join the shard reports: counts of disjoint rows add up, eval items are a union."""
    rank = {t: i for i, t in enumerate(TESTS)}
    hits = sorted((e for p in parts for e in p["examples"]),
                  key=lambda e: (rank[e["test"]], e["row"], e["eval_item"]))
    out = dict(parts[0])
    rows = sum(p["rows"] for p in parts)
    contaminated = sum(p["contaminated_rows"] for p in parts)
    out.update({
        "rows": rows,
        "contaminated_rows": contaminated,
        "share": float(contaminated / rows) if rows else None,
        "by_column": {c: sum(p["by_column"].get(c, 0) for p in parts) for c in parts[0]["by_column"]},
        "eval_items_hit": len({e["eval_item"] for e in hits}),
        "by_test": {t: {"rows": sum(p["by_test"][t]["rows"] for p in parts),
                        "eval_items_hit": len({e["eval_item"] for e in hits if t in e["tests"]})}
                    for t in parts[0]["by_test"]},
        "hits": sum(p["hits"] for p in parts),
        "examples": hits[:examples],
    })
    return out


def contamination_ray(
    source: Source,
    eval_texts: list[str] | pl.Series,
    *,
    columns: tuple[str, ...] = ("prompt", "chosen", "rejected"),
    examples: int = 20,
    address: str | None = None,
    shards: int = DEFAULT_SHARDS,
    **kw: Any,
) -> dict[str, Any]:
    """Return what :func:`~preflab.audit.contamination.contamination` returns, on Ray Data.

    Each row's result depends only on that row and the eval set (the check's docstring), so
    every batch runs the single-machine check on its rows, with all hits kept, and the driver
    joins the small shard reports.

    Args:
        source: Parquet shards with a global ``row`` column and the pair columns (``prompt``
            as messages or text, as :func:`write_shards` writes it), or the pairs table
            (written to ``shards`` temporary shards).
        eval_texts: the eval set.
        columns, examples: as in the single-machine function.
        address: Ray cluster to connect to when not connected yet (default: a local one).
        shards: shards to write when ``source`` is in memory.
        **kw: the single-machine function's other options (``n``, ``similarity_threshold``…).
    """
    texts = eval_texts.cast(pl.String).to_list() if isinstance(eval_texts, pl.Series) else list(eval_texts)
    with _shards(source, None, shards, columns) as paths, ray_session(address) as ray:
        present = [c for c in columns if c in set(pq.read_schema(paths[0]).names)]
        ds = ray.data.read_parquet(paths, columns=["row", *present])
        reports = ds.map_batches(
            _shard_contamination, batch_format="pyarrow",
            fn_kwargs={"eval_texts": texts, "kw": {**kw, "columns": columns}},
        )
        parts = [json.loads(s) for s in _collect(reports, {"report": pa.string()}).column("report").to_pylist()]
    return _merge_contamination(parts, examples)
