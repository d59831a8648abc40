"""Reads of the store: record tables to Arrow/Parquet, counts, finding and inserting projects.

The annotation app's reads and writes live one layer up, in :mod:`preflab.collect`. Names are
imported on first use, so ``from preflab.store.queries import find_project`` does not load
Arrow and Polars.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "count_rows": "counts",
    "ensure_project": "projects",
    "find_project": "projects",
    "insert_project": "projects",
    "iter_judge_batches": "records",
    "iter_judgment_batches": "records",
    "iter_prompt_batches": "records",
    "iter_response_batches": "records",
    "make_project_id": "projects",
    "read_judges": "records",
    "read_judgments": "records",
    "read_prompts": "records",
    "read_responses": "records",
    "write_parquet_snapshot": "snapshot",
}

__all__ = [
    "count_rows",
    "ensure_project",
    "find_project",
    "insert_project",
    "iter_judge_batches",
    "iter_judgment_batches",
    "iter_prompt_batches",
    "iter_response_batches",
    "make_project_id",
    "read_judges",
    "read_judgments",
    "read_prompts",
    "read_responses",
    "write_parquet_snapshot",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        # submodules (``collect``, ``records``, …) load on attribute access too
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
            raise
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return __all__
