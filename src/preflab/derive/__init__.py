"""Judgments → pairs and unpaired rows by named rules; multi-turn unrolling; splits.

Works on Arrow tables (or records), never on a database session, so the same code runs on a
Parquet file and on the app's database.
"""

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
