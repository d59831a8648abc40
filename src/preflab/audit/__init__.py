"""preflab.audit: can this preference data be trusted? Checks over Arrow/Polars tables.

One module per family of checks — :mod:`~preflab.audit.agreement`, :mod:`~preflab.audit.bias`,
:mod:`~preflab.audit.duplicates`, :mod:`~preflab.audit.contamination`,
:mod:`~preflab.audit.fatigue`, :mod:`~preflab.audit.scorecards` — and
:func:`audit_dataset`, which runs them all; :mod:`~preflab.audit.report` shows the result.
Nothing here opens a database session.

Names are imported on first use (PEP 562): SciPy and Polars load only when needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from preflab.audit.agreement import (
        agreement_summary,
        cohen_kappa,
        fleiss_kappa,
        krippendorff_alpha,
        raw_agreement,
        verdict,
    )
    from preflab.audit.outcomes import gold_from_answers, gold_from_judgments
    from preflab.audit.suite import audit_dataset
    from preflab.audit.tables import pairs_from_judgments

__all__ = [
    "agreement_summary",
    "audit_dataset",
    "cohen_kappa",
    "fleiss_kappa",
    "gold_from_answers",
    "gold_from_judgments",
    "krippendorff_alpha",
    "pairs_from_judgments",
    "raw_agreement",
    "verdict",
]

_EXPORTS = {
    "agreement": (
        "agreement_summary",
        "cohen_kappa",
        "fleiss_kappa",
        "krippendorff_alpha",
        "raw_agreement",
        "verdict",
    ),
    "outcomes": ("gold_from_answers", "gold_from_judgments"),
    "suite": ("audit_dataset",),
    "tables": ("pairs_from_judgments",),
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
