"""preflab records: the data model every layer speaks in, with Arrow schemas. No I/O."""

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
from preflab.records.models import *  # noqa: F403
from preflab.records.models import __all__ as _model_all

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
