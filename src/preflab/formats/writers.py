"""Writing export folders: one folder per split, all-or-nothing, with a dataset card beside.

Layout of an export folder ``OUT``::

    OUT/README.md                    dataset card (counts, rules, sources, how to load)
    OUT/<split>/data.parquet         or data.jsonl; one folder per split
    OUT/<extra>/<split>/data.*       side tables (e.g. ``ties``), when asked for

With ``format="hf"`` the splits are a ``datasets.DatasetDict`` saved with ``save_to_disk``
(``OUT/dataset_dict.json``, ``OUT/<split>/…``), loadable with ``datasets.load_from_disk``.

Everything is first written to a hidden temporary folder beside ``OUT`` and renamed into place
at the end, so a failed or interrupted export never leaves a half-written folder behind.

The card is rendered after the data files are written, from the files (split → relative path)
and a SHA-256 digest of their bytes: the card's ``datasets`` config carries that digest, so two
exports that share a folder name are never confused in the ``datasets`` cache (see
:mod:`preflab.formats.card`).
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from preflab.errors import DependencyError, UsageError

__all__ = [
    "FileFormat",
    "data_digest",
    "split_tables",
    "write_export",
    "write_table_file",
]

FileFormat = Literal["parquet", "jsonl", "hf"]
_SUFFIX = {"parquet": "parquet", "jsonl": "jsonl"}
CardText = Callable[[dict[str, str], str], str]


def data_digest(folder: Path) -> str:
    """Return the SHA-256 of every file under ``folder`` (paths and bytes, in path order).

    ``README.md`` is left out: it is written after, from this digest.
    """
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "README.md"):
        h.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


def split_tables(table: pa.Table, column: str = "split", default: str = "train") -> dict[str, pa.Table]:
    """Return ``table`` cut into one table per value of ``column`` (null → ``default``).

    >>> t = pa.table({"x": [1, 2, 3], "split": ["train", "test", None]})
    >>> {k: v.num_rows for k, v in split_tables(t).items()}
    {'train': 2, 'test': 1}
    """
    if column not in table.column_names:
        return {default: table}
    values = pc.fill_null(table.column(column), default)
    out: dict[str, pa.Table] = {}
    for name in pc.unique(values).to_pylist():
        out[name] = table.filter(pc.equal(values, name))
    return out


def write_table_file(table: pa.Table, path: Path, format: Literal["parquet", "jsonl"]) -> Path:
    """Write one table to ``path`` as Parquet (zstd) or JSON Lines; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "parquet":
        pq.write_table(table, path, compression="zstd")
    elif format == "jsonl":
        import polars as pl

        pl.from_arrow(table).write_ndjson(path)  # type: ignore[union-attr]
    else:
        raise UsageError(f"unknown file format {format!r}; use parquet or jsonl.", value=format)
    return path


def _check_split_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise UsageError(
            f"split name {name!r} cannot be used as a folder name; use letters, digits, - or _.",
            field="split",
            value=name,
        )


def _save_hf(splits: Mapping[str, pa.Table], folder: Path, push_to_hub: str | None) -> None:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise DependencyError(
            "format 'hf' needs the datasets package: `pip install 'preflab[hf]'`."
        ) from exc
    dd = datasets.DatasetDict({name: datasets.Dataset(t) for name, t in splits.items()})
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the CLI shows its own summary
    try:
        dd.save_to_disk(str(folder))
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
    if push_to_hub:
        dd.push_to_hub(push_to_hub)


def write_export(
    splits: Mapping[str, pa.Table],
    out_dir: str | Path,
    *,
    format: FileFormat = "parquet",
    card: CardText | str | None = None,
    extras: Mapping[str, Mapping[str, pa.Table]] | None = None,
    overwrite: bool = False,
    push_to_hub: str | None = None,
) -> dict[str, str]:
    """Write one folder per split under ``out_dir`` atomically; return split → relative file.

    Args:
        splits: the tables to write, by split name.
        out_dir: the export folder; it must not exist unless ``overwrite``.
        format: ``parquet``, ``jsonl`` or ``hf`` (``datasets`` ``save_to_disk``).
        card: the dataset card text, or a function from the written files (split → relative
            path) and their :func:`data_digest` to that text.
        extras: side tables written under ``out_dir/<name>/<split>/`` (e.g. ties).
        overwrite: replace an existing ``out_dir``.
        push_to_hub: with ``format="hf"``, also push the splits to this Hub repository id.

    Raises:
        UsageError: ``out_dir`` exists, a bad split name, or ``push_to_hub`` without ``hf``.
    """
    out = Path(out_dir)
    if format not in ("parquet", "jsonl", "hf"):
        raise UsageError(f"file format must be parquet, jsonl or hf; got {format!r}.",
                         field="format", value=format)
    if out.exists() and not overwrite:
        raise UsageError(
            f"{out} already exists. Choose another folder or pass --overwrite to replace it.",
            path=str(out),
        )
    if push_to_hub and format != "hf":
        raise UsageError("push_to_hub needs format 'hf'.", field="push_to_hub", value=push_to_hub)
    if not splits:
        raise UsageError("nothing to export: no rows in any split.")
    for name in [*splits, *(extras or {})]:
        _check_split_name(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    files: dict[str, str] = {}
    try:
        tmp.mkdir()
        if format == "hf":
            _save_hf(splits, tmp, None)
            files = {name: name for name in splits}
        else:
            for name, table in splits.items():
                rel = f"{name}/data.{_SUFFIX[format]}"
                write_table_file(table, tmp / rel, format)
                files[name] = rel
        for extra, tables in (extras or {}).items():
            for name, table in tables.items():
                _check_split_name(name)
                fmt: Literal["parquet", "jsonl"] = "jsonl" if format == "jsonl" else "parquet"
                write_table_file(table, tmp / extra / name / f"data.{_SUFFIX[fmt]}", fmt)
        if card is not None:
            text = card(files, data_digest(tmp)) if callable(card) else card
            (tmp / "README.md").write_text(text, encoding="utf-8")
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if push_to_hub:
        _push(out, push_to_hub)
    return files


def _push(folder: Path, repo_id: str) -> None:
    import datasets

    datasets.load_from_disk(str(folder)).push_to_hub(repo_id)
