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

Standard (plain text) prompts follow one convention per export (``prompt_text``, issue 18):
``transcript`` (default) writes every prompt — one user message or a whole chat — as an
Anthropic HH-RLHF-style transcript, the layout of Bai et al. 2022's data
(``"\\n\\nHuman: …\\n\\nAssistant: …\\n\\nHuman: …\\n\\nAssistant:"``);
``plain`` writes the user's message alone (prompts of one user message only). Completions
start with a space either way, so ``prompt + chosen`` reads as one text (the full HH transcript
with ``transcript``).

Provenance columns (``prompt_id``, ``rule``, ``judgment_ids``…) are kept unless
``provenance="drop"``; TRL's trainers ignore columns they do not use.

Before anything is written every row is checked (:mod:`preflab.formats.trl_rows`), and rows the
format cannot represent follow ``on_bad_row`` (:mod:`preflab.formats.row_policy`): ``error``
raises an :class:`~preflab.errors.ExportRowError` naming the pair, its record ids and the input
file and line; ``skip`` leaves them out; ``keep`` writes those the format can hold. Skipped,
kept and noted rows are counted by reason in :class:`RowReport`, on the card and in the result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from preflab.errors import DependencyError, UsageError
from preflab.formats.bad_rows import (
    Policy,
    PromptTextMode,
    RowKind,
    RowReport,
    check_rows,
    validate_pairs,
    validate_unpaired,
)
from preflab.formats.card import CardInfo, render_dataset_card, summarize_rules, summarize_sources
from preflab.formats.row_policy import OnBadRow, PromptText
from preflab.formats.trl_rows import _Prompts, completion_with_space, render_prompts
from preflab.formats.writers import FileFormat, split_tables, write_export
from preflab.records import MESSAGES_TYPE
from preflab.records.sufficiency import assess_sufficiency

