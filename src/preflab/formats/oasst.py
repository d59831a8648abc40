"""OpenAssistant conversation trees (oasst1/oasst2 ``*.trees.jsonl``; Köpf et al. 2023).

One line holds one tree: ``{"message_tree_id", "tree_state", "prompt": message}`` (or the root
message itself), where a message has ``message_id``, ``parent_id``, ``role`` (``prompter`` or
``assistant``), ``text``, ``lang``, ``rank`` (the crowd's rank among its siblings, 0 = best;
null when not ranked), ``deleted``, ``synthetic``, ``model_name`` and ``replies`` (nested
messages).

For every prompter message with at least two ranked assistant replies, one **ranking judgment**
orders those replies (best first; equal ranks share a group). Its prompt is the whole path from
the root down to that prompter message (``prompter`` → ``user``, ``assistant`` →
``assistant``), so multi-turn context is kept; the tree is walked through every reply, so each
branch gives its own prompts. Replies are ``origin="human"`` (``model`` set for synthetic ones).
Judge: ``oasst`` (crowd rankings). Rankings are flagged ``order_unknown`` (``response_ids`` follow
the file, not the screen). Prompts are tagged ``lang:<code>``.

Flat message tables (the HF ``OpenAssistant/oasst1`` rows: one message per row with
``message_tree_id`` and ``parent_id``, trees contiguous) are assembled into trees first.

Counted: ``skipped_deleted`` (deleted messages, with their subtrees), ``skipped_unranked``
(prompter messages with assistant replies but fewer than two ranked ones), ``ranked_nodes``.

**Repeated trees.** A tree whose ``message_tree_id`` (or, without one, root ``message_id``) was
already read earlier in the file (the oasst2 export repeats some tree ids, with different
content) gives no judgments: **the first occurrence wins**, each later one is counted as
``skipped_repeated_source`` and noted with its line, the tree id and the line of the first
occurrence. Judgments are thus made once per distinct tree, not once per line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from preflab.errors import FormatError, InputError
from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ORDER_UNKNOWN, ChunkBuilder
from preflab.formats.driver import read_file
from preflab.formats.fields import RowError, describe, get_number, get_str, optional_str
from preflab.formats.streams import iter_rows

__all__ = ["JUDGE_ID", "group_flat_messages", "parse_row", "read_oasst"]

JUDGE_ID = "oasst"
_ROLES = {"prompter": "user", "assistant": "assistant"}


def _role(node: Mapping[str, Any], field: str) -> str:
    role = node.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise RowError(
            f"{field}.role", f"expected prompter or assistant, got {describe(role)}", role
        )
    return _ROLES[role]


def _replies(node: Mapping[str, Any], field: str) -> list[Any]:
    replies = node.get("replies") or []
    if not isinstance(replies, list):
        raise RowError(
            f"{field}.replies", f"expected a list of messages, got {describe(replies)}", replies
        )
    for i, reply in enumerate(replies):
        if not isinstance(reply, dict):
            raise RowError(
                f"{field}.replies[{i}]", f"expected a message object, got {describe(reply)}", reply
            )
    return replies


def _rank_node(
    b: ChunkBuilder, node: Mapping[str, Any], field: str, context: list[dict[str, str]]
) -> None:
    replies = _replies(node, field)
    ranked: list[tuple[float, int, Mapping[str, Any]]] = []
    has_assistant = False
    for i, reply in enumerate(replies):
        sub = f"{field}.replies[{i}]"
        if reply.get("deleted") or _role(reply, sub) != "assistant":
            continue
        has_assistant = True
        if reply.get("rank") is None:
            continue
        ranked.append((get_number(reply, "rank", field=f"{sub}.rank", lo=0), i, reply))
    if len(ranked) < 2:
        if has_assistant:
            b.note(
                "skipped_unranked",
                f"message {optional_str(node, 'message_id')!r} has {len(ranked)} ranked "
                "assistant replies (a ranking needs 2)",
                field=field,
            )
        return
    lang = optional_str(node, "lang")
    prompt_id = b.add_prompt(context, field=f"{field}.text", tags=[f"lang:{lang}"] if lang else [])
    groups: dict[float, list[str]] = {}
    shown = []
    for rank, i, reply in sorted(ranked, key=lambda t: t[1]):
        sub = f"{field}.replies[{i}]"
        text = get_str(reply, "text", field=f"{sub}.text")
        model = optional_str(reply, "model_name") if reply.get("synthetic") else None
        rid = b.add_response(
            prompt_id,
            text,
            field=f"{sub}.text",
            model=model,
            origin="model" if model else "human",
            params={"message_id": optional_str(reply, "message_id")},
        )
        if rid in shown:
            b.drop(
                "identical_reply",
                f"reply {optional_str(reply, 'message_id')!r} repeats the text of a sibling",
                field=f"{sub}.text",
            )
            continue
        shown.append(rid)
        groups.setdefault(rank, []).append(rid)
    if len(shown) < 2:
        return
    b.add_judge(JUDGE_ID, "imported", name="OpenAssistant crowd rankings")
    b.add_judgment(
        prompt_id=prompt_id,
        response_ids=shown,
        kind="ranking",
        judge_id=JUDGE_ID,
        ranking=[groups[r] for r in sorted(groups)],
        flags=[ORDER_UNKNOWN],
        id_extra=optional_str(node, "message_id"),
    )
    b.count("ranked_nodes")


def parse_row(b: ChunkBuilder, row: dict[str, Any]) -> None:
    """Check one input row and add its records to ``b`` (rules in the module docstring)."""
    if "prompt" in row:
        root, field = row["prompt"], "prompt"
        if not isinstance(root, dict):
            raise RowError("prompt", f"expected a message object, got {describe(root)}", root)
    elif "message_id" in row or "replies" in row:
        root, field = row, ""
    else:
        raise RowError(
            None,
            'expected a message tree: an object with "prompt" (a message) '
            'or a root message with "replies"',
        )
    tree_id = optional_str(row, "message_tree_id") or optional_str(root, "message_tree_id")
    tree_id = tree_id or optional_str(root, "message_id")
    if tree_id is not None and b.skip_repeated_source(
        "oasst-tree", tree_id,
        seen=f"message tree {tree_id!r} was already read", field="message_tree_id",
    ):
        return
    stack: list[tuple[Mapping[str, Any], str, list[dict[str, str]]]] = [(root, field, [])]
    while stack:
        node, path, context = stack.pop()
        label = path or "message"
        if node.get("deleted"):
            b.note(
                "skipped_deleted",
                f"message {optional_str(node, 'message_id')!r} is deleted (left out with its "
                "replies)",
                field=label,
            )
            continue
        role = _role(node, label)
        text = get_str(node, "text", field=f"{label}.text")
        here = [*context, {"role": role, "content": text}]
        if role == "user":
            _rank_node(b, node, label, here)
        replies = _replies(node, label)
        for i in range(len(replies) - 1, -1, -1):
            stack.append((replies[i], f"{label}.replies[{i}]" if path else f"replies[{i}]", here))


def _is_flat(row: Any) -> bool:
    return (
        isinstance(row, dict)
        and "message_tree_id" in row
        and "parent_id" in row
        and "replies" not in row
        and "prompt" not in row
    )


def group_flat_messages(rows: Iterable[tuple[int, Any]], path: str) -> Iterator[tuple[int, Any]]:
    """Turn flat message rows (one message per row, as in the HF ``oasst1`` tables) into trees.

    Rows of one ``message_tree_id`` must be contiguous (as published); each finished tree is
    yielded as ``{"prompt": root}`` at the line of its first message. Tree rows pass through.

    Raises:
        FormatError: a tree's messages are not contiguous (sort the file by message_tree_id).
    """
    done: set[str] = set()
    tree_id: str | None = None
    first_line = 0
    messages: list[dict[str, Any]] = []

    def build() -> tuple[int, Any]:
        for m in messages:
            for key in ("message_id", "parent_id"):
                if m.get(key) is not None and not isinstance(m[key], str):
                    return first_line, InputError(
                        f"expected a string id, got {describe(m[key])}",
                        path=path,
                        line=first_line,
                        field=key,
                    )
        by_id = {m.get("message_id"): {**m, "replies": []} for m in messages}
        roots = []
        for m in by_id.values():
            parent = by_id.get(m.get("parent_id"))
            if parent is None:
                roots.append(m)
            else:
                parent["replies"].append(m)
        if len(roots) != 1:
            return first_line, InputError(
                f"message tree {tree_id!r} has {len(roots)} root messages (messages without a "
                "parent in the tree); expected 1",
                path=path,
                line=first_line,
                field="parent_id",
            )
        return first_line, {"prompt": roots[0]}

    for line, row in rows:
        if not _is_flat(row):
            if messages:
                yield build()
                messages, tree_id = [], None
            yield line, row
            continue
        if not isinstance(row["message_tree_id"], str):
            yield (
                line,
                InputError(
                    f"expected a string id, got {describe(row['message_tree_id'])}",
                    path=path,
                    line=line,
                    field="message_tree_id",
                ),
            )
            continue
        if row["message_tree_id"] != tree_id:
            if messages:
                yield build()
            if tree_id is not None:
                done.add(tree_id)
            tree_id, first_line, messages = row["message_tree_id"], line, []
            if tree_id in done:
                raise FormatError(
                    f"the messages of tree {tree_id!r} are not contiguous; sort the file by "
                    "message_tree_id first",
                    path=path,
                    line=line,
                )
        messages.append(row)
    if messages:
        yield build()


def read_oasst(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from OpenAssistant trees or flat messages (see module doc).

    Args:
        path: a ``*.trees.jsonl`` file (optionally compressed), or flat message rows
            (JSONL or Parquet, one message per row with ``message_tree_id`` and ``parent_id``).
        chunk_size: trees per chunk.
        skip_invalid: report and leave out bad trees instead of stopping.
        max_problems: problems collected before giving up.
    """
    return read_file(
        path,
        parse_row,
        format="oasst",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
        rows=group_flat_messages(iter_rows(path), str(path)),
    )
