"""The package's public API is explicit, and every name in it exists."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module", ["preflab", "preflab.records", "preflab.errors"])
def test_all_names_exist(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__, module
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is in __all__ but missing"


def test_records_module_imports_nothing_else_of_preflab() -> None:
    import ast
    from pathlib import Path

    import preflab.records

    folder = Path(preflab.records.__file__).parent
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("preflab"):
                assert node.module.startswith(("preflab.records", "preflab.errors")), (
                    f"{path.name} imports {node.module}"
                )


def test_import_direction_contract_holds() -> None:
    """Imports point down only (DESIGN.md "Layers"), checked by import-linter."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint)], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
