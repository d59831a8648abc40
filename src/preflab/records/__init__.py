"""preflab records: the data model every layer speaks in, with Arrow schemas. No I/O.

The Arrow names (schemas, ``records_to_table``…) are imported on first use (PEP 562): PyArrow
brings NumPy along (~0.15 s), and a command that only reads records, such as a re-run of
``preflab generate candidates`` answered from the cache (issue 14), never needs them.
"""

from typing import TYPE_CHECKING, Any

from preflab.records.models import *  # noqa: F403
from preflab.records.models import __all__ as _model_all

if TYPE_CHECKING:
    from preflab.records.arrow import (
        BATCH_SCHEMA,
        GUIDELINE_SCHEMA,
        JUDGE_SCHEMA,
        JUDGMENT_SCHEMA,
        MESSAGES_TYPE,
        PAIR_SCHEMA,
        PROJECT_SCHEMA,
        PROMPT_SCHEMA,
        RESPONSE_SCHEMA,
        SCHEMAS,
        SPAN_TYPE,
        UNPAIRED_SCHEMA,
        records_to_table,
        row_to_record,
        table_to_records,
    )

__all__ = [
    "BATCH_SCHEMA",
    "GUIDELINE_SCHEMA",
    "JUDGE_SCHEMA",
    "JUDGMENT_SCHEMA",
    "MESSAGES_TYPE",
    "PAIR_SCHEMA",
    "PROJECT_SCHEMA",
    "PROMPT_SCHEMA",
    "RESPONSE_SCHEMA",
    "SCHEMAS",
    "SPAN_TYPE",
    "UNPAIRED_SCHEMA",
    "records_to_table",
    "row_to_record",
    "table_to_records",
    *_model_all,
]

# the names above that preflab.records.arrow serves
_ARROW_NAMES = frozenset(__all__) - frozenset(_model_all)


def __getattr__(name: str) -> Any:
    """Serve the Arrow names from :mod:`preflab.records.arrow` on first use (PEP 562)."""
    if name in _ARROW_NAMES:
        from preflab.records import arrow

        value = getattr(arrow, name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
