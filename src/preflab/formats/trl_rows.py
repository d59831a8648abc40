"""The row rules of TRL exports: prompts as text, and the checks every row passes before export.

Both work column-wise on Arrow arrays so that a few hundred thousand rows take a second, not
a minute; when a check fails, the first bad row is checked again in Python to build a message
that names the row, the field and the value.

Checks (issue 2, "Export"): prompt roles alternate (an optional system message, then
user/assistant turns ending with a user turn); no message and no completion is empty;
completions hold one assistant turn (no ``"\\n\\nHuman:"`` / ``"\\n\\nAssistant:"`` inside);
a completion does not start with the prompt (the implicit-prompt mistake; only prompts of at
least :data:`MIN_REPEAT_CHARS` characters count, since a short greeting may well be echoed);
chosen differs from rejected after normalization (NFC, line endings, outer whitespace).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from preflab.errors import InputError
from preflab.records import normalize_text

__all__ = [
    "MIN_REPEAT_CHARS",
    "completion_with_space",
    "find_bad_pair",
    "find_bad_unpaired",
    "render_prompt_text",
    "render_prompts",
]

MIN_REPEAT_CHARS = 20
_ROLE_PREFIX = {"system": "\n\nSystem: ", "user": "\n\nHuman: ", "assistant": "\n\nAssistant: "}
_ROLE_CODE = {"user": 0, "assistant": 1, "system": 2}
_MARKERS = ("\n\nHuman:", "\n\nAssistant:")


def _is_transcript(messages: Sequence[Mapping[str, str]]) -> bool:
    return not (len(messages) == 1 and messages[0]["role"] == "user")


def render_prompt_text(messages: Sequence[Mapping[str, str]], *, transcript: bool = False) -> str:
    """Return a prompt as plain text: the user text alone, or a Human/Assistant transcript.

    >>> render_prompt_text([{"role": "user", "content": "Hi"}])
    'Hi'
    >>> render_prompt_text([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
    ...                     {"role": "user", "content": "Joke?"}])
    '\\n\\nHuman: Hi\\n\\nAssistant: Yo\\n\\nHuman: Joke?\\n\\nAssistant:'
    """
    if not transcript and not _is_transcript(messages):
        return messages[0]["content"]
    return "".join(f"{_ROLE_PREFIX[m['role']]}{m['content']}" for m in messages) + "\n\nAssistant:"


# --- column-wise ------------------------------------------------------------------------


class _Prompts:
    """A prompt column taken apart: per-message roles/contents and per-row offsets."""

    def __init__(self, prompt: pa.ChunkedArray | pa.Array) -> None:
        arr = prompt.combine_chunks() if isinstance(prompt, pa.ChunkedArray) else prompt
        self.n = len(arr)
        self.lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = arr.flatten()
        self.roles = flat.field("role")
        self.contents = flat.field("content")
        self.offsets = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=self.offsets[1:])
        self.parent = np.repeat(np.arange(self.n), self.lengths)
        codes = pc.index_in(self.roles, value_set=pa.array(list(_ROLE_CODE)))
        self.codes = pc.fill_null(codes, 3).to_numpy(zero_copy_only=False).astype(np.int64)

    def first(self, values: np.ndarray, empty: Any) -> np.ndarray:
        out = np.full(self.n, empty, dtype=values.dtype)
        has = self.lengths > 0
        out[has] = values[self.offsets[:-1][has]]
        return out

    def first_content(self) -> pa.Array:
        """Return each row's first message content (null for an empty prompt)."""
        idx = np.where(self.lengths > 0, self.offsets[:-1], -1)
        return self.contents.take(pa.array(idx, mask=idx < 0))

    def single_user(self) -> np.ndarray:
        return np.asarray((self.lengths == 1) & (self.first(self.codes, -1) == 0), dtype=bool)

    def bad_rows(self) -> np.ndarray:
        """Return a boolean mask of rows whose prompt breaks a rule."""
        bad = self.lengths == 0
        empty = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(self.contents)), 0), True)
        msg_bad = empty.to_numpy(zero_copy_only=False).astype(bool)
        start = (self.first(self.codes, -1) == 2).astype(np.int64)
        pos = np.arange(len(self.codes)) - self.offsets[:-1][self.parent]
        after = pos - start[self.parent]
        msg_bad |= (after >= 0) & (self.codes != after % 2)
        np.logical_or.at(bad, self.parent[msg_bad], True)
        turns = self.lengths - start
        bad |= (turns <= 0) | (turns % 2 == 0)
        return np.asarray(bad, dtype=bool)


