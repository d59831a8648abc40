"""preflab.audit: can this preference data be trusted? Checks over Arrow/Polars tables.

One module per family of checks — :mod:`~preflab.audit.agreement`, :mod:`~preflab.audit.bias`,
:mod:`~preflab.audit.duplicates`, :mod:`~preflab.audit.contamination`,
:mod:`~preflab.audit.fatigue`, :mod:`~preflab.audit.scorecards` — and
:func:`audit_dataset`, which runs them all; :mod:`~preflab.audit.report` shows the result.
Nothing here opens a database session.
"""

from preflab.audit.agreement import (
    agreement_summary,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    raw_agreement,
    verdict,
)
from preflab.audit.outcomes import gold_from_judgments
from preflab.audit.suite import audit_dataset
from preflab.audit.tables import pairs_from_judgments

__all__ = [
    "agreement_summary",
    "audit_dataset",
    "cohen_kappa",
    "fleiss_kappa",
    "gold_from_judgments",
    "krippendorff_alpha",
    "pairs_from_judgments",
    "raw_agreement",
    "verdict",
]
