"""The row rules of TRL exports: prompts as text, and the checks every row passes before export.

Both work column-wise on Arrow arrays so that a few hundred thousand rows take a second, not
a minute: each check gives one boolean mask per reason (:class:`RowChecks`); only the rows a
mask flags are looked at again in Python, to build a message that names the field and value.

Checks (issue 2, "Export"; reasons and policies in :mod:`preflab.formats.row_policy`): prompt
roles alternate (an optional system message, then user/assistant turns ending with a user turn);
no message and no completion is empty; completions hold one assistant turn (no
``"\\n\\nHuman:"`` / ``"\\n\\nAssistant:"`` inside); chosen differs from rejected after
normalization (NFC, line endings, outer whitespace).

A completion that starts with the user's last message is **not** a bad row (issue 18): real
assistants echo the question (two rows of HH-RLHF's harmless-base test file do), and the
completion is a field of its own in every format, so the row is exported and counted as the
note ``completion_repeats_prompt`` (only messages of at least :data:`MIN_REPEAT_CHARS`
characters count, since a short greeting is echoed all the time).

The text checks are row-wise functions of a row's values, and exported data repeats texts
(every judgment of one pair of responses carries the same two texts): each is evaluated once per
distinct value, or distinct pair of values, and spread back to the rows (:func:`_by_distinct`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from preflab.formats.row_policy import BAD_ROW_REASONS
from preflab.records import normalize_text

__all__ = [
    "MIN_REPEAT_CHARS",
    "Problem",
    "RowChecks",
    "check_completion",
    "check_pair_rows",
    "check_prompt",
    "check_unpaired_rows",
    "completion_with_space",
    "render_prompt_text",
    "render_prompts",
    "row_problem",
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
    >>> render_prompt_text([{"role": "user", "content": "Hi"}], transcript=True)
    '\\n\\nHuman: Hi\\n\\nAssistant:'
    >>> render_prompt_text([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
    ...                     {"role": "user", "content": "Joke?"}])
    '\\n\\nHuman: Hi\\n\\nAssistant: Yo\\n\\nHuman: Joke?\\n\\nAssistant:'
    """
    if not transcript and not _is_transcript(messages):
        return messages[0]["content"]
    return "".join(f"{_ROLE_PREFIX[m['role']]}{m['content']}" for m in messages) + "\n\nAssistant:"


# --- column-wise ------------------------------------------------------------------------


def _mask(values: Any, null: bool = False) -> np.ndarray:
    return np.asarray(pc.fill_null(values, null).to_numpy(zero_copy_only=False), dtype=bool)


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

    def content_at(self, idx: np.ndarray) -> pa.Array:
        """Return the content of message ``idx[i]`` of every row (null where ``idx`` < 0)."""
        return self.contents.take(pa.array(idx, mask=idx < 0))

    def first_content(self) -> pa.Array:
        """Return each row's first message content (null for an empty prompt)."""
        return self.content_at(np.where(self.lengths > 0, self.offsets[:-1], -1))

    def last_content(self) -> pa.Array:
        """Return each row's last message content (null for an empty prompt)."""
        return self.content_at(np.where(self.lengths > 0, self.offsets[1:] - 1, -1))

    def single_user(self) -> np.ndarray:
        return np.asarray((self.lengths == 1) & (self.first(self.codes, -1) == 0), dtype=bool)

    def empty_prompt(self) -> np.ndarray:
        return np.asarray(self.lengths == 0, dtype=bool)

    def empty_message(self) -> np.ndarray:
        """Rows with a message whose content is empty (or only whitespace)."""
        empty = _by_distinct(_empty, _Codes(self.contents))
        bad = np.zeros(self.n, dtype=bool)
        bad[self.parent[empty]] = True
        return bad

    def bad_roles(self) -> np.ndarray:
        """Rows (with messages) whose roles break the alternation rule."""
        start = (self.first(self.codes, -1) == 2).astype(np.int64)
        pos = np.arange(len(self.codes)) - self.offsets[:-1][self.parent]
        after = pos - start[self.parent]
        msg_bad = (after >= 0) & (self.codes != after % 2)
        bad = np.zeros(self.n, dtype=bool)
        bad[self.parent[msg_bad]] = True
        turns = self.lengths - start
        bad |= (turns <= 0) | (turns % 2 == 0)
        return np.asarray(bad & (self.lengths > 0), dtype=bool)


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


