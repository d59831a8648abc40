"""Hugging Face datasets saved on disk (``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``).

The dataset is opened with :func:`datasets.load_from_disk` (memory-mapped Arrow, so nothing is
loaded whole) and its rows go through one of the row parsers:

- ``rows="auto"`` (default): TRL preference rows when there are ``chosen``/``rejected`` columns,
  TRL unpaired rows when there is ``completion``, after the optional column ``mapping`` (see
  :mod:`preflab.formats.tabular`);
- ``rows="preference"`` / ``"unpaired"``: force one of those;
- ``rows`` = another reader's name (``hh-rlhf``, ``shp``, ``oasst``, ``ultrafeedback``,
  ``helpsteer2``, ``arena``, ``pku-saferlhf``, ``nectar``): rows in that dataset's own columns,
  with that reader's default rules.

For a ``DatasetDict`` every split is read (or only ``split``); ``source`` is
``<path>#<split>`` and ``source_line`` the 1-based row number counted over the splits in order.
Needs the ``hf`` extra (``pip install 'preflab[hf]'``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from preflab.errors import DependencyError, FormatError, NotFoundError, UsageError
from preflab.formats import arena, helpsteer, hh_rlhf, nectar, oasst, pku_saferlhf, shp
from preflab.formats import ultrafeedback
from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ChunkBuilder
from preflab.formats.driver import RowParser, read_rows
from preflab.formats.tabular import make_tabular_parser

__all__ = ["read_hf_disk"]

_NAMED: dict[str, RowParser] = {
    "hh-rlhf": hh_rlhf.parse_row,
    "shp": shp.parse_row,
    "oasst": oasst.parse_row,
    "ultrafeedback": ultrafeedback.parse_row,
    "helpsteer2": helpsteer.parse_row,
    "arena": arena.make_parser("preferred_context"),
    "pku-saferlhf": pku_saferlhf.make_parser(),
    "nectar": nectar.make_parser(),
}


def _load(path: Path) -> Any:
    try:
        import datasets
    except ImportError:  # pragma: no cover - the hf extra is installed in development
        raise DependencyError(
            "reading saved Hugging Face datasets needs the hf extra: pip install 'preflab[hf]'"
        ) from None
    if not path.exists():
        raise NotFoundError(f"no such dataset directory: {path}", path=str(path))
    try:
        return datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise FormatError(f"not a dataset saved with save_to_disk: {exc}", path=str(path)) from None


def read_hf_disk(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    mapping: Mapping[str, str] | None = None,
    rows: str = "auto",
    split: str | None = None,
    judge_id: str | None = None,
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from a dataset directory written by ``save_to_disk``.

    Args:
        path: the dataset directory.
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
        mapping: our field → column, for ``rows`` auto/preference/unpaired.
        rows: how to read rows (see module doc).
        split: read only this split of a ``DatasetDict``.
        judge_id: judge of preference/unpaired rows (default ``hf-disk``).

    Raises:
        UsageError: unknown ``rows`` or ``split``.
    """
    path = Path(path)
    if rows in _NAMED:
        if mapping:
            raise UsageError(
                "a column mapping applies to rows auto/preference/unpaired only", field="mapping"
            )
        parse = _NAMED[rows]
        format = rows
    elif rows in ("auto", "preference", "unpaired"):
        parse = make_tabular_parser(mapping, kind=rows, default_judge=judge_id or "hf-disk")  # type: ignore[arg-type]
        format = "hf-disk"
    else:
        raise UsageError(
            f"rows must be auto, preference, unpaired or one of "
            f"{', '.join(sorted(_NAMED))}, got {rows!r}",
            field="rows",
            value=rows,
        )
    loaded = _load(path)
    if hasattr(loaded, "keys"):  # DatasetDict
        names = list(loaded.keys())
        if split is not None:
            if split not in names:
                raise UsageError(
                    f"no split {split!r} in {path}; it has: {', '.join(names)}",
                    field="split",
                    value=split,
                )
            names = [split]
        parts = [(f"{path}#{name}", loaded[name]) for name in names]
    else:
        if split is not None:
            raise UsageError(f"{path} holds a single dataset, not splits", field="split")
        parts = [(str(path), loaded)]
    builder = ChunkBuilder(path=str(path), format=format)

    def row_stream() -> Iterator[tuple[int, Any]]:
        line = 0
        for source, dataset in parts:
            builder.path = source
            for batch in dataset.iter(batch_size=1000):
                columns = list(batch)
                for values in zip(*(batch[c] for c in columns), strict=True):
                    line += 1
                    yield line, dict(zip(columns, values, strict=True))

    return read_rows(
        str(path),
        row_stream(),
        parse,
        format=format,
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
        builder=builder,
    )
