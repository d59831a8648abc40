"""Multi-turn chats: one prompt per judged turn, earlier turns continuing with the chosen answer.

In a chat judged at several assistant turns, the pair for turn *k* has as its prompt every
message before turn *k*. Earlier judged turns are written with their **chosen** answer, so
that a trainer never sees a context that continues from a rejected answer (Lambert, *RLHF*,
"Preference Data", multi-turn data: the conversation continues with the chosen response).

Two entry points:

- :func:`unroll_turns` turns one chat whose judged assistant turns carry ``chosen`` and
  ``rejected`` into one pair per judged turn.
- :func:`continue_with_chosen` fixes the prompts of an already derived pair table: an assistant
  turn inside a prompt that was itself judged (some pair has the preceding messages as its
  prompt and this turn's text as one of its two responses) is replaced by the winner of that
  turn, when the winner is unambiguous.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from preflab.errors import InputError

__all__ = ["continue_with_chosen", "unroll_turns"]

_Key = tuple[tuple[str, str], ...]


def _key(messages: Sequence[Mapping[str, str]]) -> _Key:
    return tuple((m["role"], m["content"].strip()) for m in messages)


def unroll_turns(conversation: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return one ``{"prompt", "chosen", "rejected"}`` pair per judged assistant turn.

    Args:
        conversation: the chat in order. Plain turns are ``{"role", "content"}``; a judged
            assistant turn is ``{"role": "assistant", "chosen": str, "rejected": str}``
            (optionally with ``"margin"``).

    Returns:
        A list of pairs; each prompt holds the earlier turns, judged ones with their chosen text.

    Raises:
        InputError: a judged turn that is not an assistant turn, or lacks chosen/rejected.

    >>> chat = [{"role": "user", "content": "Hi"},
    ...         {"role": "assistant", "chosen": "Hello!", "rejected": "What?"},
    ...         {"role": "user", "content": "Joke?"},
    ...         {"role": "assistant", "chosen": "Knock knock.", "rejected": "No."}]
    >>> [p["prompt"][-2:] for p in unroll_turns(chat)][1]
    [{'role': 'assistant', 'content': 'Hello!'}, {'role': 'user', 'content': 'Joke?'}]
    """
    pairs: list[dict[str, Any]] = []
    history: list[dict[str, str]] = []
    for i, turn in enumerate(conversation):
        if "chosen" in turn or "rejected" in turn:
            if turn.get("role") != "assistant":
                raise InputError(
                    f"turn {i}: only assistant turns can be judged, got role {turn.get('role')!r}.",
                    field=f"conversation[{i}].role",
                    value=turn.get("role"),
                )
            for side in ("chosen", "rejected"):
                if not isinstance(turn.get(side), str) or not turn[side].strip():
                    raise InputError(
                        f"turn {i}: a judged turn needs a non-empty {side} text.",
                        field=f"conversation[{i}].{side}",
                        value=turn.get(side),
                    )
            pair: dict[str, Any] = {
                "prompt": [dict(m) for m in history],
                "chosen": turn["chosen"],
                "rejected": turn["rejected"],
                "turn": i,
            }
            if "margin" in turn:
                pair["margin"] = turn["margin"]
            pairs.append(pair)
            history.append({"role": "assistant", "content": turn["chosen"]})
        else:
            history.append({"role": turn["role"], "content": turn["content"]})
    return pairs


def continue_with_chosen(pairs: pa.Table) -> tuple[pa.Table, int]:
    """Return ``pairs`` with judged earlier turns in prompts replaced by their chosen text.

    Returns:
        The table (unchanged when nothing applies) and the number of rows rewritten.
    """
    if pairs.num_rows == 0:
        return pairs, 0
    lengths = pc.list_value_length(pairs.column("prompt"))
    if not pc.any(pc.greater(lengths, 1)).as_py():
        return pairs, 0
    prompts = pairs.column("prompt").to_pylist()
    chosen = pairs.column("chosen").to_pylist()
    rejected = pairs.column("rejected").to_pylist()
    wins: dict[_Key, set[str]] = {}
    losses: dict[_Key, set[str]] = {}
    for p, c, r in zip(prompts, chosen, rejected, strict=True):
        k = _key(p)
        wins.setdefault(k, set()).add(c.strip())
        losses.setdefault(k, set()).add(r.strip())
    winner: dict[_Key, tuple[str, set[str]]] = {}
    for k, won in wins.items():
        clean = won - losses[k]
        if len(clean) == 1:
            winner[k] = (next(iter(clean)), won | losses[k])
    rewritten = 0
    new_prompts = []
    for p in prompts:
        new = p
        for i, m in enumerate(p):
            if m["role"] != "assistant" or i == 0:
                continue
            hit = winner.get(_key(p[:i]))
            if hit is None:
                continue
            text, judged = hit
            content = m["content"].strip()
            if content in judged and content != text:
                if new is p:
                    new = [dict(x) for x in p]
                new[i] = {"role": "assistant", "content": text}
        if new is not p:
            rewritten += 1
        new_prompts.append(new)
    if not rewritten:
        return pairs, 0
    idx = pairs.schema.get_field_index("prompt")
    column = pa.array(new_prompts, type=pairs.schema.field("prompt").type)
    return pairs.set_column(idx, pairs.schema.field("prompt"), column), rewritten
