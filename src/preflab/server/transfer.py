"""Import and export from the browser, and the agreement figures of the admin page.

These call the import readers (``preflab.formats``), the store's bulk writer, the derive rules
and the audit library; each is optional at run time, so the admin pages offer what exists.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

from preflab.errors import DependencyError, InputError, PreflabError, UsageError
from preflab.server.db import Database
from preflab.collect import Project

__all__ = [
    "agreement_summary",
    "export_formats",
    "export_project",
    "import_file",
    "import_formats",
    "import_upload",
]

MAX_UPLOAD = 512 * 1024 * 1024


def import_formats() -> list[str]:
    """Return the import formats the readers offer."""
    try:
        from preflab.formats.registry import reader_names
    except ImportError:
        return []
    return [n for n in reader_names() if n != "hf-disk"]


def import_file(db: Database, project: Project, fmt: str, path: Path) -> dict[str, Any]:
    """Import a file into a project (one transaction; items made for its judgments)."""
    try:
        from preflab.formats.registry import iter_read
        from preflab.store.imports import import_chunks
    except ImportError as exc:  # pragma: no cover - only when the import layer is missing
        raise DependencyError(f"importing needs preflab.formats and preflab.store: {exc}") from exc
    result = import_chunks(db.engine, iter_read(fmt, path), format=fmt, path=path,
                           project_id=project.project_id)
    db.analyze()  # a big import changes the items table's statistics
    return result.to_dict()


def import_upload(
    db: Database, project: Project, fmt: str, filename: str, data: bytes
) -> dict[str, Any]:
    """Import an uploaded file (kept in a temporary file while read)."""
    if fmt not in import_formats():
        raise UsageError(f"unknown import format {fmt!r}; choose one of {import_formats()}",
                         field="format")
    if not data:
        raise InputError(f"{filename} is empty", field="file", path=filename)
    if len(data) > MAX_UPLOAD:
        raise InputError(f"{filename} is larger than {MAX_UPLOAD >> 20} MB; import it with "
                         "`preflab import` instead", field="file", path=filename)
    suffix = "".join(Path(filename).suffixes[-2:]) or ".jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            out = import_file(db, project, fmt, path)
        except PreflabError as exc:
            if exc.path and str(path) in str(exc.path):
                exc.path = filename
            exc.message = exc.message.replace(str(path), filename)
            raise
    out["path"] = filename
    return out


def export_formats() -> list[str]:
    """Return the export files the admin page can offer beyond raw judgments."""
    try:
        import preflab.derive.pairs
        import preflab.store.queries.records  # noqa: F401
    except ImportError:
        return []
    return ["pairs.jsonl"]


def _tables(db: Database, project_id: str) -> tuple[Any, Any, Any]:
    from preflab.store.queries.records import read_judgments, read_prompts, read_responses

    return (read_prompts(db.engine), read_responses(db.engine),
            read_judgments(db.engine, project_id))


def export_project(db: Database, project: Project, fmt: str) -> tuple[bytes, str]:
    """Return the bytes and file name of a project export (``pairs.jsonl``: TRL pairs)."""
    if fmt not in export_formats():
        raise UsageError(f"unknown export {fmt!r}; choose one of {export_formats()}",
                         field="format")
    from preflab.derive.pairs import derive_pairs

    prompts, responses, judgments = _tables(db, project.project_id)
    pairs = derive_pairs(prompts, responses, judgments)
    buf = io.StringIO()
    for row in pairs.to_pylist():
        buf.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return buf.getvalue().encode(), f"{project.project_id}-pairs.jsonl"


def agreement_summary(db: Database, project: Project) -> dict[str, Any] | None:
    """Return the audit library's agreement figures for the project's judgments, or None."""
    try:
        from preflab.audit.agreement import agreement_summary as summarize
        from preflab.store.queries.records import read_judgments
    except ImportError:
        return None
    try:
        table = read_judgments(db.engine, project.project_id)
        table = table.filter(_app_made(table))
        if table.num_rows < 2:
            return None
        summary = summarize(table, n_resamples=0)
    except (PreflabError, ValueError, KeyError, ZeroDivisionError):
        return None
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str)) or v is None}


def _app_made(table: Any) -> Any:
    import pyarrow.compute as pc

    return pc.equal(table["source"], "app")
