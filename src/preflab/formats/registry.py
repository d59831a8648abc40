"""Readers by name, and the entry points every caller uses: :func:`iter_read` and :func:`read`.

=====================  ======================================================================
name                   reads
=====================  ======================================================================
``hh-rlhf``            Anthropic HH-RLHF transcripts → pairwise (2-point)
``pku-saferlhf``       PKU-SafeRLHF → pairwise helpfulness and harmlessness, binary safety
``nectar``             Nectar 7-wise GPT-4 rankings → rankings
``shp``                Stanford Human Preferences → pairwise (2-point)
``oasst``              OpenAssistant message trees (oasst1/oasst2) → rankings
``ultrafeedback``      UltraFeedback completions → ratings (aspects 1–5, overall 1–10); also
                       reads the binarized layout
``ultrafeedback-       UltraFeedback binarized (chosen/rejected + score_chosen/score_rejected)
binarized``            → one rating judgment of the two answers
``helpsteer2``         HelpSteer2 attribute ratings (0–4) and preference file (−3..3 → 7-point)
``arena``              Chatbot Arena battles → pairwise with tie / both-bad
``arena-human-         Chatbot Arena human-preference CSV/Parquet (Kaggle's 55k) → pairwise
preference``           with tie
``hh-red-team``        HH-RLHF red-team attempts → prompt + final answer, ratings (attack
                       success 0–4, preference-model harmlessness)
``trl-preference``     TRL preference datasets (standard/conversational, explicit/implicit prompt)
``trl-unpaired``       TRL unpaired (KTO) datasets → binary
``jsonl``/``csv``/     generic tables with a column mapping (preference or unpaired rows)
``parquet``
``hf-disk``            a Hugging Face dataset saved with ``save_to_disk``
``snapshot``           a record snapshot folder written by ``preflab snapshot`` (Parquet)
=====================  ======================================================================

Every reader streams: it yields :class:`~preflab.formats.base.ImportChunk` objects of at most
``chunk_size`` input rows, so a file larger than memory can be imported. Other packages can add
readers with :func:`register_reader`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preflab.errors import UsageError
from preflab.formats.streams import open_text

if TYPE_CHECKING:
    from preflab.formats.base import ImportChunk

__all__ = [
    "ReaderSpec",
    "iter_read",
    "open_text",
    "read",
    "reader_names",
    "reader_specs",
    "register_reader",
]

Reader = Callable[..., "Iterator[ImportChunk]"]


@dataclass(frozen=True, slots=True)
class ReaderSpec:
    """A registered reader: its name, a one-line description and where its function lives."""

    name: str
    description: str
    target: str  # "module:function", imported on first use so optional extras stay optional

    def load(self) -> Reader:
        """Import and return the reader function."""
        module, _, func = self.target.partition(":")
        reader: Reader = getattr(importlib.import_module(module), func)
        return reader


_READERS: dict[str, ReaderSpec] = {}


def register_reader(name: str, target: str | Reader, description: str = "") -> None:
    """Register a reader under ``name``.

    Args:
        name: the format name used by ``iter_read`` and ``preflab import``.
        target: the reader function, or ``"module:function"`` to import it lazily. A reader takes
            ``(path, *, chunk_size, skip_invalid, max_problems, **options)`` and yields chunks.
        description: one line for listings.
    """
    if callable(target):
        module = target.__module__
        target = f"{module}:{target.__name__}"
    _READERS[name] = ReaderSpec(name=name, description=description, target=target)


def reader_specs() -> list[ReaderSpec]:
    """Return the registered readers (name, one-line description, target), sorted by name."""
    return [_READERS[name] for name in sorted(_READERS)]


def reader_names() -> list[str]:
    """Return the registered format names, sorted.

    >>> "hh-rlhf" in reader_names()
    True
    """
    return sorted(_READERS)


_BUILTINS = {
    "hh-rlhf": ("hh_rlhf:read_hh_rlhf", "Anthropic HH-RLHF chosen/rejected transcripts"),
    "shp": ("shp:read_shp", "Stanford Human Preferences (SHP) comment pairs"),
    "oasst": ("oasst:read_oasst", "OpenAssistant message trees: sibling ranks → rankings"),
    "ultrafeedback": (
        "ultrafeedback:read_ultrafeedback",
        "UltraFeedback completions with aspect ratings and overall scores",
    ),
    "ultrafeedback-binarized": (
        "ultrafeedback_binarized:read_ultrafeedback_binarized",
        "UltraFeedback binarized: chosen/rejected messages with GPT-4 scores",
    ),
    "arena-human-preference": (
        "arena_human_preference:read_arena_human_preference",
        "Chatbot Arena human-preference CSV/Parquet (winner_model_a/b, winner_tie)",
    ),
    "hh-red-team": (
        "hh_red_team:read_hh_red_team",
        "HH-RLHF red-team attempts: final answer rated for attack success and harmlessness",
    ),
    "helpsteer2": (
        "helpsteer:read_helpsteer2",
        "HelpSteer2 attribute ratings and pairwise preference strengths",
    ),
    "arena": ("arena:read_arena", "Chatbot Arena battles (winner, tie, tie (bothbad))"),
    "pku-saferlhf": (
        "pku_saferlhf:read_pku_saferlhf",
        "PKU-SafeRLHF: better (helpfulness) and safer (harmlessness) answers, safety labels",
    ),
    "nectar": ("nectar:read_nectar", "Nectar: 7 answers per prompt ranked by GPT-4"),
    "trl-preference": (
        "trl_datasets:read_trl_preference",
        "TRL preference rows: prompt?/chosen/rejected, standard or conversational",
    ),
    "trl-unpaired": (
        "trl_datasets:read_trl_unpaired",
        "TRL unpaired rows: prompt/completion/label",
    ),
    "jsonl": ("tabular:read_jsonl", "generic JSON lines with a column mapping"),
    "csv": ("tabular:read_csv", "generic CSV with a column mapping"),
    "parquet": ("tabular:read_parquet", "generic Parquet with a column mapping"),
    "hf-disk": ("hf_disk:read_hf_disk", "a Hugging Face dataset saved with save_to_disk"),
    "snapshot": (
        "snapshot:read_snapshot",
        "a record snapshot folder (prompts/responses/judges/judgments Parquet) from preflab snapshot",
    ),
}
for _name, (_target, _description) in _BUILTINS.items():
    register_reader(_name, f"preflab.formats.{_target}", _description)


def _reader(format: str) -> Reader:
    spec = _READERS.get(format)
    if spec is None:
        raise UsageError(
            f"unknown import format {format!r}; choose one of: {', '.join(reader_names())}",
            field="format",
            value=format,
        )
    return spec.load()


def iter_read(
    format: str,
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    mapping: Mapping[str, str] | None = None,
    **opts: Any,
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from ``path`` in ``format``, streaming.

    Args:
        format: a registered reader name (:func:`reader_names`).
        path: the input file (or directory for ``hf-disk``).
        chunk_size: input rows per chunk; a chunk holds the records of those rows.
        skip_invalid: leave bad rows out and report them in ``chunk.problems`` instead of raising.
        mapping: column mapping for the generic readers (``{"chosen": "good_answer", …}``).
        **opts: reader options (see each reader's docstring).

    Yields:
        :class:`~preflab.formats.base.ImportChunk` objects. Records seen in an earlier chunk of
        the same file are not repeated (up to a million ids per record type remembered; past
        that, a record may come again with the same id); ``counts`` are per chunk.

    Raises:
        UsageError: unknown format or an option the reader does not take.
        InputError: a bad row (file, line and field in the error) unless ``skip_invalid``.
        NotFoundError: the file does not exist.
    """
    reader = _reader(format)
    if mapping is not None:
        opts["mapping"] = dict(mapping)
    params = inspect.signature(reader).parameters
    has_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in opts if k not in params and not has_kwargs]
    if unknown:
        takes = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        raise UsageError(
            f"the {format} reader takes no option {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(takes)}",
            field=unknown[0],
        )
    yield from reader(path, chunk_size=chunk_size, skip_invalid=skip_invalid, **opts)


def read(format: str, path: str | Path, **opts: Any) -> ImportChunk:
    """Return all records of ``path`` as one chunk (chunks concatenated, counts summed).

    Takes the same arguments as :func:`iter_read`. Convenient for small files and tests; use
    :func:`iter_read` for large ones.
    """
    from preflab.formats.driver import concat_chunks

    return concat_chunks(iter_read(format, path, **opts))
