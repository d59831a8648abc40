"""Import and export from the browser, and the agreement figures of the admin page.

These call the import readers (``preflab.formats``), the store's bulk writer, the derive rules
and the audit library; each is optional at run time, so the admin pages offer what exists.

An upload is copied to a temporary file in chunks and, when compressed, inflated once as a
stream to check its expanded size before any import starts: both caps
(``max_upload_bytes``, ``max_upload_expanded_bytes``) hold without the file ever being in
memory, so a compression bomb is refused with 413 at the cost of at most the cap.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import tempfile
from pathlib import Path
from typing import IO, Any

from preflab.collect import Project
from preflab.errors import DependencyError, InputError, PreflabError, UsageError
from preflab.server.db import Database
from preflab.server.errors import UploadTooLargeError
from preflab.settings import Settings

__all__ = [
    "agreement_summary",
    "check_expanded_size",
    "export_formats",
    "export_project",
    "import_file",
    "import_formats",
    "import_upload",
]

_CHUNK = 1 << 20


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
    db: Database, project: Project, fmt: str, filename: str, data: bytes | IO[bytes],
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Import an uploaded file (bytes, or a binary file such as the form's spooled upload).

    The upload is copied to a temporary file in chunks; its size and, when it is compressed
    (gzip, bzip2, zstd), its expanded size are checked against the settings' caps first.

    Raises:
        UsageError: an unknown format.
        InputError: an empty file.
        UploadTooLargeError: a file over ``max_upload_bytes``, or one that expands past
            ``max_upload_expanded_bytes``.
    """
    settings = settings or Settings()
    if fmt not in import_formats():
        raise UsageError(f"unknown import format {fmt!r}; choose one of {import_formats()}",
                         field="format")
    suffix = "".join(Path(filename).suffixes[-2:]) or ".jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        size = _save(data, path, filename, settings.max_upload_bytes)
        if not size:
            raise InputError(f"{filename} is empty", field="file", path=filename)
        check_expanded_size(path, filename, settings.max_upload_expanded_bytes)
        try:
            out = import_file(db, project, fmt, path)
        except PreflabError as exc:
            if exc.path and str(path) in str(exc.path):
                exc.path = filename
            exc.message = exc.message.replace(str(path), filename)
            raise
    out["path"] = filename
    return out


def _save(data: bytes | IO[bytes], path: Path, filename: str, cap: int) -> int:
    """Write the upload to ``path`` in chunks; return its size, refusing past ``cap``."""
    source: IO[bytes] = io.BytesIO(data) if isinstance(data, bytes) else data
    size = 0
    with path.open("wb") as out:
        while chunk := source.read(_CHUNK):
            size += len(chunk)
            if size > cap:
                raise UploadTooLargeError(
                    f"{filename} is larger than {_mib(cap)}; import it with `preflab import` "
                    "on the server, or raise max_upload_bytes", field="file", path=filename)
            out.write(chunk)
    return size


def check_expanded_size(path: Path, filename: str, cap: int) -> int:
    """Return the size ``path`` decompresses to, reading it as a stream; refuse past ``cap``.

    The compression is told by the file's first bytes, as the import readers do; a file
    that is not compressed counts as its own size.

    Raises:
        UploadTooLargeError: the expanded size passes ``cap`` (read stops right there).
        InputError: the compressed data is broken.
    """
    with path.open("rb") as raw:
        stream = _decompressing(raw)
        if stream is None:
            size = path.stat().st_size
            if size > cap:
                raise _expands_too_far(filename, cap)
            return size
        size = 0
        try:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise _expands_too_far(filename, cap)
        except (OSError, EOFError, ValueError) as exc:
            raise InputError(f"{filename}: the compressed data is broken ({exc})",
                             field="file", path=filename) from None
        return size


def _expands_too_far(filename: str, cap: int) -> UploadTooLargeError:
    return UploadTooLargeError(
        f"{filename} expands to more than {_mib(cap)} once decompressed (a compression bomb, "
        "or a file too big for the browser); import it with `preflab import` on the server, "
        "or raise max_upload_expanded_bytes", field="file", path=filename)


def _decompressing(raw: IO[bytes]) -> Any:
    """Return a decompressing reader of ``raw`` by its magic bytes, or None if uncompressed.

    (Any: a GzipFile, BZ2File or zstd reader, binary streams all.)
    """
    magic = raw.read(4)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)
    if magic[:3] == b"BZh":
        return bz2.BZ2File(raw)
    if magic == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return None


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n} bytes"


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
