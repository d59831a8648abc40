"""The loop from production back to training data: feedback from a live app, and the hard
cases it reveals sent back to annotation.

- :mod:`preflab.loop.feedback`: thumbs, edits and regenerations as judgments
  (``POST /api/v1/projects/{project_id}/feedback``).
- :mod:`preflab.loop.hard_cases`: the answers users rejected, queued as pairwise items in an
  annotation project (``preflab projects hard-cases``).
"""

from preflab.loop.feedback import (
    MAX_EVENTS,
    FeedbackBatch,
    FeedbackEvent,
    FeedbackOutcome,
    feedback_judgment_id,
    feedback_records,
    store_feedback,
)

__all__ = [
    "MAX_EVENTS",
    "FeedbackBatch",
    "FeedbackEvent",
    "FeedbackOutcome",
    "feedback_judgment_id",
    "feedback_records",
    "store_feedback",
]