def completion_with_space(text: pa.ChunkedArray | pa.Array, is_transcript: np.ndarray | None = None) -> pa.Array:
    """Return completions with a leading space (only where ``is_transcript``, when given)."""
    spaced = pc.binary_join_element_wise(" ", text, "")
    out = spaced if is_transcript is None else pc.if_else(pa.array(is_transcript), spaced, text)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


#: Evaluate on distinct values only when they are at most this share of the rows; with more,
#: the encoding costs more than it saves.
_DISTINCT_SHARE = 0.5


#: Columns of at least this many rows look at every ``_SAMPLE_EVERY``-th row first and are not
#: encoded when that sample is already mostly distinct (the encoding would be thrown away).
_SAMPLE_FROM = 4096
_SAMPLE_EVERY = 8


class _Codes:
    """Each row's code among the distinct values of a column (nulls share one), computed once.

    ``codes`` is None when a sample shows the values are mostly distinct.
    """

    def __init__(self, values: pa.ChunkedArray | pa.Array) -> None:
        self.values = values
        self.codes: np.ndarray | None = None
        self.count = 0
        n = len(values)
        if n >= _SAMPLE_FROM:
            sample = values.take(pa.array(np.arange(0, n, _SAMPLE_EVERY)))
            if len(pc.unique(sample)) > len(sample) * _DISTINCT_SHARE:
                return
        arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        encoded = pc.dictionary_encode(arr)
        size = len(encoded.dictionary)
        self.codes = pc.fill_null(encoded.indices, size).to_numpy(zero_copy_only=False).astype(np.int64)
        self.count = size + 1


def _by_distinct(check: Any, *columns: _Codes) -> np.ndarray:
    """Return ``check(*values)``, evaluated once per distinct row of values (issue 18).

    ``check`` must be row-wise (each row's result depends on that row's values alone) and
    return one value per row; the result is the same as calling it on every row.
    """
    n = len(columns[0].values)
    if any(c.codes is None for c in columns):
        return np.asarray(check(*(c.values for c in columns)))
    key = np.zeros(n, dtype=np.int64)
    size = 1
    for column in columns:
        assert column.codes is not None
        key = key * column.count + column.codes
        size *= column.count
        if size > n * _DISTINCT_SHARE:  # count the combinations seen (and keep the key small)
            key = np.unique(key, return_inverse=True)[1].astype(np.int64).reshape(-1)
            size = int(key.max()) + 1 if n else 0
        if size > n * _DISTINCT_SHARE:
            return np.asarray(check(*(c.values for c in columns)))
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    rows = pa.array(first)
    return np.asarray(check(*(c.values.take(rows) for c in columns)))[inverse.reshape(-1)]


def _empty(text: pa.ChunkedArray) -> np.ndarray:
    return _mask(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), True)


def _has_marker(text: pa.ChunkedArray) -> np.ndarray:
    out = np.zeros(len(text), dtype=bool)
    for m in _MARKERS:
        out |= _mask(pc.match_substring(text, m))
    return out


