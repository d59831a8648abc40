"""The ``--json`` report: every figure of the audit, without the per-row arrays."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

import numpy as np

__all__ = ["report_to_json", "to_jsonable"]


def to_jsonable(obj: Any) -> Any:
    """Return ``obj`` with numpy scalars, NaN and dates made JSON-safe and ``values`` dropped.

    Keys named ``values`` hold one number per row (for the HTML plots) and are left out.

    >>> to_jsonable({"a": np.float64(0.5), "b": float("nan"), "values": [1, 2]})
    {'a': 0.5, 'b': None}
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items() if k != "values"}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    return obj


def report_to_json(report: dict[str, Any], *, indent: int | None = 2) -> str:
    """Return the report as JSON text (strict: no NaN)."""
    return json.dumps(to_jsonable(report), indent=indent, ensure_ascii=False, allow_nan=False)
