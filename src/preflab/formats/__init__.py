"""preflab.formats: readers and writers of outside formats.

Readers turn files into streams of :class:`~preflab.formats.base.ImportChunk` (Arrow tables of
prompts, responses, judgments and judges); use them through :func:`iter_read` / :func:`read`
with a format name from :func:`reader_names` (see :mod:`preflab.formats.registry`).
"""

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