def render_prompts(prompt: pa.ChunkedArray | pa.Array, *, transcript: bool = False) -> tuple[pa.Array, np.ndarray]:
    """Return the text of every prompt (see :func:`render_prompt_text`) and which are transcripts."""
    p = _Prompts(prompt)
    prefix = pa.array([_ROLE_PREFIX[r] for r in _ROLE_CODE] + [None], pa.string()).take(
        pa.array(np.minimum(p.codes, 3))
    )
    parts = pc.binary_join_element_wise(prefix, p.contents, "")
    lists = pa.ListArray.from_arrays(pa.array(p.offsets.astype(np.int32)), parts)
    text = pc.binary_join_element_wise(pc.binary_join(lists, ""), "\n\nAssistant:", "")
    is_transcript = np.ones(p.n, dtype=bool) if transcript else ~p.single_user()
    if not is_transcript.all():
        text = pc.if_else(pa.array(is_transcript), text, p.first_content())
    return text, is_transcript


def completion_with_space(text: pa.ChunkedArray | pa.Array, is_transcript: np.ndarray) -> pa.Array:
    """Return completions with a leading space where the prompt is a transcript."""
    spaced = pc.binary_join_element_wise(" ", text, "")
    out = pc.if_else(pa.array(is_transcript), spaced, text)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def _empty(text: pa.ChunkedArray) -> np.ndarray:
    e = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), True)
    return np.asarray(e.to_numpy(zero_copy_only=False), dtype=bool)


def _has_marker(text: pa.ChunkedArray) -> np.ndarray:
    out = np.zeros(len(text), dtype=bool)
    for m in _MARKERS:
        out |= np.asarray(pc.fill_null(pc.match_substring(text, m), False).to_numpy(zero_copy_only=False), dtype=bool)
    return out


def _repeats(text: pa.ChunkedArray, prompt_text: pa.Array) -> np.ndarray:
    """Return which completions start with their (long enough) prompt text."""
    out = np.zeros(len(text), dtype=bool)
    head_c = pc.utf8_slice_codeunits(pc.utf8_ltrim_whitespace(text), 0, MIN_REPEAT_CHARS)
    stripped = pc.utf8_trim_whitespace(prompt_text)
    head_p = pc.utf8_slice_codeunits(stripped, 0, MIN_REPEAT_CHARS)
    maybe = pc.and_(pc.equal(head_c, head_p), pc.greater_equal(pc.utf8_length(stripped), MIN_REPEAT_CHARS))
    candidates = np.flatnonzero(np.asarray(pc.fill_null(maybe, False).to_numpy(zero_copy_only=False), dtype=bool))
    for i in candidates:  # only rows whose first characters already match
        c, p = text[int(i)].as_py(), stripped[int(i)].as_py()
        out[i] = c.lstrip().startswith(p)
    return out


