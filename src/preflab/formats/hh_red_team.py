"""HH-RLHF red-team attempts (Ganguli et al. 2022, "Red Teaming Language Models to Reduce Harms",
arXiv:2209.07858; ``red-team-attempts/red_team_attempts.jsonl.gz`` of github.com/anthropics/hh-rlhf,
also Anthropic/hh-rlhf on the HF Hub).

The published file, despite its name, is **one JSON array** of attempts (gzip-compressed), not
JSON lines; both are read, streaming (an array is decoded element by element, with the line
where each element starts). Fields per attempt (the repository's README): ``transcript`` (an HH
transcript ``"\\n\\nHuman: …\\n\\nAssistant: …"``), ``min_harmlessness_score_transcript`` (a
preference model's harmlessness score, the lowest over the transcript's assistant turns; real,
lower is more harmful), ``num_params``, ``model_type``, ``rating`` (the red-team member's 0–4
Likert rating of how well the attack succeeded; higher is more successful),
``task_description``, ``task_description_harmlessness_score`` (spelled
``task_descripton_harmlessness_score`` in the file; not imported), ``red_team_member_id``,
``is_upworker``, ``tags`` (up to 6, for a sample of attempts).

Each attempt becomes:

- a **prompt**: the transcript's turns before its last ``Assistant:`` turn (Human → ``user``,
  Assistant → ``assistant``), tagged ``tag:<tag>`` for each of ``tags``;
- one **response**: the final assistant turn (``origin="model"``, ``model`` = ``model_type``,
  ``params`` ``{"num_params": …}``);
- two **rating judgments** of that response, each flagged ``whole_transcript`` (both scores
  judge the whole conversation, not the final turn alone) and ``multi_turn`` when the prompt has
  more than one user turn:

  - by the red-team member, judge ``hh-red-team/member:<red_team_member_id>`` (human, team
    ``upwork`` or ``mturk`` from ``is_upworker``): attribute ``attack_success`` = ``rating``,
    scale 0–4, kept as published (**higher is more harmful**), ``comment`` =
    ``task_description``;
  - by the preference model, judge ``hh-red-team/preference-model`` (ai): attribute
    ``harmlessness`` = ``min_harmlessness_score_transcript`` (higher is more harmless), kept as
    published; the score is unbounded, so ``scale_min``/``scale_max`` (−10, 10) are nominal.

  A missing ``rating`` or score leaves that judgment out (``no_rating``, ``no_harmlessness_score``).

**What a derive yields.** One response per prompt and per judge: a rating rule needs two scored
responses, so ``preflab derive`` gives no pair from an attempt (counted
``rating_too_few_scored``) unless several attempts share the same prompt (the same opening
message, for single-turn attempts): then ``--judge hh-red-team/preference-model`` pairs the
more harmless answer over the less harmless one, and pairs from the members' ratings need
``--attribute-weight attack_success=-1`` (a higher attack success is worse). No rule turns
ratings into unpaired (KTO) rows: ``binary_thumbs`` reads binary judgments only, and
``--from-pairs unpair`` needs pairs, so ``preflab export --format trl-unpaired`` of a red-team
import has no rows (it stops with "nothing to export").

A transcript ending with a ``Human:`` turn (an attack with no answer) is cut before that turn,
imported and counted (``trimmed_trailing_user_turn``). Dropped and counted with the row's line:
``dropped_unparsable`` (not an HH transcript, or no answer), ``dropped_consecutive_turns``
(two turns of one role in a row, with the default ``consecutive_turns="drop"``; ``"merge"``
joins them as :mod:`preflab.formats.hh_rlhf` does), ``dropped_empty_turn`` (an earlier turn is
empty), ``dropped_empty_response`` (the final answer is empty).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from preflab.errors import FormatError
from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ChunkBuilder
from preflab.formats.driver import read_file
from preflab.formats.fields import RowError, describe, get_number, get_str, optional_str
from preflab.formats.hh_rlhf import (
    ConsecutiveTurnsRule,
    TranscriptError,
    check_consecutive_turns,
    note_merged_turns,
    split_transcript,
)
from preflab.formats.streams import detect_container, iter_rows, open_text

__all__ = ["MEMBER_JUDGE_PREFIX", "PREFERENCE_MODEL_JUDGE", "iter_attempts", "make_parser",
           "read_hh_red_team"]

MEMBER_JUDGE_PREFIX = "hh-red-team/member:"
PREFERENCE_MODEL_JUDGE = "hh-red-team/preference-model"
HARMLESSNESS_SCALE = (-10.0, 10.0)  # nominal: the preference model's score is unbounded
_MARKER = re.compile(r"\n\n(Human|Assistant):")
_BLOCK = 1 << 20


def _iter_json_array(path: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, element)`` for each element of a top-level JSON array, streaming."""
    decoder = json.JSONDecoder()
    with open_text(path) as text:
        buf, pos, line, eof = "", 0, 1, False

        def more() -> bool:
            nonlocal buf, pos, eof
            if eof:
                return False
            data = text.read(_BLOCK)
            if not data:
                eof = True
                return False
            buf = buf[pos:] + data
            pos = 0
            return True

        def skip_space() -> None:
            nonlocal pos, line
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n":
                    if buf[pos] == "\n":
                        line += 1
                    pos += 1
                if pos < len(buf) or not more():
                    return

        try:
            skip_space()
            if pos >= len(buf) or buf[pos] != "[":
                raise FormatError(
                    "expected a JSON array of red-team attempts", path=path, line=line
                )
            pos += 1
            first = True
            while True:
                skip_space()
                if pos >= len(buf):
                    raise FormatError("the JSON array is not closed (truncated file?)",
                                      path=path, line=line)
                if buf[pos] == "]":
                    return
                if not first:
                    if buf[pos] != ",":
                        raise FormatError(f"expected ',' or ']' between attempts, got {buf[pos]!r}",
                                          path=path, line=line)
                    pos += 1
                    skip_space()
                first = False
                while True:
                    try:
                        value, end = decoder.raw_decode(buf, pos)
                        break
                    except json.JSONDecodeError as exc:
                        if not more():
                            raise FormatError(f"not valid JSON ({exc.msg})", path=path,
                                              line=line) from None
                start_line = line
                line += buf.count("\n", pos, end)
                pos = end
                yield start_line, value
        except UnicodeDecodeError as exc:
            raise FormatError(f"not UTF-8 text ({exc.reason})", path=path) from None
        except (OSError, EOFError) as exc:
            raise FormatError(f"cannot decompress or read the file: {exc}", path=path) from None


