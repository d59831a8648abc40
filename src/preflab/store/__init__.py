"""preflab.store: the workspace database (SQLite by default, PostgreSQL by URL).

``engine`` makes engines and opens workspaces; ``migrate`` runs the Alembic migrations;
``unit_of_work`` holds the scopes that commit; ``bulk`` writes Arrow record tables;
``imports`` writes a reader's chunks in one transaction; ``queries`` reads back to Arrow.

Names are imported on first use, so ``import preflab.store.engine`` stays light (no Arrow or
Polars) for commands that only open a database.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ImportResult": "preflab.store.imports",
    "count_rows": "preflab.store.queries",
    "file_sha256": "preflab.store.imports",
    "import_chunks": "preflab.store.imports",
    "make_engine": "preflab.store.engine",
    "open_workspace": "preflab.store.engine",
    "read_judges": "preflab.store.queries",
    "read_judgments": "preflab.store.queries",
    "read_prompts": "preflab.store.queries",
    "read_responses": "preflab.store.queries",
    "read_scope": "preflab.store.unit_of_work",
    "resolve_database_url": "preflab.store.engine",
    "session_scope": "preflab.store.unit_of_work",
    "upgrade_to_head": "preflab.store.migrate",
    "write_parquet_snapshot": "preflab.store.queries",
    "write_scope": "preflab.store.unit_of_work",
}

__all__ = [
    "ImportResult",
    "count_rows",
    "file_sha256",
    "import_chunks",
    "make_engine",
    "open_workspace",
    "read_judges",
    "read_judgments",
    "read_prompts",
    "read_responses",
    "read_scope",
    "resolve_database_url",
    "session_scope",
    "upgrade_to_head",
    "write_parquet_snapshot",
    "write_scope",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'preflab.store' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
