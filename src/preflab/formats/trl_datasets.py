"""Reading TRL preference and unpaired datasets (the types of TRL's docs, "Dataset formats").

Preference rows (``trl-preference``), one pairwise judgment (2-point, preferring ``chosen``,
``response_ids`` (chosen, rejected), flagged ``order_unknown``) each:

- standard, explicit prompt: ``{"prompt": str, "chosen": str, "rejected": str}``
- standard, implicit prompt: ``{"chosen": str, "rejected": str}``; the prompt is the longest common
  prefix of the two texts, cut as TRL's ``extract_prompt`` does (before a trailing space)
- conversational, explicit: ``{"prompt": [messages], "chosen": [assistant message],
  "rejected": [assistant message]}``
- conversational, implicit: ``{"chosen": [messages], "rejected": [messages]}``; the prompt is the
  common leading messages, and each side must then hold exactly one assistant message.

Unpaired rows (``trl-unpaired``), one binary judgment each: ``{"prompt", "completion",
"label"}``, standard or conversational (``completion`` a string or one assistant message).

A standard prompt string becomes one ``user`` message. Extra columns (``margin``,
``score_chosen``…) are ignored. Dropped and counted: ``dropped_identical`` (chosen equals
rejected; with an implicit prompt also when the two conversations are the same messages, or
the same text up to surrounding whitespace), ``dropped_no_prompt`` (implicit prompt with nothing
in common).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ORDER_UNKNOWN, ChunkBuilder, two_point
from preflab.formats.driver import read_file
from preflab.formats.fields import RowError, describe, get_bool, get_messages

__all__ = [
    "parse_preference_row",
    "parse_unpaired_row",
    "read_trl_preference",
    "read_trl_unpaired",
]



def _prompt_messages(value: Any, field: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value.strip():
            raise RowError(field, "expected a non-empty prompt, got an empty string", value)
        return [{"role": "user", "content": value}]
    if isinstance(value, list):
        return get_messages(value, field)
    raise RowError(field, f"expected a string or a list of messages, got {describe(value)}", value)


def _single_reply(value: Any, field: str) -> str:
    """Return the text of a completion: a string, or a list with one assistant message."""
    if isinstance(value, str):
        if not value.strip():
            raise RowError(field, "expected a non-empty string, got an empty one", value)
        return value
    if not isinstance(value, list):
        raise RowError(
            field, f"expected a string or a list of messages, got {describe(value)}", value
        )
    messages = get_messages(value, field)
    if len(messages) != 1:
        raise RowError(
            field, f"expected exactly one assistant message, got {len(messages)} messages", value
        )
    if messages[0]["role"] != "assistant":
        raise RowError(
            f"{field}[0].role", f"expected an assistant message, got role {messages[0]['role']!r}"
        )
    if not messages[0]["content"].strip():
        raise RowError(f"{field}[0].content", "the assistant message is empty")
    return messages[0]["content"]


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    if i and i < n and a[i - 1] == " ":  # TRL's extract_prompt leaves the space to the answer
        i -= 1
    return i


def _split_implicit(chosen: Any, rejected: Any) -> tuple[list[dict[str, str]], Any, Any] | None:
    if isinstance(chosen, str) and isinstance(rejected, str):
        i = _common_prefix(chosen, rejected)
        if not chosen[:i].strip():
            return None
        return [{"role": "user", "content": chosen[:i]}], chosen[i:], rejected[i:]
    c = get_messages(chosen, "chosen")
    r = get_messages(rejected, "rejected")
    i = 0
    while i < min(len(c), len(r)) and c[i] == r[i]:
        i += 1
    if i == 0:
        return None
    return c[:i], c[i:], r[i:]


def _nothing_left(value: Any) -> bool:
    """True when an implicit row's side holds nothing after the shared prompt."""
    return not value.strip() if isinstance(value, str) else not value