def _repeats(text: pa.ChunkedArray, said: pa.Array) -> np.ndarray:
    """Return which completions start with ``said`` (the user's last message, when long enough)."""
    out = np.zeros(len(text), dtype=bool)
    head_c = pc.utf8_slice_codeunits(pc.utf8_ltrim_whitespace(text), 0, MIN_REPEAT_CHARS)
    stripped = pc.utf8_trim_whitespace(said)
    head_p = pc.utf8_slice_codeunits(stripped, 0, MIN_REPEAT_CHARS)
    maybe = pc.and_(pc.equal(head_c, head_p), pc.greater_equal(pc.utf8_length(stripped), MIN_REPEAT_CHARS))
    for i in np.flatnonzero(_mask(maybe)):  # only rows whose first characters already match
        c, p = text[int(i)].as_py(), stripped[int(i)].as_py()
        out[i] = c.lstrip().startswith(p)
    return out


def _same_text(a: pa.ChunkedArray, b: pa.ChunkedArray) -> np.ndarray:
    """Return where ``a`` and ``b`` are equal after normalization (see ``normalize_text``)."""

    def light(x: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.utf8_trim_whitespace(pc.replace_substring(x, "\r\n", "\n"))

    same = _mask(pc.equal(light(a), light(b)))
    # NFC changes nothing in ASCII text; normalize only rows where either side is not ASCII
    ascii_ = pc.and_(pc.string_is_ascii(a), pc.string_is_ascii(b))
    rest = np.flatnonzero(~_mask(ascii_, True) & ~same)
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


@dataclass(slots=True)
class RowChecks:
    """One boolean mask per bad-row reason and per note, over the rows of one table."""

    n: int
    bad: dict[str, np.ndarray] = field(default_factory=dict)
    notes: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, reason: str, mask: np.ndarray) -> None:
        """OR ``mask`` into the reason's mask (reasons must be in ``BAD_ROW_REASONS``)."""
        if reason not in BAD_ROW_REASONS:  # pragma: no cover - a programming error
            raise KeyError(reason)
        self.bad[reason] = self.bad[reason] | mask if reason in self.bad else mask

    def any_bad(self, reasons: Sequence[str] | None = None) -> np.ndarray:
        """Return the rows with any of ``reasons`` (default: any reason)."""
        out = np.zeros(self.n, dtype=bool)
        for r, m in self.bad.items():
            if reasons is None or r in reasons:
                out |= m
        return out

    def first_reason(self, rows: np.ndarray, reasons: Sequence[str] | None = None) -> np.ndarray:
        """Return, for each row index in ``rows``, its first reason in ``BAD_ROW_REASONS`` order."""
        out = np.full(len(rows), "", dtype=object)
        for r in reversed(list(BAD_ROW_REASONS)):  # earlier reasons overwrite later ones
            m = self.bad.get(r)
            if m is not None and (reasons is None or r in reasons):
                hit = m[rows]
                out[hit] = r
        return out


def check_pair_rows(pairs: pa.Table, *, plain: bool = False) -> RowChecks:
    """Return the masks of every check on a pair table (``prompt``, ``chosen``, ``rejected``).

    Args:
        pairs: the pairs.
        plain: flag prompts that are not one user message (``prompt_text="plain"``).
    """
    prompts = _Prompts(pairs.column("prompt"))
    chosen, rejected = _Codes(pairs.column("chosen")), _Codes(pairs.column("rejected"))
    checks = RowChecks(pairs.num_rows)
    _check_prompts(checks, prompts, plain)
    checks.add("empty_completion", _by_distinct(_empty, chosen) | _by_distinct(_empty, rejected))
    checks.add("multi_turn_completion",
               _by_distinct(_has_marker, chosen) | _by_distinct(_has_marker, rejected))
    checks.add("same_text", _by_distinct(_same_text, chosen, rejected))
    last = _Codes(prompts.last_content())
    checks.notes["completion_repeats_prompt"] = (_by_distinct(_repeats, chosen, last)
                                                 | _by_distinct(_repeats, rejected, last))
    return checks


