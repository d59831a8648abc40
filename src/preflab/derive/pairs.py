"""Judgments → training pairs, by named rules (DESIGN.md, "From judgments to pairs").

:func:`derive` reads the three record tables (prompts, responses, judgments; Arrow tables with
the schemas of :mod:`preflab.records`) and returns a :class:`Derivation`: the pairs
(``PAIR_SCHEMA``), the ties when asked for (:data:`TIE_SCHEMA`), the unpaired rows
(``UNPAIRED_SCHEMA``: thumbs, both-bad) and counts of what each rule kept or dropped.

Rules per judgment kind:

- ``pairwise`` (rule ``pairwise_likert``): preferred over the other; margin = strength / the
  scale's largest strength (so 1.0 on a 2-point scale, 1/3 for "slightly" on a 7-point scale).
  Ties are dropped or kept apart (``tie_policy``); both-bad gives two negative unpaired rows,
  never a pair. With several judges on one item, ``aggregate`` decides (rule
  ``pairwise_<aggregate>``; see :mod:`preflab.derive.aggregate`).
- ``ranking`` (``ranking_<rule>``): groups are ordered best first; responses in one group are
  tied and never paired. Margin = group distance / (groups − 1).
- ``rating`` (``rating_<rule>``): the score of a response is the weighted sum of its attribute
  scores (``attribute_weights``) or, without weights, their mean; margin = score difference.
  With ``aggregate`` other than ``none``, the ratings of one prompt by several judges are
  averaged per response first, and ``agreement`` is the share of judges who rated chosen above
  rejected.
- Rankings are converted judgment by judgment whatever ``aggregate`` says.
- ``edit`` (``edit_over_original``): the edited response over the original; no margin.
- ``binary``: thumbs become unpaired rows (see :mod:`preflab.derive.unpaired`).

A pair never has chosen equal to rejected: equal scores never pair, and a pair whose two texts
are equal after normalization is dropped and counted (``identical_dropped``).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from preflab.derive.aggregate import ItemKey, Label, Vote, aggregate_votes
from preflab.derive.judge_filter import LEFT_OUT_KEY, select_judges
from preflab.derive.multiturn import continue_with_chosen
from preflab.derive.pairwise_columns import (
    ColumnarPairwise,
    columnar_pairwise,
    missing_prompt,
    missing_response,
)
from preflab.derive.rules import DeriveConfig
from preflab.derive.unpaired import UnpairedRows, unpair_pairs
from preflab.errors import InputError
from preflab.records import MESSAGES_TYPE, PAIR_SCHEMA, normalize_text

__all__ = ["TIE_SCHEMA", "Derivation", "derive", "derive_pairs", "read_tables"]

TIE_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("prompt", MESSAGES_TYPE, nullable=False),
        ("response_a", pa.string()),
        ("response_b", pa.string()),
        ("response_a_id", pa.string()),
        ("response_b_id", pa.string()),
        ("both_bad", pa.bool_()),
        ("agreement", pa.float64()),
        ("split", pa.string()),
        ("rule", pa.string()),
        ("rule_params", pa.string()),
        ("judgment_ids", pa.list_(pa.string())),
        ("judge_ids", pa.list_(pa.string())),
        ("guideline_version", pa.int32()),
        ("batch_id", pa.string()),
        ("source", pa.string()),
    ]
)
"""Pairwise ties kept apart (``tie_policy="separate"``): two responses judged equally good."""


@dataclass(slots=True)
class Derivation:
    """What :func:`derive` produced: pairs, ties kept apart, unpaired rows and counts."""

    pairs: pa.Table
    ties: pa.Table
    unpaired: pa.Table
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Judgment:
    judgment_id: str
    prompt_id: str
    response_ids: list[str]
    kind: str
    judge_id: str
    value: Any
    guideline_version: int | None
    batch_id: str | None
    source: str | None


class _Context:
    """Lookups and output buffers shared by the rules."""

    def __init__(self, prompts: Mapping[str, int], texts: Mapping[str, str], config: DeriveConfig) -> None:
        self.prompts = prompts  # prompt id → row of the prompts table; messages are taken at the end
        self.texts = texts
        self.config = config
        self.pairs: dict[str, list[Any]] = {f.name: [] for f in PAIR_SCHEMA}
        self.ties: dict[str, list[Any]] = {f.name: [] for f in TIE_SCHEMA}
        self.unpaired = UnpairedRows()
        self.counts: dict[str, int] = {}
        self.params = {k: config.params_json(k) for k in ("pairwise", "ranking", "rating", "edit")}

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def prompt(self, j: _Judgment) -> int:
        try:
            return self.prompts[j.prompt_id]
        except KeyError:
            raise missing_prompt(j.judgment_id, j.prompt_id) from None

    def text(self, j: _Judgment, response_id: str) -> str:
        try:
            return self.texts[response_id]
        except KeyError:
            raise missing_response(j.judgment_id, response_id) from None

    def add_pair(
        self,
        group: Sequence[_Judgment],
        chosen_id: str,
        rejected_id: str,
        *,
        margin: float | None,
        agreement: float | None,
        rule: str,
        params: str,
    ) -> None:
        first = group[0]
        chosen, rejected = self.text(first, chosen_id), self.text(first, rejected_id)
        plain = chosen.isascii() and rejected.isascii() and "\r" not in chosen and "\r" not in rejected
        if chosen_id == rejected_id or (
            chosen.strip() == rejected.strip()
            if plain  # NFC and line-ending normalization change nothing here
            else normalize_text(chosen) == normalize_text(rejected)
        ):
            self.count("identical_dropped")
            return
        row = self.pairs
        row["prompt_id"].append(first.prompt_id)
        row["prompt"].append(self.prompt(first))
        row["chosen"].append(chosen)
        row["rejected"].append(rejected)
        row["chosen_id"].append(chosen_id)
        row["rejected_id"].append(rejected_id)
        row["margin"].append(margin)
        row["agreement"].append(agreement)
        row["split"].append("train")
        row["rule"].append(rule)
        row["rule_params"].append(params)
        if len(group) == 1:
            row["judgment_ids"].append([first.judgment_id])
            row["judge_ids"].append([first.judge_id])
            row["guideline_version"].append(first.guideline_version)
            row["batch_id"].append(first.batch_id)
            row["source"].append(first.source)
        else:
            row["judgment_ids"].append([j.judgment_id for j in group])
            row["judge_ids"].append(_unique(j.judge_id for j in group))
            row["guideline_version"].append(_shared(j.guideline_version for j in group))
            row["batch_id"].append(_shared(j.batch_id for j in group))
            row["source"].append(_shared(j.source for j in group))
        self.count("pairs")
        self.count(f"pairs.{rule}")

    def add_tie(self, group: Sequence[_Judgment], a: str, b: str, *, agreement: float | None,
                both_bad: bool, rule: str) -> None:
        first = group[0]
        row = self.ties
        row["prompt_id"].append(first.prompt_id)
        row["prompt"].append(self.prompt(first))
        row["response_a"].append(self.text(first, a))
        row["response_b"].append(self.text(first, b))
        row["response_a_id"].append(a)
        row["response_b_id"].append(b)
        row["both_bad"].append(both_bad)
        row["agreement"].append(agreement)
        row["split"].append("train")
        row["rule"].append(rule)
        row["rule_params"].append(self.params["pairwise"])
        row["judgment_ids"].append([j.judgment_id for j in group])
        row["judge_ids"].append(_unique(j.judge_id for j in group))
        row["guideline_version"].append(_shared(j.guideline_version for j in group))
        row["batch_id"].append(_shared(j.batch_id for j in group))
        row["source"].append(_shared(j.source for j in group))

    def add_negatives(self, group: Sequence[_Judgment], ids: Sequence[str], rule: str) -> None:
        first = group[0]
        for rid in ids:
            self.unpaired.add(
                prompt_id=first.prompt_id,
                prompt=self.prompt(first),
                completion=self.text(first, rid),
                completion_id=rid,
                label=False,
                rule=rule,
                judgment_ids=[j.judgment_id for j in group],
                judge_ids=_unique(j.judge_id for j in group),
                source=_shared(j.source for j in group),
            )
        self.count("both_bad")


def _unique(values: Any) -> list[str]:
    return list(dict.fromkeys(values))


def _shared(values: Any) -> Any:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


_REQUIRED = ("judgment_id", "prompt_id", "response_ids", "kind", "judge_id")


def _check_judgments(judgments: pa.Table) -> None:
    missing = [c for c in _REQUIRED if c not in judgments.column_names]
    if missing:
        raise InputError(f"the judgments table has no {', '.join(missing)} column; expected "
                         "JUDGMENT_SCHEMA columns.", field=missing[0])
    for kind in pc.unique(judgments.column("kind")).to_pylist():
        if kind not in ("pairwise", "ranking", "rating", "binary", "edit"):
            raise InputError(
                f"unknown judgment kind {kind!r}; expected pairwise, ranking, rating, binary or edit.",
                field="kind",
                value=kind,
            )


def read_tables(
    prompts: pa.Table, responses: pa.Table, judgments: pa.Table, *, rows: Sequence[int] | None = None
) -> tuple[dict[str, int], dict[str, str], list[_Judgment]]:
    """Return prompt rows by id, response texts by id and the judgments as light rows.

    Every row of ``judgments`` is checked (columns, kinds); only ``rows`` (ascending row
    numbers; default all) become light rows, and the lookups are left empty when none do.
    """
    _check_judgments(judgments)
    if rows is not None and len(rows) == 0:
        return {}, {}, []
    prompt_map = {pid: i for i, pid in enumerate(prompts.column("prompt_id").to_pylist())}
    texts = dict(
        zip(responses.column("response_id").to_pylist(), responses.column("content").to_pylist(), strict=True)
    )
    numbers: Sequence[int] = range(judgments.num_rows)
    if rows is not None:
        numbers = [int(r) for r in rows]
        judgments = judgments.take(pa.array(numbers, pa.int64()))
    cols: dict[str, list[Any]] = {name: judgments.column(name).to_pylist() for name in _REQUIRED}
    n = judgments.num_rows
    for name in ("guideline_version", "batch_id", "source"):
        cols[name] = judgments.column(name).to_pylist() if name in judgments.column_names else [None] * n
    kinds = cols["kind"]
    values: list[Any] = [None] * n
    for kind in set(kinds):
        column = judgments.column(kind).to_pylist()
        for i, k in enumerate(kinds):
            if k == kind:
                values[i] = column[i]
    out = []
    for i in range(n):
        if values[i] is None:
            raise InputError(
                f"judgment {cols['judgment_id'][i]} (row {numbers[i] + 1}) is a {kinds[i]} judgment "
                f"without its {kinds[i]} value.",
                line=numbers[i] + 1,
                field=kinds[i],
            )
        out.append(
            _Judgment(
                judgment_id=cols["judgment_id"][i],
                prompt_id=cols["prompt_id"][i],
                response_ids=cols["response_ids"][i] or [],
                kind=kinds[i],
                judge_id=cols["judge_id"][i],
                value=values[i],
                guideline_version=cols["guideline_version"][i],
                batch_id=cols["batch_id"][i],
                source=cols["source"][i],
            )
        )
    return prompt_map, texts, out


# --- pairwise ---------------------------------------------------------------------------


def _vote(j: _Judgment) -> Vote:
    pw = j.value
    a, b = sorted(j.response_ids)
    if pw["tie"]:
        label: Label = "tie"
        strength = 0.0
    elif pw["both_bad"]:  # never a pair, even when one was marked less bad
        label, strength = "both_bad", 0.0
    else:
        label = "a" if pw["preferred"] == a else "b"
        top = max(int(pw["scale"]) // 2, 1)
        strength = int(pw["strength"]) / top
    return Vote((j.prompt_id, a, b), j.judge_id, j.judgment_id, label, strength)


def _pairwise(ctx: _Context, judgments: list[_Judgment]) -> None:
    cfg = ctx.config
    by_id = {j.judgment_id: j for j in judgments}
    votes = [_vote(j) for j in judgments]
    if cfg.aggregate == "none":
        # label counts per item, so agreement costs O(1) per vote (an item judged k times
        # would otherwise cost k² comparisons: 402 repeats of one HH line, issue 18)
        per_item: dict[ItemKey, Counter[str]] = {}
        for v in votes:
            labels = per_item.get(v.item)
            if labels is None:
                per_item[v.item] = labels = Counter()
            labels[v.label] += 1
        for v in votes:
            labels = per_item[v.item]
            total = labels.total()
            agreement = labels[v.label] / total if total > 1 else None
            _emit(ctx, [by_id[v.judgment_id]], v.item, v.label, v.strength, agreement,
                  "pairwise_likert")
        return
    for item, (outcome, item_votes) in aggregate_votes(votes, cfg.aggregate).items():
        group = [by_id[v.judgment_id] for v in item_votes]
        _emit(ctx, group, item, outcome.label, outcome.margin, outcome.agreement,
              f"pairwise_{cfg.aggregate}")


def _pairwise_rest(ctx: _Context, numbered: list[tuple[int, _Judgment]],
                   columnar: ColumnarPairwise) -> None:
    """Emit the ties and both-bad votes the columnar path left, merging its counts in order."""
    pending = sorted(columnar.first_count_row.items(), key=lambda kv: kv[1])
    for number, j in numbered:
        if columnar.error is not None and columnar.error_row is not None and number > columnar.error_row:
            raise columnar.error
        while pending and pending[0][1] < number:
            key = pending.pop(0)[0]
            ctx.count(key, columnar.counts[key])
        v = _vote(j)
        _emit(ctx, [j], v.item, v.label, v.strength, columnar.agreement[number], "pairwise_likert")
    if columnar.error is not None:
        raise columnar.error
    for key, _ in pending:
        ctx.count(key, columnar.counts[key])


def _emit(ctx: _Context, group: list[_Judgment], item: ItemKey, label: Label,
          margin: float | None, agreement: float | None, rule: str) -> None:
    _, a, b = item
    if label == "both_bad":
        ctx.add_negatives(group, (a, b), "pairwise_both_bad")
        return
    if label == "tie":
        if ctx.config.tie_policy == "separate":
            ctx.add_tie(group, a, b, agreement=agreement, both_bad=False, rule=rule)
            ctx.count("ties")
        else:
            ctx.count("ties_dropped")
        return
    chosen, rejected = (a, b) if label == "a" else (b, a)
    ctx.add_pair(group, chosen, rejected, margin=margin, agreement=agreement, rule=rule,
                 params=ctx.params["pairwise"])


# --- ranking ----------------------------------------------------------------------------


def _ranking(ctx: _Context, j: _Judgment) -> None:
    groups = [list(g) for g in j.value if g]
    n = len(groups)
    if n < 2:
        ctx.count("ranking_single_group")
        return
    rule = ctx.config.ranking_rule
    for hi in range(n):
        if rule == "adjacent":
            lows = [hi + 1] if hi + 1 < n else []
        elif rule == "best_vs_rest":
            lows = list(range(1, n)) if hi == 0 else []
        else:
            lows = list(range(hi + 1, n))
        for lo in lows:
            for chosen in groups[hi]:
                for rejected in groups[lo]:
                    ctx.add_pair([j], chosen, rejected, margin=(lo - hi) / (n - 1),
                                 agreement=None, rule=f"ranking_{rule}",
                                 params=ctx.params["ranking"])


# --- rating -----------------------------------------------------------------------------


def _score(attrs: Mapping[str, float], weights: Mapping[str, float] | None) -> float | None:
    if weights is None:
        return sum(attrs.values()) / len(attrs) if attrs else None
    used = [a for a in weights if a in attrs]
    if not used:
        return None
    return sum(weights[a] * attrs[a] for a in used)


def _scores(j: _Judgment, weights: Mapping[str, float] | None) -> dict[str, float]:
    per_response: dict[str, dict[str, float]] = {}
    for s in j.value["scores"] or []:
        if s["score"] is None:
            continue
        per_response.setdefault(s["response_id"], {})[s["attribute"]] = float(s["score"])
    out = {}
    for rid, attrs in per_response.items():
        score = _score(attrs, weights)
        if score is not None:
            out[rid] = score
    return out


def _rating_group(ctx: _Context, group: list[_Judgment], key: str) -> None:
    cfg = ctx.config
    per_judgment = [_scores(j, cfg.attribute_weights) for j in group]
    sums: dict[str, list[float]] = {}
    for scores in per_judgment:
        for rid, s in scores.items():
            sums.setdefault(rid, []).append(s)
    scores = {rid: sum(v) / len(v) for rid, v in sums.items()}
    if len(scores) < 2:
        ctx.count("rating_too_few_scored")
        return
    ordered = sorted(scores, key=lambda r: (-scores[r], r))
    rng = random.Random(f"{cfg.seed}:{key}")
    best_score = scores[ordered[0]]
    best = [r for r in ordered if scores[r] == best_score]
    if cfg.rating_rule == "all_above_margin":
        candidates = [
            (c, r) for c in ordered for r in ordered if scores[c] - scores[r] > 0
        ]
    elif cfg.rating_rule == "best_vs_worst":
        worst_score = scores[ordered[-1]]
        worst = [r for r in ordered if scores[r] == worst_score]
        candidates = [(rng.choice(best), rng.choice(worst))] if worst_score < best_score else []
    else:  # best_vs_random_lower
        lower = [r for r in ordered if scores[r] < best_score]
        candidates = [(rng.choice(best), rng.choice(lower))] if lower else []
    if not candidates:
        ctx.count("rating_no_lower_score")
    rule = f"rating_{cfg.rating_rule}"
    for chosen, rejected in candidates:
        diff = scores[chosen] - scores[rejected]
        if diff <= 0 or diff < cfg.min_margin:
            ctx.count("rating_below_margin")
            continue
        agreement = None
        if len(group) > 1:
            both = [s for s in per_judgment if chosen in s and rejected in s]
            if both:
                agreement = sum(s[chosen] > s[rejected] for s in both) / len(both)
        ctx.add_pair(group, chosen, rejected, margin=diff, agreement=agreement, rule=rule,
                     params=ctx.params["rating"])


def _ratings(ctx: _Context, judgments: list[_Judgment]) -> None:
    if ctx.config.aggregate == "none":
        # One judge's ratings of the responses to one prompt form one comparison set, also
        # when the source stores one row per response (HelpSteer2): group them before the
        # rating rule, never across judges.
        by_judge: dict[tuple[str, str], list[_Judgment]] = {}
        for j in judgments:
            by_judge.setdefault((j.prompt_id, j.judge_id), []).append(j)
        for group in by_judge.values():
            key = group[0].judgment_id if len(group) == 1 else f"{group[0].prompt_id}:{group[0].judge_id}"
            _rating_group(ctx, group, key)
        return
    by_prompt: dict[str, list[_Judgment]] = {}
    for j in judgments:
        by_prompt.setdefault(j.prompt_id, []).append(j)
    for pid, group in by_prompt.items():
        _rating_group(ctx, group, pid)


# --- entry points -----------------------------------------------------------------------


def _to_table(columns: dict[str, list[Any]], schema: pa.Schema, messages: pa.ChunkedArray) -> pa.Table:
    """Build a table whose ``prompt`` column holds prompt-table rows, taken column-wise."""
    rows = pa.array(columns["prompt"], pa.int64())
    data = {**columns, "prompt": messages.take(rows).cast(schema.field("prompt").type)}
    return pa.table(data, schema=schema)


def derive(
    prompts: pa.Table,
    responses: pa.Table,
    judgments: pa.Table,
    config: DeriveConfig | None = None,
    **options: Any,
) -> Derivation:
    """Return pairs, ties and unpaired rows derived from judgments by the configured rules.

    Args:
        prompts: table with ``PROMPT_SCHEMA`` columns (at least ``prompt_id``, ``messages``).
        responses: table with ``RESPONSE_SCHEMA`` columns (``response_id``, ``content``).
        judgments: table with ``JUDGMENT_SCHEMA`` columns.
        config: the rules; or pass its fields as keyword ``options``.
        **options: fields of :class:`DeriveConfig` (``tie_policy="separate"``, …). With
            ``judges``, only those judges' judgments are derived and the others are counted
            (``counts["judgments_left_out_by_judge"]``).

    Returns:
        A :class:`Derivation` with ``pairs`` (``PAIR_SCHEMA``), ``ties`` (:data:`TIE_SCHEMA`),
        ``unpaired`` (``UNPAIRED_SCHEMA``) and ``counts``.

    Raises:
        InputError: a judgment refers to a prompt or response missing from the tables.
        UsageError: an unknown rule name or a bad parameter.
    """
    if config is None:
        config = DeriveConfig(**options)
    elif options:
        raise TypeError("pass either config or keyword options, not both")
    judgments, left_out = select_judges(judgments, config.judges)
    result = _derive(prompts, responses, judgments, config, columnar=True)
    if config.judges:
        result.counts[LEFT_OUT_KEY] = left_out
    return result


def _derive(prompts: pa.Table, responses: pa.Table, judgments: pa.Table, config: DeriveConfig,
            *, columnar: bool) -> Derivation:
    """:func:`derive`; ``columnar=False`` takes every judgment one by one (the reference)."""
    fast: ColumnarPairwise | None = None
    if columnar and config.aggregate == "none":
        _check_judgments(judgments)
        fast = columnar_pairwise(prompts, responses, judgments, config.params_json("pairwise"))
    prompt_map, texts, rows = read_tables(
        prompts, responses, judgments, rows=None if fast is None else fast.rest
    )
    ctx = _Context(prompt_map, texts, config)
    by_kind: dict[str, list[_Judgment]] = {}
    for j in rows:
        by_kind.setdefault(j.kind, []).append(j)
    if fast is None:
        _pairwise(ctx, by_kind.get("pairwise", []))
    else:
        numbered = [(int(n), j) for n, j in zip(fast.rest, rows, strict=True) if j.kind == "pairwise"]
        _pairwise_rest(ctx, numbered, fast)
    for j in by_kind.get("ranking", []):
        _ranking(ctx, j)
    _ratings(ctx, by_kind.get("rating", []))
    for j in by_kind.get("edit", []):
        ctx.add_pair([j], j.value["edited_id"], j.value["original_id"], margin=None,
                     agreement=None, rule="edit_over_original", params=ctx.params["edit"])
    for j in by_kind.get("binary", []):
        rid = j.value["response_id"]
        ctx.unpaired.add(
            prompt_id=j.prompt_id,
            prompt=ctx.prompt(j),
            completion=ctx.text(j, rid),
            completion_id=rid,
            label=bool(j.value["label"]),
            rule="binary_thumbs",
            judgment_ids=[j.judgment_id],
            judge_ids=[j.judge_id],
            source=j.source,
        )
        ctx.count("binary")
    messages = prompts.column("messages")
    pairs = _to_table(ctx.pairs, PAIR_SCHEMA, messages)
    if fast is not None:
        head = fast.pairs.set_column(
            1, PAIR_SCHEMA.field("prompt"),
            messages.take(fast.pairs.column("prompt")).cast(PAIR_SCHEMA.field("prompt").type),
        )
        pairs = pa.concat_tables([head, pairs]) if pairs.num_rows else head
    if config.multiturn == "continue_chosen":
        pairs, rewritten = continue_with_chosen(pairs)
        if rewritten:
            ctx.count("multiturn_rewritten", rewritten)
    unpaired = ctx.unpaired.to_table(messages)
    if config.from_pairs == "unpair":
        unpaired = pa.concat_tables([unpaired, unpair_pairs(pairs)])
    ctx.counts["unpaired"] = unpaired.num_rows
    return Derivation(
        pairs=pairs,
        ties=_to_table(ctx.ties, TIE_SCHEMA, messages),
        unpaired=unpaired,
        counts=ctx.counts,
    )


def derive_pairs(
    prompts: pa.Table,
    responses: pa.Table,
    judgments: pa.Table,
    config: DeriveConfig | None = None,
    **options: Any,
) -> pa.Table:
    """Return the pairs (``PAIR_SCHEMA``) derived from judgments; see :func:`derive`.

    >>> from preflab.records import *
    >>> p = Prompt(messages=[Message(role="user", content="Hi?")])
    >>> a = Response(prompt_id=p.prompt_id, content="Hello!")
    >>> b = Response(prompt_id=p.prompt_id, content="Go away.")
    >>> j = Judgment(judgment_id="j1", prompt_id=p.prompt_id, judge_id="ann",
    ...     response_ids=[b.response_id, a.response_id], kind="pairwise",
    ...     pairwise=PairwiseValue(scale=5, preferred=a.response_id, strength=2))
    >>> t = derive_pairs(records_to_table([p]), records_to_table([a, b]), records_to_table([j]))
    >>> t.select(["chosen", "rejected", "margin", "rule"]).to_pylist()
    [{'chosen': 'Hello!', 'rejected': 'Go away.', 'margin': 1.0, 'rule': 'pairwise_likert'}]
    """
    return derive(prompts, responses, judgments, config, **options).pairs
