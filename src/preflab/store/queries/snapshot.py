"""Parquet snapshots of the record tables (for audits, derivation and exports off the app)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine

from preflab.errors import StoreError
from preflab.records import JUDGE_SCHEMA, JUDGMENT_SCHEMA, PROMPT_SCHEMA, RESPONSE_SCHEMA
from preflab.store.queries.records import (
    iter_judge_batches,
    iter_judgment_batches,
    iter_prompt_batches,
    iter_response_batches,
)
from preflab.store.queries.scope import reading

__all__ = ["SNAPSHOT_FILES", "write_parquet_snapshot"]

SNAPSHOT_FILES = {
    "prompts": (iter_prompt_batches, PROMPT_SCHEMA),
    "responses": (iter_response_batches, RESPONSE_SCHEMA),
    "judges": (iter_judge_batches, JUDGE_SCHEMA),
    "judgments": (iter_judgment_batches, JUDGMENT_SCHEMA),
}


def write_parquet_snapshot(
    bind: Engine | Connection, folder: str | Path, project_id: str | None = None
) -> dict[str, Path]:
    """Write ``prompts``, ``responses``, ``judges`` and ``judgments`` Parquet files to ``folder``.

    All four are read in one transaction (a consistent snapshot) and streamed in batches.
    Each file is written under a temporary name and renamed when complete, so a reader never
    sees half a file.

    Args:
        bind: engine or connection of the store.
        folder: output folder (created when missing).
        project_id: only what belongs to this project.

    Returns:
        The written paths by table name (``{"prompts": Path(".../prompts.parquet"), …}``).

    Raises:
        StoreError: the folder cannot be written.
    """
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {out}: {exc.strerror}.", path=str(out)) from None
    written: dict[str, Path] = {}
    with reading(bind) as conn:
        for name, (iter_batches, schema) in SNAPSHOT_FILES.items():
            target = out / f"{name}.parquet"
            tmp = out / f".{name}.parquet.tmp-{os.getpid()}"
            try:
                with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                    for batch in iter_batches(conn, project_id):
                        writer.write_batch(batch)
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            written[name] = target
    return written
