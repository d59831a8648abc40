"""Reads of the store: record tables to Arrow/Parquet, counts, projects (``collect``: the app's).

Names are imported on first use, so ``from preflab.store.queries import collect`` does not
load Arrow and Polars.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "count_rows": "counts",
    "create_project": "projects",
    "ensure_project": "projects",
    "find_project": "projects",
    "iter_judge_batches": "records",
    "iter_judgment_batches": "records",
    "iter_prompt_batches": "records",
    "iter_response_batches": "records",
    "list_projects": "projects",
    "make_project_id": "projects",
    "read_judges": "records",
    "read_judgments": "records",
    "read_prompts": "records",
    "read_responses": "records",
    "write_parquet_snapshot": "snapshot",
}

__all__ = [
    "count_rows",
    "create_project",
    "ensure_project",
    "find_project",
    "iter_judge_batches",
    "iter_judgment_batches",
    "iter_prompt_batches",
    "iter_response_batches",
    "list_projects",
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