def parse_preference_row(
    b: ChunkBuilder,
    row: Mapping[str, Any],
    *,
    judge_id: str,
    chosen_model: str | None = None,
    rejected_model: str | None = None,
    shown_first: str | None = None,
) -> None:
    """Add the records of one TRL preference row (explicit or implicit prompt).

    ``shown_first`` (``"chosen"`` or ``"rejected"``, from a mapped column of a generic table)
    puts the response shown first first in ``response_ids``; without it the judgment is flagged
    ``order_unknown`` (TRL rows list chosen first whatever was shown).

    Raises:
        RowError: a missing or malformed ``prompt``, ``chosen`` or ``rejected``.
    """
    for key in ("chosen", "rejected"):
        if row.get(key) is None:
            raise RowError(
                key,
                "missing (expected a string or a list of messages)"
                if key not in row
                else "expected a string or a list of messages, got null",
            )
    if row.get("prompt") is not None:
        prompt = _prompt_messages(row["prompt"], "prompt")
        chosen_v, rejected_v = row["chosen"], row["rejected"]
    else:
        split = _split_implicit(row["chosen"], row["rejected"])
        if split is None:
            b.drop("no_prompt")
            return
        prompt, chosen_v, rejected_v = split
        if _nothing_left(chosen_v) and _nothing_left(rejected_v):
            # chosen equals rejected (up to surrounding whitespace): the documented rule, not an
            # error about the shared messages (issue 18, a real trl-lib/ultrafeedback_binarized row)
            b.drop("identical", "chosen and rejected are the same conversation")
            return
        if prompt[-1]["role"] != "user":
            raise RowError(
                "chosen",
                "the messages shared by chosen and rejected must end with "
                f"a user turn, got role {prompt[-1]['role']!r}",
            )
    chosen = _single_reply(chosen_v, "chosen")
    rejected = _single_reply(rejected_v, "rejected")
    if chosen.strip() == rejected.strip() and chosen_model == rejected_model:
        b.drop("identical")
        return
    prompt_id = b.add_prompt(prompt, field="prompt")
    chosen_id = b.add_response(prompt_id, chosen, field="chosen", model=chosen_model)
    rejected_id = b.add_response(prompt_id, rejected, field="rejected", model=rejected_model)
    if chosen_id == rejected_id:
        b.drop("identical")
        b.rollback_row()
        return
    b.add_judgment(
        prompt_id=prompt_id,
        response_ids=[rejected_id, chosen_id] if shown_first == "rejected" else [chosen_id, rejected_id],
        kind="pairwise",
        judge_id=judge_id,
        pairwise=two_point(chosen_id),
        flags=[] if shown_first in ("chosen", "rejected") else [ORDER_UNKNOWN],
    )


def parse_unpaired_row(
    b: ChunkBuilder, row: Mapping[str, Any], *, judge_id: str, model: str | None = None
) -> None:
    """Add the records of one TRL unpaired row (``prompt``, ``completion``, ``label``).

    Without a ``prompt``, a conversational ``completion`` holding the whole chat is split before
    its last (assistant) message.

    Raises:
        RowError: a missing or malformed ``prompt``, ``completion`` or ``label``.
    """
    if row.get("completion") is None:
        raise RowError(
            "completion",
            "missing (expected a string or a list of messages)"
            if "completion" not in row
            else "expected a string or a list of messages, got null",
        )
    label = get_bool(row, "label")
    completion_v = row["completion"]
    if row.get("prompt") is not None:
        prompt = _prompt_messages(row["prompt"], "prompt")
    elif isinstance(completion_v, list) and len(completion_v) > 1:
        messages = get_messages(completion_v, "completion")
        if messages[-1]["role"] != "assistant":
            raise RowError(
                f"completion[{len(messages) - 1}].role",
                f"expected the last message to be an assistant turn, got {messages[-1]['role']!r}",
            )
        prompt, completion_v = messages[:-1], messages[-1:]
    else:
        raise RowError("prompt", "missing (expected a string or a list of messages)")
    completion = _single_reply(completion_v, "completion")
    prompt_id = b.add_prompt(prompt, field="prompt")
    response_id = b.add_response(prompt_id, completion, field="completion", model=model)
    b.add_judgment(
        prompt_id=prompt_id,
        response_ids=[response_id],
        kind="binary",
        judge_id=judge_id,
        binary={"response_id": response_id, "label": label, "reasons": []},
    )


def _read_trl(
    path: str | Path,
    parse_row: Callable[..., None],
    *,
    format: str,
    chunk_size: int,
    skip_invalid: bool,
    max_problems: int,
    judge_id: str,
) -> Iterator[ImportChunk]:
    def parse(b: ChunkBuilder, row: dict[str, Any]) -> None:
        b.add_judge(judge_id, "imported")
        parse_row(b, row, judge_id=judge_id)

    return read_file(
        path,
        parse,
        format=format,
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )


def read_trl_preference(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    judge_id: str = "trl-preference",
) -> Iterator[ImportChunk]:
    """Yield chunks read from a TRL preference dataset file (JSONL, CSV or Parquet).

    Args:
        path: the file.
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
        judge_id: the imported judge the judgments are attributed to.
    """
    return _read_trl(path, parse_preference_row, format="trl-preference", chunk_size=chunk_size,
                     skip_invalid=skip_invalid, max_problems=max_problems, judge_id=judge_id)


def read_trl_unpaired(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    judge_id: str = "trl-unpaired",
) -> Iterator[ImportChunk]:
    """Yield chunks read from a TRL unpaired (KTO) dataset file (JSONL, CSV or Parquet).

    Args:
        path: the file.
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
        judge_id: the imported judge the judgments are attributed to.
    """
    return _read_trl(path, parse_unpaired_row, format="trl-unpaired", chunk_size=chunk_size,
                     skip_invalid=skip_invalid, max_problems=max_problems, judge_id=judge_id)
