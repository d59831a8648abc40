"""TRL-ready exports: preference (DPO/Reward/ORPO…), unpaired (KTO), tokenized reward data.

The TRL contract (TRL docs, "Dataset formats and types"):

================================  ======================================================
preference, standard, explicit    ``prompt: str``, ``chosen: str``, ``rejected: str``
preference, standard, implicit    ``chosen: str``, ``rejected: str`` (prompt inside both)
preference, conversational, expl. ``prompt: [{role, content}…]``, ``chosen``/``rejected``:
                                  ``[{"role": "assistant", "content": …}]``
preference, conversational, impl. ``chosen``/``rejected``: the whole chat, prompt included
unpaired (KTO)                    ``prompt``, ``completion``, ``label: bool``
optional                          ``margin: float`` (RewardTrainer)
tokenized reward                  ``chosen_ids``, ``rejected_ids`` (TRL ≥ 0.20), and/or
                                  ``input_ids_chosen``, ``attention_mask_chosen``,
                                  ``input_ids_rejected``, ``attention_mask_rejected``
================================  ======================================================

Standard (plain text) prompts: with an explicit prompt, a single user message is written as its
text; anything longer (system message, earlier turns) — and every implicit prompt — is written
as an Anthropic HH-RLHF-style transcript
(``"\\n\\nHuman: …\\n\\nAssistant: …\\n\\nHuman: …\\n\\nAssistant:"``) and the completions then
start with a space, so that ``prompt + chosen`` reads as the full transcript.

Provenance columns (``prompt_id``, ``rule``, ``judgment_ids``…) are kept unless
``provenance="drop"``; TRL's trainers ignore columns they do not use.

Before anything is written the rows are validated and the first problem raises an
:class:`~preflab.errors.InputError` naming the row and the field: roles alternate (an optional
system message, then user/assistant turns ending with a user turn), completions hold one
assistant turn, the prompt is not repeated inside the completions, chosen differs from
rejected, nothing is empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from preflab.errors import DependencyError, InputError, UsageError
from preflab.formats.card import CardInfo, render_dataset_card, summarize_rules, summarize_sources
from preflab.formats.trl_rows import (
    completion_with_space,
    find_bad_pair,
    find_bad_unpaired,
    render_prompts,
)
from preflab.formats.writers import FileFormat, split_tables, write_export
from preflab.records import MESSAGES_TYPE

__all__ = [
    "PROVENANCE_COLUMNS",
    "ExportResult",
    "to_trl_preference",
    "to_trl_unpaired",
    "tokenize_reward_pairs",
    "validate_pairs",
    "validate_unpaired",
    "write_reward_tokenized",
    "write_trl_preference",
    "write_trl_unpaired",
]

Style = Literal["standard", "conversational"]
PromptMode = Literal["explicit", "implicit"]
Provenance = Literal["keep", "drop"]
TokenLayout = Literal["both", "trl", "legacy"]

PROVENANCE_COLUMNS: tuple[str, ...] = (
    "prompt_id",
    "chosen_id",
    "rejected_id",
    "completion_id",
    "agreement",
    "rule",
    "rule_params",
    "judgment_ids",
    "judge_ids",
    "guideline_version",
    "batch_id",
    "source",
)


@dataclass(slots=True)
class ExportResult:
    """What an export wrote: the folder, rows per split and the files."""

    out_dir: Path
    split_counts: dict[str, int]
    files: dict[str, str]
    dropped: dict[str, int] = field(default_factory=dict)


def validate_pairs(pairs: pa.Table) -> None:
    """Check every pair before export (rules in :mod:`preflab.formats.trl_rows`).

    Raises:
        InputError: the first bad row, naming its 1-based number and the field.
    """
    error = find_bad_pair(pairs)
    if error is not None:
        raise error


def validate_unpaired(unpaired: pa.Table) -> None:
    """Check every unpaired row before export (rules in :mod:`preflab.formats.trl_rows`).

    Raises:
        InputError: the first bad row, naming its 1-based number and the field.
    """
    error = find_bad_unpaired(unpaired)
    if error is not None:
        raise error


# --- conversion -------------------------------------------------------------------------


def _assistant_turns(texts: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Return ``[{"role": "assistant", "content": t}]`` per text, built column-wise."""
    values = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    n = len(values)
    roles = pa.array(np.full(n, "assistant", dtype=object), pa.string())
    structs = pa.StructArray.from_arrays([roles, values.cast(pa.string())], names=["role", "content"])
    offsets = pa.array(np.arange(n + 1, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, structs).cast(MESSAGES_TYPE)


def _prompt_plus(prompt: pa.ChunkedArray, texts: pa.ChunkedArray) -> pa.Array:
    """Return each prompt's messages followed by one assistant turn holding ``texts[i]``."""
    prompt = prompt.combine_chunks()
    n = len(prompt)
    lens = pc.list_value_length(prompt).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = prompt.offsets.to_numpy().astype(np.int64)[:-1]
    flat = prompt.values.slice(int(prompt.offsets[0].as_py()))
    starts = starts - starts[0] if n else starts
    extra = _assistant_turns(texts).values
    new_lens = lens + 1
    new_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(new_lens, out=new_offsets[1:])
    row_of = np.repeat(np.arange(n), new_lens)
    pos = np.arange(new_offsets[-1]) - new_offsets[row_of]
    src = np.where(pos == lens[row_of], len(flat) + row_of, starts[row_of] + pos)
    values = pa.concat_arrays([flat.cast(extra.type), extra]).take(pa.array(src))
    return pa.ListArray.from_arrays(pa.array(new_offsets.astype(np.int32)), values).cast(MESSAGES_TYPE)


def _standard_texts(
    prompt: pa.ChunkedArray, texts: pa.ChunkedArray, *, transcript: bool = False
) -> tuple[pa.Array, pa.Array]:
    ptext, is_transcript = render_prompts(prompt, transcript=transcript)
    return ptext, completion_with_space(texts.combine_chunks(), is_transcript)


def _provenance(table: pa.Table, provenance: Provenance) -> dict[str, pa.ChunkedArray]:
    if provenance == "drop":
        return {}
    return {c: table.column(c) for c in PROVENANCE_COLUMNS if c in table.column_names}


def to_trl_preference(
    pairs: pa.Table,
    *,
    style: Style = "standard",
    prompt: PromptMode = "explicit",
    margin: bool = False,
    provenance: Provenance = "keep",
    validate: bool = True,
) -> pa.Table:
    """Return ``pairs`` (``PAIR_SCHEMA``) as a TRL preference table.

    Args:
        pairs: derived pairs.
        style: ``standard`` (text) or ``conversational`` (lists of messages).
        prompt: ``explicit`` (a ``prompt`` column) or ``implicit`` (prompt inside both sides).
        margin: add the ``margin`` column (RewardTrainer); every pair must have a margin.
        provenance: keep or drop the provenance columns.
        validate: check the rows first (see :func:`validate_pairs`).

    Raises:
        InputError: a bad row (named by its 1-based number and field).
        UsageError: an unknown style or prompt mode.
    """
    _check_option("style", style, ("standard", "conversational"))
    _check_option("prompt", prompt, ("explicit", "implicit"))
    _check_option("provenance", provenance, ("keep", "drop"))
    ptext, is_transcript = render_prompts(pairs.column("prompt"))
    if validate:
        error = find_bad_pair(pairs, ptext)
        if error is not None:
            raise error
    cols: dict[str, Any] = {}
    if style == "conversational":
        if prompt == "explicit":
            cols["prompt"] = pairs.column("prompt").cast(MESSAGES_TYPE)
            cols["chosen"] = _assistant_turns(pairs.column("chosen"))
            cols["rejected"] = _assistant_turns(pairs.column("rejected"))
        else:
            cols["chosen"] = _prompt_plus(pairs.column("prompt"), pairs.column("chosen"))
            cols["rejected"] = _prompt_plus(pairs.column("prompt"), pairs.column("rejected"))
    else:
        if prompt == "implicit":
            ptext, is_transcript = render_prompts(pairs.column("prompt"), transcript=True)
        chosen = completion_with_space(pairs.column("chosen").combine_chunks(), is_transcript)
        rejected = completion_with_space(pairs.column("rejected").combine_chunks(), is_transcript)
        if prompt == "explicit":
            cols["prompt"], cols["chosen"], cols["rejected"] = ptext, chosen, rejected
        else:
            cols["chosen"] = pc.binary_join_element_wise(ptext, chosen, "")
            cols["rejected"] = pc.binary_join_element_wise(ptext, rejected, "")
    if margin:
        cols["margin"] = _margin_column(pairs)
    cols.update(_provenance(pairs, provenance))
    return pa.table(cols)


def _margin_column(pairs: pa.Table) -> pa.ChunkedArray:
    m = pairs.column("margin")
    if m.null_count:
        row = pc.index(pc.is_null(m), True).as_py() + 1
        rule = pairs.column("rule")[row - 1].as_py() if "rule" in pairs.column_names else None
        raise InputError(
            f"row {row}, field 'margin': the pair has no margin (rule {rule!r} gives none). "
            "Export without --margin, or derive with rules that give margins.",
            line=row,
            field="margin",
        )
    return m.cast(pa.float64())


def to_trl_unpaired(
    unpaired: pa.Table,
    *,
    style: Style = "standard",
    provenance: Provenance = "keep",
    validate: bool = True,
) -> pa.Table:
    """Return unpaired rows (``UNPAIRED_SCHEMA``) as a TRL unpaired (KTO) table.

    Raises:
        InputError: a bad row (named by its 1-based number and field).
    """
    _check_option("style", style, ("standard", "conversational"))
    _check_option("provenance", provenance, ("keep", "drop"))
    if validate:
        validate_unpaired(unpaired)
    cols: dict[str, Any] = {}
    if style == "conversational":
        cols["prompt"] = unpaired.column("prompt").cast(MESSAGES_TYPE)
        cols["completion"] = _assistant_turns(unpaired.column("completion"))
    else:
        cols["prompt"], cols["completion"] = _standard_texts(unpaired.column("prompt"),
                                                             unpaired.column("completion"))
    cols["label"] = unpaired.column("label")
    cols.update(_provenance(unpaired, provenance))
    return pa.table(cols)


def _check_option(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise UsageError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.",
                         field=name, value=value)


# --- writing ----------------------------------------------------------------------------


def _load_example(kind: str, file_format: str, out: Path, splits: Sequence[str]) -> str:
    if file_format == "hf":
        load = f'from datasets import load_from_disk\n\nds = load_from_disk("{out}")'
    else:
        builder = "parquet" if file_format == "parquet" else "json"
        files = ", ".join(f'"{s}": "{out}/{s}/data.{file_format}"' for s in splits)
        load = f'from datasets import load_dataset\n\nds = load_dataset("{builder}", data_files={{{files}}})'
    trainer = {
        "trl-preference": "DPOTrainer / RewardTrainer",
        "trl-unpaired": "KTOTrainer",
        "tokenized": "RewardTrainer (pre-tokenized: chosen_ids / rejected_ids)",
    }.get(kind, "your trainer")
    return (
        f"{load}\n\n# then, e.g.:\n# from trl import {trainer.split(' ')[0]}\n"
        f'# trainer = {trainer.split(" ")[0]}(model=..., train_dataset=ds["train"], ...)'
    )


def _export(
    rows: pa.Table,
    convert: Any,
    out_dir: str | Path,
    *,
    kind: str,
    format: FileFormat,
    options: Mapping[str, Any],
    overwrite: bool,
    push_to_hub: str | None,
    title: str | None,
    derive_counts: Mapping[str, int] | None,
    extras: Mapping[str, pa.Table] | None,
) -> ExportResult:
    out = Path(out_dir)
    if rows.num_rows == 0:
        raise UsageError("nothing to export: the table has no rows. Check the derive counts "
                         "(ties dropped, both-bad, equal scores) and the input.")
    # convert (and validate) the whole table first, so an error names the row of ``rows``
    converted = convert(rows)
    if "split" in rows.column_names and "split" not in converted.column_names:
        converted = converted.append_column("split", rows.column("split"))
    splits = {name: t.drop_columns(["split"]) for name, t in split_tables(converted).items()}
    extra_tables = {name: split_tables(t) for name, t in (extras or {}).items() if t.num_rows}
    first = next(iter(splits.values()))
    info = CardInfo(
        title=title or f"preflab {kind} export",
        export_format=kind,
        file_format=format,
        split_counts={k: v.num_rows for k, v in splits.items()},
        columns=first.column_names,
        rules=summarize_rules(rows),
        sources=summarize_sources(rows),
        options=dict(options),
        derive_counts=dict(derive_counts or {}),
        load_example=_load_example(kind, format, out, list(splits)),
        extras={n: {k: v.num_rows for k, v in t.items()} for n, t in extra_tables.items()},
    )
    files = write_export(
        splits,
        out,
        format=format,
        card=lambda f: render_dataset_card(info, f),
        extras=extra_tables,
        overwrite=overwrite,
        push_to_hub=push_to_hub,
    )
    return ExportResult(out, dict(info.split_counts), files)


def write_trl_preference(
    pairs: pa.Table,
    out_dir: str | Path,
    *,
    style: Style = "standard",
    prompt: PromptMode = "explicit",
    margin: bool = False,
    format: FileFormat = "parquet",
    provenance: Provenance = "keep",
    overwrite: bool = False,
    push_to_hub: str | None = None,
    title: str | None = None,
    derive_counts: Mapping[str, int] | None = None,
    extras: Mapping[str, pa.Table] | None = None,
) -> ExportResult:
    """Write pairs as a TRL preference dataset: one folder per split and a dataset card.

    Args:
        pairs: derived pairs (``PAIR_SCHEMA``); the ``split`` column picks the folders.
        out_dir: the export folder (must not exist unless ``overwrite``).
        style, prompt, margin, provenance: see :func:`to_trl_preference`.
        format: ``parquet``, ``jsonl`` or ``hf`` (``datasets`` on disk).
        overwrite: replace an existing folder.
        push_to_hub: with ``format="hf"``, also push to this Hub repository id.
        title: the card's title.
        derive_counts: the derive step's counts, shown on the card.
        extras: side tables (e.g. ``{"ties": ties}``) written under their own folder.

    Returns:
        An :class:`ExportResult`.

    Raises:
        InputError: a bad row; nothing is written.
        UsageError: bad options or an existing folder.
    """
    return _export(
        pairs,
        lambda t: to_trl_preference(t, style=style, prompt=prompt, margin=margin, provenance=provenance),
        out_dir,
        kind="trl-preference",
        format=format,
        options={"style": style, "prompt": prompt, "margin": margin, "provenance": provenance},
        overwrite=overwrite,
        push_to_hub=push_to_hub,
        title=title,
        derive_counts=derive_counts,
        extras=extras,
    )


def write_trl_unpaired(
    unpaired: pa.Table,
    out_dir: str | Path,
    *,
    style: Style = "standard",
    format: FileFormat = "parquet",
    provenance: Provenance = "keep",
    overwrite: bool = False,
    push_to_hub: str | None = None,
    title: str | None = None,
    derive_counts: Mapping[str, int] | None = None,
) -> ExportResult:
    """Write unpaired rows as a TRL unpaired (KTO) dataset; see :func:`write_trl_preference`."""
    return _export(
        unpaired,
        lambda t: to_trl_unpaired(t, style=style, provenance=provenance),
        out_dir,
        kind="trl-unpaired",
        format=format,
        options={"style": style, "provenance": provenance},
        overwrite=overwrite,
        push_to_hub=push_to_hub,
        title=title,
        derive_counts=derive_counts,
        extras=None,
    )


# --- tokenized reward data --------------------------------------------------------------


def _load_tokenizer(tokenizer: Any) -> Any:
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise DependencyError(
            "the tokenized export needs transformers: `pip install 'preflab[trl]'`."
        ) from exc
    if isinstance(tokenizer, str | Path):
        return transformers.AutoTokenizer.from_pretrained(str(tokenizer))
    return tokenizer


def tokenize_reward_pairs(
    pairs: pa.Table,
    tokenizer: Any,
    *,
    style: Style = "conversational",
    margin: bool = False,
    max_length: int | None = None,
    layout: TokenLayout = "both",
    provenance: Provenance = "keep",
) -> tuple[pa.Table, int]:
    """Return pairs tokenized for reward-model training and the number dropped as too long.

    ``prompt + chosen`` and ``prompt + rejected`` are tokenized the way TRL's RewardTrainer
    does it: conversational pairs through the tokenizer's chat template, standard pairs as
    text with the EOS token appended. Rows longer than ``max_length`` tokens are dropped (as
    RewardTrainer filters them), never cut.

    Args:
        pairs: derived pairs (``PAIR_SCHEMA``).
        tokenizer: a ``transformers`` tokenizer, or a local path / name to load one.
        style: ``conversational`` needs a tokenizer with a chat template.
        margin: add the ``margin`` column.
        max_length: drop rows with more tokens than this.
        layout: ``trl`` (``chosen_ids``/``rejected_ids``), ``legacy`` (``input_ids_chosen``,
            ``attention_mask_chosen``, ``input_ids_rejected``, ``attention_mask_rejected``)
            or ``both``.
        provenance: keep or drop the provenance columns.

    Returns:
        The token table (with the pairs' ``split`` column last, which the export turns into
        folders) and the number of rows dropped as too long.

    Raises:
        DependencyError: transformers is missing.
        UsageError: a conversational export with a tokenizer that has no chat template.
    """
    _check_option("layout", layout, ("both", "trl", "legacy"))
    validate_pairs(pairs)
    tok = _load_tokenizer(tokenizer)
    prompts = pairs.column("prompt").to_pylist()
    sides: dict[str, list[list[int]]] = {}
    for side in ("chosen", "rejected"):
        texts = pairs.column(side).to_pylist()
        if style == "conversational":
            if not getattr(tok, "chat_template", None):
                raise UsageError(
                    "this tokenizer has no chat template; use style='standard' or a tokenizer "
                    "with a chat template.",
                    field="style",
                )
            chats = [p + [{"role": "assistant", "content": t}] for p, t in zip(prompts, texts, strict=True)]
            ids = tok.apply_chat_template(chats, tokenize=True, return_dict=True)["input_ids"]
        else:
            eos = tok.eos_token or ""
            ptext, completion = _standard_texts(pairs.column("prompt"), pairs.column(side))
            full = pc.binary_join_element_wise(ptext, completion, "").to_pylist()
            ids = tok([s if not eos or s.endswith(eos) else s + eos for s in full])["input_ids"]
        sides[side] = [list(x) for x in ids]
    keep = np.ones(pairs.num_rows, dtype=bool)
    if max_length is not None:
        keep = np.array([len(c) <= max_length and len(r) <= max_length
                         for c, r in zip(sides["chosen"], sides["rejected"], strict=True)], dtype=bool)
    idx = np.flatnonzero(keep)
    ids_type = pa.list_(pa.int32())
    cols: dict[str, Any] = {}
    chosen = pa.array([sides["chosen"][i] for i in idx], ids_type)
    rejected = pa.array([sides["rejected"][i] for i in idx], ids_type)
    if layout in ("trl", "both"):
        cols["chosen_ids"] = chosen
        cols["rejected_ids"] = rejected
    if layout in ("legacy", "both"):
        cols["input_ids_chosen"] = chosen
        cols["attention_mask_chosen"] = pa.array([[1] * len(sides["chosen"][i]) for i in idx], pa.list_(pa.int8()))
        cols["input_ids_rejected"] = rejected
        cols["attention_mask_rejected"] = pa.array([[1] * len(sides["rejected"][i]) for i in idx], pa.list_(pa.int8()))
    kept = pairs.take(pa.array(idx))
    if margin:
        cols["margin"] = _margin_column(kept)
    cols.update(_provenance(kept, provenance))
    if "split" in kept.column_names:
        cols["split"] = kept.column("split")
    return pa.table(cols), int((~keep).sum())


def write_reward_tokenized(
    pairs: pa.Table,
    out_dir: str | Path,
    tokenizer: Any,
    *,
    style: Style = "conversational",
    margin: bool = False,
    max_length: int | None = None,
    layout: TokenLayout = "both",
    format: FileFormat = "parquet",
    provenance: Provenance = "keep",
    overwrite: bool = False,
    title: str | None = None,
    derive_counts: Mapping[str, int] | None = None,
) -> ExportResult:
    """Write a tokenized reward-model dataset (one folder per split, card beside).

    See :func:`tokenize_reward_pairs` for the columns and options.
    """
    tok = _load_tokenizer(tokenizer)  # once: tokenize_reward_pairs passes a loaded one through
    table, dropped = tokenize_reward_pairs(
        pairs, tok, style=style, margin=margin, max_length=max_length, layout=layout,
        provenance=provenance,
    )
    name = getattr(tok, "name_or_path", None) or "local tokenizer"
    result = _export(
        table,
        lambda t: t,
        out_dir,
        kind="tokenized",
        format=format,
        options={"tokenizer": str(name), "style": style, "margin": margin,
                 "max_length": max_length, "layout": layout, "dropped_too_long": dropped},
        overwrite=overwrite,
        push_to_hub=None,
        title=title,
        derive_counts=derive_counts,
        extras=None,
    )
    result.dropped["too_long"] = dropped
    return result
