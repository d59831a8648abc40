"""Building the ``preflab`` command loads no heavy library; lazy packages keep their public API.

The CLI modules import library code inside their commands, and ``preflab``, ``preflab.generate``,
``preflab.audit``, ``preflab.arena``, ``preflab.derive`` and ``preflab.formats`` import their
public names on first use (PEP 562). These tests check what is imported, not how long it takes
(timings belong in ``bench/``).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("openai", "scipy", "polars", "datasets", "torch", "transformers", "sklearn", "statsmodels")

LAZY_PACKAGES = (
    "preflab",
    "preflab.generate",
    "preflab.audit",
    "preflab.arena",
    "preflab.derive",
    "preflab.formats",
)


def _heavy_modules_after(statement: str) -> list[str]:
    """Run ``statement`` in a fresh interpreter; return the heavy modules it left imported."""
    code = (
        f"{statement}\n"
        "import sys\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return ast.literal_eval(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_building_the_cli_imports_no_heavy_library() -> None:
    assert _heavy_modules_after("import preflab.cli.main") == []


def test_importing_the_packages_imports_no_heavy_library() -> None:
    assert _heavy_modules_after("import " + ", ".join(LAZY_PACKAGES)) == []


def test_a_command_still_loads_its_library() -> None:
    """The check above can fail: using a public name does import the library behind it."""
    heavy = _heavy_modules_after("from preflab.audit import audit_dataset")
    assert "scipy" in heavy
    assert "polars" in heavy


def _type_checking_imports(package: str) -> dict[str, str]:
    """Return ``{name: module}`` of the imports under ``if TYPE_CHECKING:`` in ``package``."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module, ast.unparse(stmt)
                found.update({alias.name: stmt.module for alias in stmt.names})
    return found


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_resolves_to_the_object_of_its_module(package: str) -> None:
    pkg = importlib.import_module(package)
    static = _type_checking_imports(package)
    public = set(pkg.__all__) - {"__version__"}
    # what type checkers see, what __all__ promises and what __getattr__ serves agree
    assert set(static) == public
    for name in pkg.__all__:
        value = getattr(pkg, name)
        if name in static:
            assert value is getattr(importlib.import_module(static[name]), name), name
        assert name in dir(pkg)
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)  # noqa: S102 - star import is the API under test
    assert public <= set(namespace)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_unknown_names_raise_attribute_error(package: str) -> None:
    pkg = importlib.import_module(package)
    with pytest.raises(AttributeError, match="no_such_name"):
        pkg.no_such_name  # noqa: B018
    assert not hasattr(pkg, "no_such_name")


def _run_help(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    clean = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR", "FORCE_COLOR")}
    script = Path(sys.executable).with_name("preflab")  # the console script, as users run it
    if not script.exists():
        pytest.skip(f"no preflab console script beside {sys.executable}; pip install -e .")
    return subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=120, check=False,
        env={**clean, "PYTHONPROFILEIMPORTTIME": "1", **env},
    )


def test_help_prints_what_typer_prints_without_importing_typer() -> None:
    stored = _run_help({})
    rendered = _run_help({"COLUMNS": "80"})  # a terminal setting: Typer renders the help itself
    assert (stored.returncode, rendered.returncode) == (0, 0)
    assert stored.stdout == rendered.stdout
    imported = {line.split("|")[-1].strip() for line in stored.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in ("typer", "rich", "click")}
    assert "typer" in {m.split(".")[0] for line in rendered.stderr.splitlines()
                       for m in [line.split("|")[-1].strip()]}
