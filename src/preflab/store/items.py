"""Annotation items: ids and keys shared by the import and the web app's queue."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

__all__ = ["make_item_id", "make_response_ids_key"]


def make_response_ids_key(response_ids: Sequence[str]) -> str:
    """Return the order-free key of a set of responses (unique per project and prompt).

    >>> make_response_ids_key(["r_b", "r_a"]) == make_response_ids_key(["r_a", "r_b"])
    True
    """
    raw = json.dumps(sorted(response_ids), separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def make_item_id(
    project_id: str, prompt_id: str, response_ids: Sequence[str], *, key: str | None = None
) -> str:
    """Return the stable id of the item showing ``response_ids`` for ``prompt_id`` in a project.

    The id does not depend on the order of ``response_ids`` (the screen order is chosen per
    assignment), so importing the same pair twice yields one item. ``key`` is
    :func:`make_response_ids_key` of ``response_ids`` when the caller has it already.

    >>> make_item_id("p1", "p_x", ["r_a", "r_b"]) == make_item_id("p1", "p_x", ["r_b", "r_a"])
    True
    """
    raw = json.dumps([project_id, prompt_id, key or make_response_ids_key(response_ids)])
    return "i_" + hashlib.sha256(raw.encode()).hexdigest()[:32]