def check_unpaired_rows(unpaired: pa.Table, *, plain: bool = False) -> RowChecks:
    """Return the masks of every check on an unpaired table (``prompt``, ``completion``, ``label``)."""
    prompts = _Prompts(unpaired.column("prompt"))
    completion = _Codes(unpaired.column("completion"))
    checks = RowChecks(unpaired.num_rows)
    _check_prompts(checks, prompts, plain)
    checks.add("empty_completion", _by_distinct(_empty, completion))
    checks.add("multi_turn_completion", _by_distinct(_has_marker, completion))
    checks.add("missing_label", np.asarray(unpaired.column("label").is_null().to_numpy(zero_copy_only=False),
                                           dtype=bool))
    last = _Codes(prompts.last_content())
    checks.notes["completion_repeats_prompt"] = _by_distinct(_repeats, completion, last)
    return checks


def _check_prompts(checks: RowChecks, prompts: _Prompts, plain: bool) -> None:
    checks.add("empty_prompt", prompts.empty_prompt())
    checks.add("empty_message", prompts.empty_message())
    checks.add("prompt_roles", prompts.bad_roles())
    if plain:
        checks.add("prompt_not_plain", ~prompts.single_user() & ~prompts.empty_prompt())


# --- one row, with a message --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with one row: the reason, the field, in words, and the value found."""

    reason: str
    field: str
    what: str
    value: Any = None


def check_prompt(messages: Any, *, plain: bool = False) -> Problem | None:
    """Return the first problem of one prompt (a list of ``{role, content}``), or None."""
    if not messages:
        return Problem("empty_prompt", "prompt", "the prompt has no message", messages)
    start = 1 if messages[0]["role"] == "system" else 0
    if start == len(messages):
        return Problem("prompt_roles", "prompt", "the prompt has a system message but no user turn",
                       messages[0]["role"])
    for i, m in enumerate(messages):
        content = m["content"]
        if content is None or not content.strip():
            return Problem("empty_message", f"prompt[{i}].content", f"message {i} ({m['role']}) is empty", content)
        if i < start:
            continue
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if m["role"] != expected:
            return Problem("prompt_roles", f"prompt[{i}].role",
                           f"roles must alternate user/assistant; expected {expected!r}, got {m['role']!r}",
                           m["role"])
    if messages[-1]["role"] != "user":
        return Problem("prompt_roles", f"prompt[{len(messages) - 1}].role", "the prompt must end with a user turn",
                       messages[-1]["role"])
    if plain and _is_transcript(messages):
        return Problem("prompt_not_plain", "prompt",
                       f"--prompt-text plain writes only prompts of one user message; this one has "
                       f"{len(messages)} messages (use --prompt-text transcript)", len(messages))
    return None


def check_completion(name: str, text: Any) -> Problem | None:
    """Return the problem of one completion text, or None."""
    if text is None or not text.strip():
        return Problem("empty_completion", name, "the completion is empty", text)
    for marker in _MARKERS:
        if marker in text:
            return Problem("multi_turn_completion", name,
                           f"the completion holds more than one turn (found {marker.strip()!r}); "
                           "completions must be one assistant turn", text[:80])
    return None


def row_problem(row: Mapping[str, Any], *, plain: bool = False, margin: bool = False) -> Problem | None:
    """Return the first problem of one pair or unpaired row (a dict of its columns), or None."""
    problem = check_prompt(row.get("prompt"), plain=plain)
    if problem is not None:
        return problem
    sides = ("chosen", "rejected") if "chosen" in row else ("completion",)
    for side in sides:
        problem = check_completion(side, row.get(side))
        if problem is not None:
            return problem
    if "chosen" in row:
        c, r = row["chosen"], row["rejected"]
        if c == r or normalize_text(c) == normalize_text(r):
            return Problem("same_text", "rejected", "chosen and rejected are the same text", r[:80])
        if margin and row.get("margin") is None:
            return Problem("missing_margin", "margin",
                           f"the pair has no margin (rule {row.get('rule')!r} gives none); export without "
                           "--margin, or derive with rules that give margins", None)
    elif row.get("label") is None:
        return Problem("missing_label", "label", "the label is missing (expected true or false)", None)
    return None
