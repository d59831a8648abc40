"""The named choices of an export: what to do with a bad row, how standard prompts are written.

Declared once here (no PyArrow import, so the CLI can load it for ``--help``), they feed the
library's checks, the CLI's choices and the docs (issue 18).

**Bad rows** are rows an export format cannot represent (or should not be trusted with). Each
has a reason; :data:`BAD_ROW_REASONS` describes them, :data:`UNKEEPABLE_REASONS` lists those
no TRL format can hold. ``on_bad_row`` (``--on-bad-row``) decides:

- ``error`` (default): the first bad row stops the export, named by its pair number, record ids
  and input file and line; nothing is written. A demanding user wants to know before a row
  silently disappears, and rows derived from the importers never are bad, so the default costs
  nothing on clean data.
- ``skip``: bad rows are left out and counted by reason (command output, ``--json``, card).
- ``keep``: bad rows are written as they are where the format can hold them, and counted; rows
  with an unkeepable reason (an empty completion, …) are still left out and counted as skipped.

**Notes** are legitimate rows worth a count but never a refusal: an assistant whose answer
starts by repeating the user's message (real HH-RLHF rows do this) is exported and counted as
``completion_repeats_prompt``.

**Standard prompts** (``prompt_text``, ``--prompt-text``): one convention per export.
``transcript`` (default) writes every prompt, single- and multi-turn alike, as an HH-RLHF
transcript ending in ``"\\n\\nAssistant:"``; ``plain`` writes the user's message alone and is
only for prompts of one user message (others are bad rows, ``prompt_not_plain``). Either way
each completion starts with one space, so ``prompt + chosen`` reads as one text.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BAD_ROW_REASONS",
    "NOTE_REASONS",
    "UNKEEPABLE_REASONS",
    "OnBadRow",
    "PromptText",
]


class OnBadRow(StrEnum):
    """What an export does with a row its format cannot represent."""

    error = "error"
    skip = "skip"
    keep = "keep"


class PromptText(StrEnum):
    """How standard (plain-text) exports write every prompt."""

    transcript = "transcript"
    plain = "plain"


#: reason → what is wrong, in the order the checks assign a row its (first) reason.
BAD_ROW_REASONS: dict[str, str] = {
    "empty_prompt": "the prompt has no message",
    "empty_message": "a prompt message is empty",
    "prompt_roles": "prompt roles do not alternate (optional system message, then user/assistant "
                    "turns ending with a user turn)",
    "prompt_not_plain": "with --prompt-text plain: the prompt is not one user message",
    "empty_completion": "a completion (chosen, rejected or completion) is empty",
    "multi_turn_completion": "a completion holds more than one turn (\\n\\nHuman: or \\n\\nAssistant: inside)",
    "same_text": "chosen and rejected are the same text after normalization",
    "missing_label": "an unpaired row has no label",
    "missing_margin": "with --margin: the pair has no margin (its rule gives none, e.g. edits)",
}

#: Reasons no TRL format can hold: left out even with ``keep``.
UNKEEPABLE_REASONS: frozenset[str] = frozenset(
    {"empty_prompt", "prompt_not_plain", "empty_completion", "missing_label", "missing_margin"}
)

#: Counted, never refused.
NOTE_REASONS: dict[str, str] = {
    "completion_repeats_prompt": "a completion starts with the user's last message (an echoing "
                                 "assistant; exported as it is)",
}
