"""preflab.formats: readers and writers of outside formats.

Readers turn files into streams of :class:`~preflab.formats.base.ImportChunk` (Arrow tables of
prompts, responses, judgments and judges); use them through :func:`iter_read` / :func:`read`
with a format name from :func:`reader_names` (see :mod:`preflab.formats.registry`).

Names are imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from preflab.formats.base import ImportChunk, ImportProblem, ImportSummary
    from preflab.formats.chunk_builder import ORDER_UNKNOWN
    from preflab.formats.driver import InvalidRowsError
    from preflab.formats.registry import iter_read, open_text, read, reader_names, register_reader

__all__ = [
    "ORDER_UNKNOWN",
    "ImportChunk",
    "ImportProblem",
    "ImportSummary",
    "InvalidRowsError",
    "iter_read",
    "open_text",
    "read",
    "reader_names",
    "register_reader",
]

_EXPORTS = {
    "base": ("ImportChunk", "ImportProblem", "ImportSummary"),
    "chunk_builder": ("ORDER_UNKNOWN",),
    "driver": ("InvalidRowsError",),
    "registry": ("iter_read", "open_text", "read", "reader_names", "register_reader"),
}
_ORIGIN = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _ORIGIN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
