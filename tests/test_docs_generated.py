"""Generated docs match the code: the CLI reference, the formats page and the paper index."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from preflab.formats.registry import reader_names

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load_generator() -> ModuleType:
    path = ROOT / "scripts" / "gen_cli_docs.py"
    spec = importlib.util.spec_from_file_location("gen_cli_docs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_cli_docs", module)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_matches_the_app() -> None:
    expected = _load_generator().render_cli_docs()
    committed = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert committed == expected, (
        "docs/cli.md is out of date with the Typer app; run: python scripts/gen_cli_docs.py"
    )


def test_cli_reference_does_not_depend_on_preflab_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generator = _load_generator()
    baseline = generator.render_cli_docs()
    monkeypatch.setenv("PREFLAB_WORKSPACE", "/somewhere/else")
    monkeypatch.setenv("COLUMNS", "37")
    assert baseline == generator.render_cli_docs()


def _formats_headings() -> set[str]:
    text = (DOCS / "formats.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#{2,4} (.*)$", text, flags=re.MULTILINE)
    return {name for h in headings for name in re.findall(r"`([^`]+)`", h)}


def test_formats_examples_are_the_output_of_the_code() -> None:
    generator = _load_generator()
    committed = (DOCS / "formats.md").read_text(encoding="utf-8")
    blocks = generator.render_format_examples()
    assert generator.update_formats_page(committed, blocks) == committed, (
        "the generated examples in docs/formats.md differ from what the readers and writers "
        "produce now; run: python scripts/gen_cli_docs.py"
    )
    missing = sorted(set(blocks) - set(generator.formats_block_keys(committed)))
    assert not missing, f"docs/formats.md lacks the generated blocks {missing}"


@pytest.mark.parametrize("name", reader_names())
def test_every_reader_is_documented_in_formats(name: str) -> None:
    text = (DOCS / "formats.md").read_text(encoding="utf-8")
    assert f"`{name}`" in text, f"reader {name!r} is not documented in docs/formats.md"
    assert name in _formats_headings(), f"reader {name!r} has no section heading in docs/formats.md"


@pytest.mark.parametrize("name", reader_names())
def test_every_reader_has_a_generated_example(name: str) -> None:
    keys = _load_generator().formats_block_keys((DOCS / "formats.md").read_text(encoding="utf-8"))
    assert any(k == f"read:{name}" or k.startswith(f"read:{name}-") for k in keys), (
        f"reader {name!r} has no example in docs/formats.md; add one to _READER_EXAMPLES in "
        "scripts/gen_cli_docs.py and run it"
    )


_SRC = ROOT / "src" / "preflab"
_COUNTER = re.compile(r"\b(?:b|ctx|self)\.(drop|count|note)\(\s*(?:f?\"([a-z_.]+)\")")


@pytest.mark.parametrize("package", ["formats", "derive"])
def test_every_counter_is_documented_in_formats(package: str) -> None:
    text = (DOCS / "formats.md").read_text(encoding="utf-8")
    missing = set()
    for path in sorted((_SRC / package).glob("*.py")):
        for kind, name in _COUNTER.findall(path.read_text(encoding="utf-8")):
            key = f"dropped_{name}" if kind == "drop" else name
            if f"`{key}`" not in text:
                missing.add(f"{key} ({path.name})")
    assert not missing, f"counters missing from docs/formats.md: {sorted(missing)}"


def test_every_writer_is_documented_in_formats() -> None:
    from preflab.formats import trl

    text = (DOCS / "formats.md").read_text(encoding="utf-8")
    writers = [n for n in getattr(trl, "__all__", dir(trl)) if n.startswith("write_")]
    assert writers, "preflab.formats.trl exports no write_* function"
    missing = [n for n in writers if f"`{n}`" not in text]
    assert not missing, f"writers missing from docs/formats.md: {missing}"


def _resolves(dotted: str) -> bool:
    """Return whether ``dotted`` is an importable module or an attribute path inside one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_paper_index_names_existing_modules() -> None:
    text = (DOCS / "paper_index.md").read_text(encoding="utf-8")
    modules = sorted(set(re.findall(r"`(preflab(?:\.\w+)+)`", text)))
    assert modules, "docs/paper_index.md names no module"
    missing = [dotted for dotted in modules if not _resolves(dotted)]
    assert not missing, f"docs/paper_index.md names modules that do not exist: {missing}"


_AUTHOR_YEAR = re.compile(
    r"([A-Z][\w'–-]+)(?: et al\.|,? (?:&|and) [A-Z]\w+(?:,? [A-Z]\w+)*)? \d{4}"
)


def test_paper_index_sources_are_cited_in_their_modules() -> None:
    text = (DOCS / "paper_index.md").read_text(encoding="utf-8")
    cited = text.split("## Defaults with no published source")[0]
    uncited = []
    for line in cited.splitlines():
        if not line.startswith("| ") or line.startswith(("| ---", "| what")):
            continue
        source = line.strip("|").split(" | ")[1]
        if "not cited in the code" in source:
            continue
        sources = [_module_source(m) for m in re.findall(r"`(preflab(?:\.\w+)+)`", line)]
        uncited += [
            f"{name} (row: {line[:60]}…)"
            for name in _AUTHOR_YEAR.findall(source)
            if not any(name in s for s in sources)
        ]
    assert not uncited, f"authors in docs/paper_index.md that their modules do not cite: {uncited}"


def _module_source(dotted: str) -> str:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        return Path(module.__file__ or "").read_text(encoding="utf-8")
    return ""


def test_docs_index_links_every_page() -> None:
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "index.md")
    missing = [p for p in pages if f"({p})" not in text]
    assert not missing, f"docs/index.md does not link: {missing}"


def test_docs_index_names_every_top_level_command() -> None:
    import typer.main

    from preflab.cli.main import app

    text = (DOCS / "index.md").read_text(encoding="utf-8")
    group = typer.main.get_command(app)
    commands = [n for n, c in group.commands.items() if not getattr(c, "hidden", False)]  # type: ignore[attr-defined]
    missing = [n for n in commands if f"`preflab {n}`" not in text]
    assert not missing, f"docs/index.md does not list the commands {missing}"


def test_stored_root_help_matches_the_app() -> None:
    expected = _load_generator().render_root_help()
    committed = (ROOT / "src" / "preflab" / "cli" / "root_help.py").read_text(encoding="utf-8")
    assert committed == expected, (
        "src/preflab/cli/root_help.py is out of date with the Typer app; "
        "run: python scripts/gen_cli_docs.py"
    )
