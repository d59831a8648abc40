"""Open input files as streams of rows, whatever their compression or container.

Every reader consumes ``(line, row)`` pairs from :func:`iter_rows`, so each outside format can
arrive as JSON lines (plain, ``.gz``, ``.bz2``, ``.zst``), CSV (same compressions) or Parquet.
Nothing here reads a whole file into memory: text is decoded line by line and Parquet in record
batches.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

from preflab.errors import FormatError, InputError, NotFoundError, shorten

__all__ = ["RowSource", "detect_container", "iter_rows", "open_text"]

RowSource = Literal["jsonl", "csv", "parquet"]

_COMPRESSIONS = (".gz", ".bz2", ".zst", ".zstd")
# Python's csv module refuses fields over 128 KiB by default; long model answers exceed that.
csv.field_size_limit(2**31 - 1)


class _ZstdReader(io.RawIOBase):
    """Decompress concatenated zstd frames; a file cut inside a frame is an error, not an end.

    (``zstandard``'s own stream reader returns an empty read for a truncated frame, which would
    make a cut-off download look like a shorter file.)
    """

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self._zstd = zstandard
        self._raw = raw
        self._dobj = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._offset = 0
        self._in_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._offset >= len(self._pending):
            self._pending, self._offset = b"", 0
            data = self._raw.read(1 << 20)
            if not data:
                if self._in_frame:
                    raise EOFError("the zstd stream ends inside a frame (truncated file?)")
                return 0
            while data:
                try:
                    self._pending += self._dobj.decompress(data)
                except self._zstd.ZstdError as exc:
                    raise OSError(f"bad zstd data: {exc}") from None
                self._in_frame = not self._dobj.eof
                data = self._dobj.unused_data if self._dobj.eof else b""
                if self._dobj.eof:
                    self._dobj = self._zstd.ZstdDecompressor().decompressobj()
                    self._in_frame = bool(data)
        n = min(len(buffer), len(self._pending) - self._offset)
        buffer[:n] = self._pending[self._offset : self._offset + n]
        self._offset += n
        return n


@contextmanager
def open_text(path: str | Path) -> Iterator[IO[str]]:
    """Open ``path`` for reading text line by line, decompressing ``.gz``, ``.bz2``, ``.zst``.

    The compression is chosen from the file's first bytes (magic numbers), so a mis-named file
    still opens; text is decoded as UTF-8 (a leading byte-order mark is dropped).

    Args:
        path: the file to open.

    Yields:
        A text stream; iterate it for lines.

    Raises:
        NotFoundError: the file does not exist.

    >>> import tempfile, gzip, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.jsonl.gz")
    >>> with gzip.open(p, "wt") as f: _ = f.write('{"a": 1}\\n')
    >>> with open_text(p) as f: print(f.readline().strip())
    {"a": 1}
    """
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"no such file: {p}", path=str(p))
    raw: IO[bytes] = open(p, "rb")  # noqa: SIM115 - closed below
    try:
        magic = raw.read(4)
        raw.seek(0)
        binary: Any  # GzipFile, BZ2File, zstd reader or the raw file: all binary streams
        if magic[:2] == b"\x1f\x8b":
            binary = gzip.GzipFile(fileobj=raw)
        elif magic[:3] == b"BZh":
            binary = bz2.BZ2File(raw)
        elif magic == b"\x28\xb5\x2f\xfd":
            binary = io.BufferedReader(_ZstdReader(raw), 1 << 20)
        else:
            binary = raw
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        try:
            yield text
        finally:
            text.close()
    finally:
        raw.close()


def detect_container(path: str | Path) -> RowSource:
    """Return how rows are stored in ``path``: ``jsonl``, ``csv`` or ``parquet`` (by its name).

    >>> [detect_container(n) for n in ("train.csv.zst", "x.parquet", "a.jsonl.gz")]
    ['csv', 'parquet', 'jsonl']
    """
    name = Path(path).name.lower()
    for ext in _COMPRESSIONS:
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    return "jsonl"


#: Distinct lines whose parsed row ``iter_rows(..., repeats=True)`` remembers at a time.
LINE_MEMO_LIMIT = 20_000


def _remembering_loads() -> Any:
    """Return ``json.loads`` that parses each distinct line once (the same object returned).

    The memo holds up to :data:`LINE_MEMO_LIMIT` lines and is given up for good once fewer
    than one line in four repeats one before it, so a file without repeats costs nothing.
    """
    loads = json.loads
    memo: dict[str, Any] = {}
    state = {"lines": 0, "hits": 0, "on": True}

    def remembering(line: str) -> Any:
        if not state["on"]:
            return loads(line)
        row = memo.get(line)
        state["lines"] += 1
        if row is not None:
            state["hits"] += 1
            return row
        row = loads(line)
        if state["lines"] >= LINE_MEMO_LIMIT:
            memo.clear()
            if state["hits"] * 4 < state["lines"]:
                state["on"] = False  # few repeats: parse every line from now on
                return row
            state["lines"] = state["hits"] = 0
        if isinstance(row, dict):
            memo[line] = row
        return row

    return remembering


def _iter_jsonl(path: str, repeats: bool = False) -> Iterator[tuple[int, Any]]:
    loads = _remembering_loads() if repeats else json.loads
    with open_text(path) as text:
        try:
            first = True
            for line_no, line in enumerate(text, 1):
                if line.isspace() or not line:  # blank (isspace copies nothing, strip would)
                    continue
                if first:
                    first = False
                    if line.lstrip().startswith("["):
                        raise FormatError(
                            "this is a JSON array, not JSON lines (one object per line); "
                            "convert it first, e.g. jq -c '.[]' in.json > out.jsonl",
                            path=path,
                            line=line_no,
                        )
                try:
                    row = loads(line)
                except json.JSONDecodeError as exc:
                    yield (
                        line_no,
                        InputError(
                            f"not valid JSON ({exc.msg} at column {exc.colno}): "
                            f"{shorten(line.strip(), 60)}",
                            path=path,
                            line=line_no,
                        ),
                    )
                    continue
                yield line_no, row
        except UnicodeDecodeError as exc:
            raise FormatError(
                f"not UTF-8 text ({exc.reason} at byte {exc.start} of a block); "
                "convert the file to UTF-8 first",
                path=path,
            ) from None
        except (OSError, EOFError) as exc:
            raise FormatError(f"cannot decompress or read the file: {exc}", path=path) from None


def _iter_csv(path: str) -> Iterator[tuple[int, Any]]:
    delimiter = "\t" if ".tsv" in Path(path).name.lower() else ","
    with open_text(path) as text:
        reader = csv.DictReader(text, delimiter=delimiter)
        try:
            for row in reader:
                # line_num is the physical line where the record ends (records may span lines)
                if None in row:
                    yield (
                        reader.line_num,
                        InputError(
                            f"the row has {len(reader.fieldnames or []) + len(row[None])} "
                            "cells but "
                            f"the header names {len(reader.fieldnames or [])} columns",
                            path=path,
                            line=reader.line_num,
                        ),
                    )
                    continue
                yield reader.line_num, row
        except csv.Error as exc:
            raise FormatError(
                f"bad CSV near line {reader.line_num}: {exc}", path=path, line=reader.line_num
            ) from None
        except UnicodeDecodeError as exc:
            raise FormatError(f"not UTF-8 text ({exc.reason})", path=path) from None
        except (OSError, EOFError) as exc:
            raise FormatError(f"cannot decompress or read the file: {exc}", path=path) from None


def _iter_parquet(path: str, batch_size: int = 4096) -> Iterator[tuple[int, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"no such file: {p}", path=str(p))
    try:
        pf = pq.ParquetFile(p)
    except (pa.ArrowException, OSError) as exc:
        raise FormatError(f"not a Parquet file: {exc}", path=path) from None
    row_no = 0
    with pf:
        batches = pf.iter_batches(batch_size=batch_size)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                raise FormatError(
                    f"cannot read the Parquet data after row {row_no}: {exc}", path=path
                ) from None
            for row in batch.to_pylist():
                row_no += 1
                yield row_no, row


def iter_rows(
    path: str | Path, container: RowSource | None = None, *, repeats: bool = False
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, row)`` for every row of ``path``, lazily.

    ``line`` is the 1-based line number for JSON lines and CSV (the line where the record ends)
    and the 1-based row number for Parquet. A line that is not valid JSON is yielded as an
    :class:`InputError` in place of the row, so the caller decides whether to stop or skip.

    Args:
        path: the file.
        container: ``jsonl``, ``csv`` or ``parquet``; detected from the name when omitted.
        repeats: JSON lines only: parse each distinct line once and yield the same row object
            for its repeats (for readers that never change a row; files that repeat whole
            lines, such as concatenated dataset copies, then read at a fraction of the cost).
    """
    path = str(path)
    kind = container or detect_container(path)
    if kind == "parquet":
        return _iter_parquet(path)
    if kind == "csv":
        return _iter_csv(path)
    return _iter_jsonl(path, repeats)
