"""Read the prompts a generation job starts from: JSONL, one prompt per line.

Accepted fields per line (the first of ``messages`` / ``prompt`` / ``instruction`` is used):

- ``messages``: a list of ``{"role", "content"}`` ending with a user turn, or
  ``prompt`` / ``instruction``: the text of a single user turn;
- optional ``reference`` (or ``answer``): the known answer, for math verification;
- optional constraints, either ``constraints`` as ``[{"id": ..., "kwargs": {...}}]`` or IFEval's
  own columns ``instruction_id_list`` + ``kwargs``;
- optional ``source`` and ``tags``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from preflab.errors import InputError
from preflab.records import Prompt, validate_record

__all__ = ["read_prompt_file"]


def read_prompt_file(path: str | Path) -> list[Prompt]:
    """Return the prompts of a JSONL (or ``.jsonl.gz``) file, validating every line first.

    Raises:
        InputError: a line that is not JSON or lacks a usable prompt, naming file, line and field.
    """
    p = Path(path)
    opener: Any = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rt", encoding="utf-8") as fh:
            lines = fh.readlines()
    except OSError as exc:
        raise InputError(f"cannot read prompt file: {exc.strerror or exc}", path=str(p)) from None
    prompts: list[Prompt] = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg}", path=str(p), line=no) from None
        if not isinstance(row, dict):
            raise InputError("expected a JSON object per line", path=str(p), line=no)
        prompts.append(_prompt_of(row, str(p), no))
    return prompts


def _prompt_of(row: dict[str, Any], path: str, line: int) -> Prompt:
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list):
            raise InputError(
                "expected a list of messages",
                path=path,
                line=line,
                field="messages",
                value=messages,
            )
    else:
        text = row.get("prompt", row.get("instruction"))
        if not isinstance(text, str) or not text.strip():
            raise InputError(
                'expected "messages" (a list) or "prompt" (text); use one of them on every line',
                path=path,
                line=line,
                field="prompt",
                value=text,
            )
        messages = [{"role": "user", "content": text}]
    constraints = None
    if "constraints" in row and row["constraints"] is not None:
        cs = row["constraints"]
        if not isinstance(cs, list):
            raise InputError("expected a list", path=path, line=line, field="constraints", value=cs)
        constraints = [
            c
            if isinstance(c, str)
            else json.dumps({"id": c.get("id"), "kwargs": c.get("kwargs") or {}}, sort_keys=True)
            for c in cs
        ]
    elif "instruction_id_list" in row:
        ids, kwargs = (
            row["instruction_id_list"],
            row.get("kwargs") or [{}] * len(row["instruction_id_list"]),
        )
        if not isinstance(ids, list) or not isinstance(kwargs, list) or len(ids) != len(kwargs):
            raise InputError(
                "instruction_id_list and kwargs must be lists of the same length",
                path=path,
                line=line,
                field="kwargs",
                value=kwargs,
            )
        constraints = [
            json.dumps(
                {"id": i, "kwargs": {k: v for k, v in (kw or {}).items() if v is not None}},
                sort_keys=True,
            )
            for i, kw in zip(ids, kwargs, strict=True)
        ]
    reference = row.get("reference", row.get("answer"))
    data = {
        "messages": messages,
        "source": row.get("source") or Path(path).name,
        "tags": row.get("tags") or [],
        "constraints": constraints,
        "reference": None if reference is None else str(reference),
    }
    prompt: Prompt = validate_record(Prompt, data, path=path, line=line)
    return prompt