__all__ = [
    "PROVENANCE_COLUMNS",
    "ExportResult",
    "RowReport",
    "check_rows",
    "to_trl_preference",
    "to_trl_unpaired",
    "tokenize_reward_pairs",
    "validate_pairs",
    "validate_unpaired",
    "write_reward_tokenized",
    "write_rows",
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
    """What an export wrote: the folder, rows per split, the files and what was left out."""

    out_dir: Path
    split_counts: dict[str, int]
    files: dict[str, str]
    dropped: dict[str, int] = field(default_factory=dict)
    rows: RowReport = field(default_factory=RowReport)
    sufficiency: dict[str, Any] = field(default_factory=dict)


def _check_option(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise UsageError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.",
                         field=name, value=value)


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


def _prompt_texts(prompt: pa.ChunkedArray, prompt_text: str) -> pa.Array:
    """Return every prompt as text by one convention (``transcript`` or ``plain``)."""
    if prompt_text == "plain":
        return _Prompts(prompt).first_content()
    return render_prompts(prompt, transcript=True)[0]


def _standard_texts(prompt: pa.ChunkedArray, texts: pa.ChunkedArray, prompt_text: str) -> tuple[pa.Array, pa.Array]:
    return _prompt_texts(prompt, prompt_text), completion_with_space(texts.combine_chunks())


def _provenance(table: pa.Table, provenance: Provenance) -> dict[str, pa.ChunkedArray]:
    if provenance == "drop":
        return {}
    return {c: table.column(c) for c in PROVENANCE_COLUMNS if c in table.column_names}


def _preference_columns(pairs: pa.Table, style: str, prompt: str, margin: bool, provenance: Provenance,
                        prompt_text: str) -> pa.Table:
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
        ptext = _prompt_texts(pairs.column("prompt"), prompt_text)
        chosen = completion_with_space(pairs.column("chosen").combine_chunks())
        rejected = completion_with_space(pairs.column("rejected").combine_chunks())
        if prompt == "explicit":
            cols["prompt"], cols["chosen"], cols["rejected"] = ptext, chosen, rejected
        else:
            cols["chosen"] = pc.binary_join_element_wise(ptext, chosen, "")
            cols["rejected"] = pc.binary_join_element_wise(ptext, rejected, "")
    if margin:
        cols["margin"] = pairs.column("margin").cast(pa.float64())
    cols.update(_provenance(pairs, provenance))
    return pa.table(cols)


def _convert_preference(pairs: pa.Table, *, style: Style, prompt: PromptMode, margin: bool,
                        provenance: Provenance, validate: bool, on_bad_row: Policy | OnBadRow,
                        prompt_text: PromptTextMode | PromptText,
                        judgments: pa.Table | None) -> tuple[pa.Table, pa.Table, RowReport]:
    _check_option("style", style, ("standard", "conversational"))
    _check_option("prompt", prompt, ("explicit", "implicit"))
    _check_option("provenance", provenance, ("keep", "drop"))
    text_mode = str(prompt_text) if style == "standard" else "transcript"
    if validate:
        kept, report = check_rows(pairs, kind="pairs", on_bad_row=on_bad_row, prompt_text=text_mode,
                                  margin=margin, judgments=judgments)
    else:
        kept, report = pairs, RowReport(policy="unchecked", rows_in=pairs.num_rows, rows_out=pairs.num_rows)
    return _preference_columns(kept, style, prompt, margin, provenance, text_mode), kept, report


def to_trl_preference(
    pairs: pa.Table,
    *,
    style: Style = "standard",
    prompt: PromptMode = "explicit",
    margin: bool = False,
    provenance: Provenance = "keep",
    validate: bool = True,
    on_bad_row: Policy | OnBadRow = "error",
    prompt_text: PromptTextMode | PromptText = "transcript",
    judgments: pa.Table | None = None,
) -> pa.Table:
    """Return ``pairs`` (``PAIR_SCHEMA``) as a TRL preference table.

    Args:
        pairs: derived pairs.
        style: ``standard`` (text) or ``conversational`` (lists of messages).
        prompt: ``explicit`` (a ``prompt`` column) or ``implicit`` (prompt inside both sides).
        margin: add the ``margin`` column (RewardTrainer); pairs without one are bad rows.
        provenance: keep or drop the provenance columns.
        validate: check the rows first (see :func:`check_rows`).
        on_bad_row: ``error``, ``skip`` or ``keep`` (see :mod:`preflab.formats.row_policy`).
        prompt_text: standard style only: ``transcript`` (every prompt an HH transcript) or
            ``plain`` (the user's message alone; one-message prompts only).
        judgments: the judgments behind the pairs, to name a bad row's input file and line.

    Raises:
        ExportRowError: a bad row, with ``on_bad_row="error"``.
        UsageError: an unknown style, prompt mode or policy.

    >>> from preflab.records import Message, Pair, make_prompt_id, records_to_table
    >>> msgs = [Message(role="user", content="Capital of France?")]
    >>> t = records_to_table([Pair(prompt_id=make_prompt_id(msgs), prompt=msgs, chosen="Paris.",
    ...                            rejected="Lyon.", chosen_id="r_1", rejected_id="r_2",
    ...                            rule="pairwise_likert")])
    >>> to_trl_preference(t, provenance="drop").to_pylist()
    [{'prompt': '\\n\\nHuman: Capital of France?\\n\\nAssistant:', 'chosen': ' Paris.', 'rejected': ' Lyon.'}]
    """
    return _convert_preference(pairs, style=style, prompt=prompt, margin=margin, provenance=provenance,
                               validate=validate, on_bad_row=on_bad_row, prompt_text=prompt_text,
                               judgments=judgments)[0]


def _unpaired_columns(rows: pa.Table, style: str, provenance: Provenance, prompt_text: str) -> pa.Table:
    cols: dict[str, Any] = {}
    if style == "conversational":
        cols["prompt"] = rows.column("prompt").cast(MESSAGES_TYPE)
        cols["completion"] = _assistant_turns(rows.column("completion"))
    else:
        cols["prompt"], cols["completion"] = _standard_texts(rows.column("prompt"), rows.column("completion"),
                                                             prompt_text)
    cols["label"] = rows.column("label")
    cols.update(_provenance(rows, provenance))
    return pa.table(cols)


def _convert_unpaired(unpaired: pa.Table, *, style: Style, provenance: Provenance, validate: bool,
                      on_bad_row: Policy | OnBadRow, prompt_text: PromptTextMode | PromptText,
                      judgments: pa.Table | None) -> tuple[pa.Table, pa.Table, RowReport]:
    _check_option("style", style, ("standard", "conversational"))
    _check_option("provenance", provenance, ("keep", "drop"))
    text_mode = str(prompt_text) if style == "standard" else "transcript"
    if validate:
        kept, report = check_rows(unpaired, kind="unpaired", on_bad_row=on_bad_row, prompt_text=text_mode,
                                  judgments=judgments)
    else:
        kept, report = unpaired, RowReport(policy="unchecked", rows_in=unpaired.num_rows,
                                           rows_out=unpaired.num_rows)
    return _unpaired_columns(kept, style, provenance, text_mode), kept, report


def to_trl_unpaired(
    unpaired: pa.Table,
    *,
    style: Style = "standard",
    provenance: Provenance = "keep",
    validate: bool = True,
    on_bad_row: Policy | OnBadRow = "error",
    prompt_text: PromptTextMode | PromptText = "transcript",
    judgments: pa.Table | None = None,
) -> pa.Table:
    """Return unpaired rows (``UNPAIRED_SCHEMA``) as a TRL unpaired (KTO) table.

    The options are those of :func:`to_trl_preference`.

    Raises:
        ExportRowError: a bad row, with ``on_bad_row="error"``.
    """
    return _convert_unpaired(unpaired, style=style, provenance=provenance, validate=validate,
                             on_bad_row=on_bad_row, prompt_text=prompt_text, judgments=judgments)[0]


# --- writing ----------------------------------------------------------------------------

_TRAINERS = {
    "trl-preference": ("DPOTrainer", "RewardTrainer"),
    "trl-unpaired": ("KTOTrainer",),
    "tokenized": ("RewardTrainer",),
}


def _training_notes(kind: str, options: Mapping[str, Any], rows: pa.Table) -> list[str]:
    """Return, in words, which TRL trainer the export is for and with which arguments."""
    style = options.get("style")
    out: list[str] = []
    splits = (set(pc.unique(pc.fill_null(rows.column("split"), "train")).to_pylist())
              if "split" in rows.column_names else set())
    eval_note = "`eval_dataset=ds[\"test\"]`" if "test" in splits else "an eval split of your own"
    if kind == "trl-preference":
        out.append(f"`DPOTrainer(model=…, args=DPOConfig(…), train_dataset=ds[\"train\"], eval_dataset=…)` "
                   f"(also ORPO/CPO); eval: {eval_note}.")
        out.append("`RewardTrainer(model=…, args=RewardConfig(…), train_dataset=ds[\"train\"])`"
                   + (" — the `margin` column is used by its loss." if options.get("margin") else
                      "; export with `--margin` to give it the `margin` column."))
        if options.get("prompt") == "implicit":
            out.append("Implicit prompt: the trainers recover it with `trl.data_utils.maybe_extract_prompt` "
                       "(the longest common start of chosen and rejected, which also takes any words "
                       "the two answers share at their start).")
    elif kind == "trl-unpaired":
        labels = rows.column("label") if "label" in rows.column_names else pa.array([], pa.bool_())
        good = int(pc.sum(labels).as_py() or 0)
        bad = len(labels) - good
        out.append(f"`KTOTrainer(model=…, args=KTOConfig(…), train_dataset=ds[\"train\"])`; {good:,} desirable "
                   f"and {bad:,} undesirable rows in all: when they differ, set `desirable_weight` / "
                   "`undesirable_weight` in `KTOConfig` as KTOTrainer's warning recommends.")
    elif kind == "tokenized":
        out.append("`RewardTrainer(model=…, args=RewardConfig(…), train_dataset=ds[\"train\"])` with the "
                   f"same tokenizer ({options.get('tokenizer')}); the rows are already tokenized "
                   "(`chosen_ids` / `rejected_ids`).")
    else:
        out.append("These are preflab's own derived rows (every provenance column): re-export them with "
                   "`--format trl-preference` or `trl-unpaired` for TRL's trainers.")
    if style == "conversational":
        out.append("Conversational rows: the trainer applies the tokenizer's chat template, so give it a "
                   "tokenizer that has one (`processing_class=tokenizer`).")
    elif style == "standard":
        out.append("Standard (text) rows: the trainer tokenizes `prompt` and `prompt + completion` as they "
                   "are; no chat template is applied.")
    return out


def _prompt_convention(kind: str, options: Mapping[str, Any]) -> str:
    style = options.get("style")
    if kind not in _TRAINERS:
        return "Prompts are lists of `{role, content}` messages (preflab's records), ending with a user turn."
    if style == "conversational":
        return ("Conversational: every prompt is a list of `{role, content}` messages ending with a user "
                "turn; every answer is one `assistant` message.")
    if options.get("prompt_text") == "plain":
        return ("Standard, plain: every prompt is the user's message as written (every prompt here is one "
                "user message); every completion starts with one space, so `prompt + chosen` reads "
                "\"question answer\".")
    return ("Standard, transcript: every prompt — one user message or a whole chat — is an Anthropic "
            "HH-RLHF transcript, `\\n\\nHuman: …\\n\\nAssistant: …\\n\\nHuman: …\\n\\nAssistant:` "
            "(`\\n\\nSystem: …` first when there is a system message); every completion starts with one "
            "space, so `prompt + chosen` is the whole transcript.")


def _export(
    rows: pa.Table,
    convert: Callable[[pa.Table], tuple[pa.Table, pa.Table, RowReport]],
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
    unit: str = "pairs",
    left_out: Mapping[str, int] | None = None,
) -> ExportResult:
    out = Path(out_dir)
    if rows.num_rows == 0:
        raise UsageError("nothing to export: the table has no rows. Check the derive counts "
                         "(ties dropped, both-bad, equal scores) and the input.")
    # convert (and check) the whole table first, so an error names the row of ``rows``
    converted, kept, report = convert(rows)
    for reason, n in (left_out or {}).items():  # left out by the caller before the checks
        if n:
            report.skipped[reason] = report.skipped.get(reason, 0) + n
            report.rows_in += n
    if converted.num_rows == 0:
        raise UsageError(f"nothing to export: all {rows.num_rows:,} rows were left out by the row checks "
                         f"({', '.join(f'{k} {v:,}' for k, v in report.skipped.items())}).")
    if "split" in kept.column_names and "split" not in converted.column_names:
        converted = converted.append_column("split", kept.column("split"))
    splits = {name: t.drop_columns(["split"]) for name, t in split_tables(converted).items()}
    extra_tables = {name: split_tables(t) for name, t in (extras or {}).items() if t.num_rows}
    first = next(iter(splits.values()))
    sufficiency = assess_sufficiency(kept, unit=unit) if unit != "ties" else {}
    info = CardInfo(
        title=title or f"preflab {kind} export",
        export_format=kind,
        file_format=format,
        split_counts={k: v.num_rows for k, v in splits.items()},
        columns=first.column_names,
        rules=summarize_rules(kept),
        sources=summarize_sources(kept),
        options=dict(options),
        derive_counts=dict(derive_counts or {}),
        extras={n: {k: v.num_rows for k, v in t.items()} for n, t in extra_tables.items()},
        folder=str(out.resolve()),
        rows=report.to_dict(),
        prompt_convention=_prompt_convention(kind, options),
        training=_training_notes(kind, options, kept),
        sufficiency=sufficiency,
    )
    files = write_export(
        splits,
        out,
        format=format,
        card=lambda f, digest: render_dataset_card(info, f, digest),
        extras=extra_tables,
        overwrite=overwrite,
        push_to_hub=push_to_hub,
    )
    return ExportResult(out, dict(info.split_counts), files, rows=report, sufficiency=sufficiency)


def write_trl_preference(
    pairs: pa.Table,
    out_dir: str | Path,
    *,
    style: Style = "standard",
    prompt: PromptMode = "explicit",
    margin: bool = False,
    format: FileFormat = "parquet",
    provenance: Provenance = "keep",
    on_bad_row: Policy | OnBadRow = "error",
    prompt_text: PromptTextMode | PromptText = "transcript",
    judgments: pa.Table | None = None,
    overwrite: bool = False,
    push_to_hub: str | None = None,
    title: str | None = None,
    derive_counts: Mapping[str, int] | None = None,
    extras: Mapping[str, pa.Table] | None = None,
    left_out: Mapping[str, int] | None = None,
) -> ExportResult:
    """Write pairs as a TRL preference dataset: one folder per split and a dataset card.

    Args:
        pairs: derived pairs (``PAIR_SCHEMA``); the ``split`` column picks the folders.
        out_dir: the export folder (must not exist unless ``overwrite``).
        style, prompt, margin, provenance, on_bad_row, prompt_text, judgments: see
            :func:`to_trl_preference`.
        format: ``parquet``, ``jsonl`` or ``hf`` (``datasets`` on disk).
        overwrite: replace an existing folder.
        push_to_hub: with ``format="hf"``, also push to this Hub repository id.
        title: the card's title.
        derive_counts: the derive step's counts, shown on the card.
        extras: side tables (e.g. ``{"ties": ties}``) written under their own folder.
        left_out: pairs the caller left out before the checks, by reason (e.g.
            ``{"likely_flipped": 3}`` from :func:`preflab.audit.flipped.drop_likely_flipped`);
            counted in the row report's ``skipped`` and on the card.

    Returns:
        An :class:`ExportResult` (with the :class:`RowReport` and the sufficiency figures).

    Raises:
        ExportRowError: a bad row with ``on_bad_row="error"``; nothing is written.
        UsageError: bad options, an existing folder, or no row left to write.
    """
    return _export(
        pairs,
        lambda t: _convert_preference(t, style=style, prompt=prompt, margin=margin, provenance=provenance,
                                      validate=True, on_bad_row=on_bad_row, prompt_text=prompt_text,
                                      judgments=judgments),
        out_dir,
        kind="trl-preference",
        format=format,
        options={"style": style, "prompt": prompt, "margin": margin, "provenance": provenance,
                 "on_bad_row": str(on_bad_row),
                 **({"prompt_text": str(prompt_text)} if style == "standard" else {})},
        overwrite=overwrite,
        push_to_hub=push_to_hub,
        title=title,
        derive_counts=derive_counts,
        extras=extras,
        left_out=left_out,
    )


def write_trl_unpaired(
    unpaired: pa.Table,
    out_dir: str | Path,
    *,
    style: Style = "standard",
    format: FileFormat = "parquet",
    provenance: Provenance = "keep",
    on_bad_row: Policy | OnBadRow = "error",
    prompt_text: PromptTextMode | PromptText = "transcript",
    judgments: pa.Table | None = None,
    overwrite: bool = False,
    push_to_hub: str | None = None,
    title: str | None = None,
    derive_counts: Mapping[str, int] | None = None,
) -> ExportResult:
    """Write unpaired rows as a TRL unpaired (KTO) dataset; see :func:`write_trl_preference`."""
    return _export(
        unpaired,
        lambda t: _convert_unpaired(t, style=style, provenance=provenance, validate=True,
                                    on_bad_row=on_bad_row, prompt_text=prompt_text, judgments=judgments),
        out_dir,
        kind="trl-unpaired",
        format=format,
        options={"style": style, "provenance": provenance, "on_bad_row": str(on_bad_row),
                 **({"prompt_text": str(prompt_text)} if style == "standard" else {})},
        overwrite=overwrite,
        push_to_hub=push_to_hub,
        title=title,
        derive_counts=derive_counts,
        extras=None,
        unit="unpaired rows",
    )


def write_rows(
    rows: pa.Table,
    out_dir: str | Path,
    *,
    kind: RowKind | Literal["ties"] = "pairs",
    format: FileFormat = "parquet",
    on_bad_row: Policy | OnBadRow = "error",
    judgments: pa.Table | None = None,
    overwrite: bool = False,
    push_to_hub: str | None = None,
    title: str | None = None,
    derive_counts: Mapping[str, int] | None = None,
    left_out: Mapping[str, int] | None = None,
) -> ExportResult:
    """Write preflab's own derived rows (every provenance column), one folder per split, with a card.

    Pairs and unpaired rows pass the same checks as the TRL exports; preflab's row format holds
    every row, so ``keep`` writes them all. Ties are side data and are not checked. ``left_out``
    counts rows the caller left out before, by reason (see :func:`write_trl_preference`).

    Raises:
        ExportRowError: a bad row with ``on_bad_row="error"``; nothing is written.
    """

    def convert(t: pa.Table) -> tuple[pa.Table, pa.Table, RowReport]:
        if kind == "ties":
            return t, t, RowReport(policy="unchecked", rows_in=t.num_rows, rows_out=t.num_rows)
        kept, report = check_rows(t, kind=kind, on_bad_row=on_bad_row, keepable=lambda r: True,
                                  judgments=judgments)
        return kept, kept, report

    return _export(
        rows, convert, out_dir, kind=f"{kind} ({format})", format=format,
        options={"rows": kind, "on_bad_row": str(on_bad_row)}, overwrite=overwrite,
        push_to_hub=push_to_hub, title=title, derive_counts=derive_counts, extras=None,
        unit="pairs" if kind == "pairs" else "unpaired rows" if kind == "unpaired" else "ties",
        left_out=left_out,
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


def _tokenize_checked(
    pairs: pa.Table,
    tokenizer: Any,
    *,
    style: Style,
    margin: bool,
    max_length: int | None,
    layout: TokenLayout,
    provenance: Provenance,
    prompt_text: str,
) -> tuple[pa.Table, np.ndarray]:
    """Return the token table of checked pairs and the mask of rows within ``max_length``."""
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
            ptext, completion = _standard_texts(pairs.column("prompt"), pairs.column(side), prompt_text)
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
        cols["margin"] = kept.column("margin").cast(pa.float64())
    cols.update(_provenance(kept, provenance))
    if "split" in kept.column_names:
        cols["split"] = kept.column("split")
    return pa.table(cols), keep


def tokenize_reward_pairs(
    pairs: pa.Table,
    tokenizer: Any,
    *,
    style: Style = "conversational",
    margin: bool = False,
    max_length: int | None = None,
    layout: TokenLayout = "both",
    provenance: Provenance = "keep",
    on_bad_row: Policy | OnBadRow = "error",
    prompt_text: PromptTextMode | PromptText = "transcript",
    judgments: pa.Table | None = None,
) -> tuple[pa.Table, int]:
    """Return pairs tokenized for reward-model training and the number dropped as too long.

    ``prompt + chosen`` and ``prompt + rejected`` are tokenized the way TRL's RewardTrainer
    does it: conversational pairs through the tokenizer's chat template, standard pairs as
    text (by the ``prompt_text`` convention) with the EOS token appended. Rows longer than
    ``max_length`` tokens are dropped (as RewardTrainer filters them), never cut.

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
        on_bad_row, prompt_text, judgments: see :func:`to_trl_preference`.

    Returns:
        The token table (with the pairs' ``split`` column last, which the export turns into
        folders) and the number of rows dropped as too long.

    Raises:
        DependencyError: transformers is missing.
        ExportRowError: a bad row, with ``on_bad_row="error"``.
        UsageError: a conversational export with a tokenizer that has no chat template.
    """
    _check_option("layout", layout, ("both", "trl", "legacy"))
    text_mode = str(prompt_text) if style == "standard" else "transcript"
    kept, _ = check_rows(pairs, kind="pairs", on_bad_row=on_bad_row, prompt_text=text_mode, margin=margin,
                         judgments=judgments)
    table, within = _tokenize_checked(kept, tokenizer, style=style, margin=margin, max_length=max_length,
                                      layout=layout, provenance=provenance, prompt_text=text_mode)
    return table, int((~within).sum())


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
    on_bad_row: Policy | OnBadRow = "error",
    prompt_text: PromptTextMode | PromptText = "transcript",
    judgments: pa.Table | None = None,
    overwrite: bool = False,
    title: str | None = None,
    derive_counts: Mapping[str, int] | None = None,
    left_out: Mapping[str, int] | None = None,
) -> ExportResult:
    """Write a tokenized reward-model dataset (one folder per split, card beside).

    See :func:`tokenize_reward_pairs` for the columns and options, :func:`write_trl_preference`
    for ``left_out``.
    """
    _check_option("layout", layout, ("both", "trl", "legacy"))
    tok = _load_tokenizer(tokenizer)  # once: the conversion passes a loaded one through
    name = getattr(tok, "name_or_path", None) or "local tokenizer"
    text_mode = str(prompt_text) if style == "standard" else "transcript"
    too_long = 0

    def convert(t: pa.Table) -> tuple[pa.Table, pa.Table, RowReport]:
        nonlocal too_long
        kept, report = check_rows(t, kind="pairs", on_bad_row=on_bad_row, prompt_text=text_mode, margin=margin,
                                  judgments=judgments)
        table, within = _tokenize_checked(kept, tok, style=style, margin=margin, max_length=max_length,
                                          layout=layout, provenance=provenance, prompt_text=text_mode)
        too_long = int((~within).sum())
        if too_long:  # left out as RewardTrainer would filter them, and counted
            kept = kept.filter(pa.array(within))
            report.skipped["too_long"] = too_long
        report.rows_out = table.num_rows
        return table, kept, report

    result = _export(
        pairs,
        convert,
        out_dir,
        kind="tokenized",
        format=format,
        options={"tokenizer": str(name), "style": style, "margin": margin,
                 "max_length": max_length, "layout": layout, "on_bad_row": str(on_bad_row),
                 **({"prompt_text": text_mode} if style == "standard" else {})},
        overwrite=overwrite,
        push_to_hub=None,
        title=title,
        derive_counts=derive_counts,
        extras=None,
        left_out=left_out,
    )
    result.dropped["too_long"] = too_long
    return result