def _same_text(a: pa.ChunkedArray, b: pa.ChunkedArray) -> np.ndarray:
    """Return where ``a`` and ``b`` are equal after normalization (see ``normalize_text``)."""

    def light(x: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.utf8_trim_whitespace(pc.replace_substring(x, "\r\n", "\n"))

    same = np.asarray(pc.fill_null(pc.equal(light(a), light(b)), False).to_numpy(zero_copy_only=False), dtype=bool)
    # NFC changes nothing in ASCII text; normalize only rows where either side is not ASCII
    ascii_ = pc.and_(pc.string_is_ascii(a), pc.string_is_ascii(b))
    rest = np.flatnonzero(~np.asarray(pc.fill_null(ascii_, True).to_numpy(zero_copy_only=False), dtype=bool) & ~same)
    if len(rest):
        # two different texts already in NFC stay different; normalize only when one is not
        idx = pa.array(rest)
        for i, x, y in zip(rest, a.take(idx).to_pylist(), b.take(idx).to_pylist(), strict=True):
            if x is None or y is None:
                continue
            if unicodedata.is_normalized("NFC", x) and unicodedata.is_normalized("NFC", y):
                continue
            same[i] = normalize_text(x) == normalize_text(y)
    return same


# --- the first bad row, with a message ---------------------------------------------------


def _bad(row: int, field_name: str, what: str, value: Any, prompt_id: str | None) -> InputError:
    where = f"row {row}" + (f" (prompt_id {prompt_id})" if prompt_id else "")
    return InputError(
        f"{where}, field {field_name!r}: {what}. Fix the judgments or drop the row before exporting.",
        line=row, field=field_name, value=value,
    )


def _check_prompt(row: int, messages: Any, pid: str | None) -> None:
    if not messages:
        raise _bad(row, "prompt", "the prompt is empty", messages, pid)
    start = 1 if messages[0]["role"] == "system" else 0
    if start == len(messages):
        raise _bad(row, "prompt", "the prompt has a system message but no user turn", messages, pid)
    for i, m in enumerate(messages):
        content = m["content"]
        if content is None or not content.strip():
            raise _bad(row, f"prompt[{i}].content", f"message {i} ({m['role']}) is empty", content, pid)
        if i < start:
            continue
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if m["role"] != expected:
            raise _bad(row, f"prompt[{i}].role",
                       f"roles must alternate user/assistant; expected {expected!r}, got {m['role']!r}",
                       m["role"], pid)
    if messages[-1]["role"] != "user":
        raise _bad(row, f"prompt[{len(messages) - 1}].role", "the prompt must end with a user turn",
                   messages[-1]["role"], pid)


def _check_completion(row: int, name: str, text: Any, prompt_text: str, pid: str | None) -> None:
    if text is None or not text.strip():
        raise _bad(row, name, "the completion is empty", text, pid)
    p = prompt_text.strip()
    if len(p) >= MIN_REPEAT_CHARS and text.lstrip().startswith(p):
        raise _bad(row, name, "the completion repeats the prompt (use the implicit-prompt option to "
                   "put the prompt inside chosen/rejected)", text[:80], pid)
    for marker in _MARKERS:
        if marker in text:
            raise _bad(row, name, f"the completion holds more than one turn (found {marker.strip()!r}); "
                       "completions must be one assistant turn", text[:80], pid)


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def _row(table: pa.Table, i: int, column: str) -> Any:
    return table.column(column)[i].as_py() if column in table.column_names else None


def find_bad_pair(pairs: pa.Table, prompt_text: pa.Array | None = None) -> InputError | None:
    """Return the error of the first pair that breaks a rule, or None when all pass.

    Args:
        pairs: a table with ``prompt``, ``chosen`` and ``rejected`` columns.
        prompt_text: the prompts rendered by :func:`render_prompts`, if already at hand.
    """
    prompts = _Prompts(pairs.column("prompt"))
    text = prompt_text if prompt_text is not None else render_prompts(pairs.column("prompt"))[0]
    chosen, rejected = pairs.column("chosen"), pairs.column("rejected")
    bad = prompts.bad_rows() | _empty(chosen) | _empty(rejected) | _has_marker(chosen) | _has_marker(rejected)
    bad |= _same_text(chosen, rejected)
    bad |= _repeats(chosen, text) | _repeats(rejected, text)
    i = _first(bad)
    if i is None:
        return None
    messages, pid = _row(pairs, i, "prompt"), _row(pairs, i, "prompt_id")
    c, r = _row(pairs, i, "chosen"), _row(pairs, i, "rejected")
    try:
        _check_prompt(i + 1, messages, pid)
        ptext = render_prompt_text(messages)
        _check_completion(i + 1, "chosen", c, ptext, pid)
        _check_completion(i + 1, "rejected", r, ptext, pid)
        if c == r or normalize_text(c) == normalize_text(r):
            raise _bad(i + 1, "rejected", "chosen and rejected are the same text", r[:80], pid)
    except InputError as exc:
        return exc
    raise AssertionError(f"row {i + 1} failed a column check but passed the row check")  # pragma: no cover


def find_bad_unpaired(unpaired: pa.Table) -> InputError | None:
    """Return the error of the first unpaired row that breaks a rule, or None when all pass."""
    prompts = _Prompts(unpaired.column("prompt"))
    text, _ = render_prompts(unpaired.column("prompt"))
    completion = unpaired.column("completion")
    bad = prompts.bad_rows() | _empty(completion) | _has_marker(completion) | _repeats(completion, text)
    bad |= np.asarray(unpaired.column("label").is_null().to_numpy(zero_copy_only=False), dtype=bool)
    i = _first(bad)
    if i is None:
        return None
    messages, pid = _row(unpaired, i, "prompt"), _row(unpaired, i, "prompt_id")
    try:
        _check_prompt(i + 1, messages, pid)
        _check_completion(i + 1, "completion", _row(unpaired, i, "completion"), render_prompt_text(messages), pid)
        if _row(unpaired, i, "label") is None:
            raise _bad(i + 1, "label", "the label is missing (expected true or false)", None, pid)
    except InputError as exc:
        return exc
    raise AssertionError(f"row {i + 1} failed a column check but passed the row check")  # pragma: no cover