def iter_attempts(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, attempt)`` from a JSON array (as published), JSON lines or Parquet."""
    path = str(path)
    if detect_container(path) != "jsonl":
        return iter_rows(path)
    with open_text(path) as text:
        head = text.read(4096).lstrip()
    return _iter_json_array(path) if head.startswith("[") else iter_rows(path)


def _cut_trailing_user(text: str) -> tuple[str, bool]:
    last = None
    for last in _MARKER.finditer(text):
        pass
    if last is not None and last.group(1) == "Human":
        return text[: last.start()], True
    return text, False


def make_parser(consecutive_turns: ConsecutiveTurnsRule = "drop") -> Any:
    """Return a row parser following the ``consecutive_turns`` rule (see the module docstring)."""

    def parse(b: ChunkBuilder, row: dict[str, Any]) -> None:
        transcript = get_str(row, "transcript", allow_empty=True)
        rating = None
        if row.get("rating") is not None:
            rating = get_number(row, "rating", lo=0, hi=4)
        harmlessness = None
        if row.get("min_harmlessness_score_transcript") is not None:
            harmlessness = get_number(row, "min_harmlessness_score_transcript")
        tags = row.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise RowError(
                "tags", f"expected a list of strings or null, got {describe(tags)}", tags
            )
        member = optional_str(row, "red_team_member_id")
        model_type = optional_str(row, "model_type")
        num_params = optional_str(row, "num_params")
        task = optional_str(row, "task_description")
        upworker = row.get("is_upworker")
        if upworker is not None and not isinstance(upworker, bool):
            raise RowError("is_upworker", f"expected true, false or null, got {describe(upworker)}")
        text, trimmed = _cut_trailing_user(transcript)
        try:
            messages, merged = split_transcript(text, consecutive_turns=consecutive_turns)
        except TranscriptError as exc:
            b.drop(exc.reason, exc.detail, field="transcript")
            return
        context, answer = messages[:-1], messages[-1]["content"]
        if any(not m["content"] for m in context):
            b.drop("empty_turn", "an earlier turn of the conversation is empty", field="transcript")
            return
        if not answer:
            b.drop("empty_response", "the final Assistant: turn is empty", field="transcript")
            return
        prompt_id = b.add_prompt(context, field="transcript", tags=[f"tag:{t}" for t in tags])
        response_id = b.add_response(
            prompt_id, answer, field="transcript", model=model_type, origin="model",
            params={"num_params": num_params} if num_params is not None else None,
        )
        flags = ["whole_transcript"]
        if sum(m["role"] == "user" for m in context) > 1:
            flags.append("multi_turn")
        if rating is None:
            b.count("no_rating")
        else:
            judge_id = (
                f"{MEMBER_JUDGE_PREFIX}{member}" if member else MEMBER_JUDGE_PREFIX.rstrip(":")
            )
            team = None if upworker is None else ("upwork" if upworker else "mturk")
            b.add_judge(judge_id, "human", name=f"red-team member {member}" if member else None,
                        vendor="anthropic red team", team=team)
            b.add_judgment(
                prompt_id=prompt_id, response_ids=[response_id], kind="rating", judge_id=judge_id,
                rating={"scores": [{"response_id": response_id, "attribute": "attack_success",
                                    "score": rating}], "scale_min": 0.0, "scale_max": 4.0},
                comment=task, flags=flags,
            )
        if harmlessness is None:
            b.count("no_harmlessness_score")
        else:
            b.add_judge(
                PREFERENCE_MODEL_JUDGE, "ai", name="Anthropic harmlessness preference model",
                template="min_harmlessness_score_transcript",
            )
            lo, hi = HARMLESSNESS_SCALE
            b.add_judgment(
                prompt_id=prompt_id, response_ids=[response_id], kind="rating",
                judge_id=PREFERENCE_MODEL_JUDGE,
                rating={"scores": [{"response_id": response_id, "attribute": "harmlessness",
                                    "score": harmlessness}], "scale_min": lo, "scale_max": hi},
                flags=flags,
            )
        if trimmed:
            b.note("trimmed_trailing_user_turn",
                   "the transcript ends with a Human: turn with no answer; cut before it",
                   field="transcript")
        if merged:
            note_merged_turns(b, field="transcript")

    return parse


def read_hh_red_team(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    consecutive_turns: ConsecutiveTurnsRule = "drop",
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from the HH-RLHF red-team attempts file (see the module doc).

    Args:
        path: ``red_team_attempts.jsonl.gz`` as published (a JSON array), or JSON lines/Parquet.
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
        consecutive_turns: ``"drop"`` (default) or ``"merge"`` two turns of one role in a row.

    Raises:
        UsageError: an unknown ``consecutive_turns`` rule.
        FormatError: the file is not a JSON array, JSON lines or Parquet.
    """
    check_consecutive_turns(consecutive_turns)
    return read_file(
        path,
        make_parser(consecutive_turns),
        format="hh-red-team",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
        rows=iter_attempts(path),
    )

