"""Judgments → pairs and unpaired rows by named rules; multi-turn unrolling; splits.

Works on Arrow tables (or records), never on a database session, so the same code runs on a
Parquet file and on the app's database.

Names are imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from preflab.derive.multiturn import continue_with_chosen, unroll_turns
    from preflab.derive.pairs import TIE_SCHEMA, Derivation, derive, derive_pairs
    from preflab.derive.rules import HELPSTEER2_WEIGHTS, DeriveConfig
    from preflab.derive.splits import assign_splits, split_counts
    from preflab.derive.unpaired import derive_unpaired, unpair_pairs

__all__ = [
    "HELPSTEER2_WEIGHTS",
    "TIE_SCHEMA",
    "Derivation",
    "DeriveConfig",
    "assign_splits",
    "continue_with_chosen",
    "derive",
    "derive_pairs",
    "derive_unpaired",
    "split_counts",
    "unpair_pairs",
    "unroll_turns",
]

_EXPORTS = {
    "multiturn": ("continue_with_chosen", "unroll_turns"),
    "pairs": ("TIE_SCHEMA", "Derivation", "derive", "derive_pairs"),
    "rules": ("HELPSTEER2_WEIGHTS", "DeriveConfig"),
    "splits": ("assign_splits", "split_counts"),
    "unpaired": ("derive_unpaired", "unpair_pairs"),
}
_ORIGIN = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _ORIGIN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
