"""The arena's public API is explicit and takes tables, never a database session."""

from __future__ import annotations

import ast
from pathlib import Path

import preflab.arena


def test_every_name_in_all_exists() -> None:
    assert preflab.arena.__all__
    for name in preflab.arena.__all__:
        assert hasattr(preflab.arena, name), name


def test_arena_imports_no_sibling_layer_and_no_store() -> None:
    folder = Path(preflab.arena.__file__).parent
    forbidden = (
        "preflab.formats",
        "preflab.derive",
        "preflab.audit",
        "preflab.generate",
        "preflab.store",
        "preflab.server",
        "preflab.cli",
        "sqlalchemy",
    )
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
