"""Run every check on a dataset and collect the figures and findings in one report dict.

The report is plain data (JSON-ready apart from numpy arrays under ``values`` keys, which
the HTML report plots and the JSON writer drops). ``findings`` lists what a person should
look at, each in words, with a severity and the example rows it links to.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa

from preflab.audit.agreement import agreement_summary
from preflab.audit.bias import (
    ORDER_UNKNOWN_FLAG,
    format_bias,
    identity_mentions,
    length_bias,
    position_bias,
    prefix_bias,
    shown_order_known,
)
from preflab.audit.contamination import contamination
from preflab.audit.duplicates import (
    exact_duplicates,
    near_duplicate_pairs,
    near_duplicate_texts,
    prompt_text,
    split_leaks,
)
from preflab.audit.fatigue import fatigue, gold_over_time, streaks, too_fast
from preflab.audit.flipped import likely_flipped
from preflab.audit.outcomes import judgment_outcomes
from preflab.audit.scorecards import batch_scorecards, batch_trend, gold_summary, judge_scorecards
from preflab.errors import UsageError
from preflab.records.sufficiency import assess_sufficiency

if TYPE_CHECKING:
    from preflab.audit.tokens import TokenCounter

__all__ = ["Engine", "audit_dataset"]

#: Where the duplicate and contamination steps run (issue 15): here, or on Ray Data.
Engine = Literal["local", "ray"]


def _frame(t: pa.Table | pl.DataFrame | None) -> pl.DataFrame | None:
    if t is None:
        return None
    df = t if isinstance(t, pl.DataFrame) else pl.from_arrow(t)
    assert isinstance(df, pl.DataFrame)
    return df


def audit_dataset(
    pairs: pa.Table | pl.DataFrame | None = None,
    judgments: pa.Table | pl.DataFrame | None = None,
    *,
    eval_texts: list[str] | None = None,
    gold: dict[str, float] | None = None,
    gold_source: str | None = None,
    batches: pa.Table | pl.DataFrame | None = None,
    tokenizer: TokenCounter | None = None,
    prompts: pa.Table | pl.DataFrame | None = None,
    include_agreement: bool = True,
    n_resamples: int = 1000,
    similarity_threshold: float = 0.9,
    prompt_threshold: float = 0.8,
    seed: int = 0,
    title: str = "preflab audit",
    engine: Engine = "local",
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Return the whole audit of a dataset: figures per check and the findings in words.

    Args:
        pairs: text pairs (``PAIR_SCHEMA``-like: ``prompt``, ``chosen``, ``rejected``,
            optional ``prompt_id``, ``split``); see
            :func:`preflab.audit.tables.pairs_from_judgments` to build them from judgments.
        judgments: judgments (``JUDGMENT_SCHEMA``) for agreement, position and people checks.
        eval_texts: an eval set to check for contamination.
        gold: item key → gold direction code (:func:`~preflab.audit.outcomes.gold_from_judgments`
            or :func:`~preflab.audit.outcomes.gold_from_answers`).
        gold_source: where the gold answers come from, in words (shown in the report).
        batches: ``BATCH_SCHEMA`` table to label batches with vendor and delivery date.
        tokenizer: counts tokens for the length check (default: :data:`~preflab.audit.bias.TOKEN_PATTERN`).
        prompts: ``PROMPT_SCHEMA`` table; prompt tags cluster the disagreements.
        include_agreement: run the agreement coefficients (with bootstrap intervals).
        n_resamples: bootstrap resamples for agreement intervals.
        similarity_threshold: chosen/rejected similarity that makes a near-duplicate pair.
        prompt_threshold: estimated Jaccard that makes near-duplicate prompts.
        seed: seed for the bootstrap and the length model's random orientation.
        title: shown at the top of the reports.
        engine: where the prompt-duplicate and contamination steps run: ``"local"`` (this
            process) or ``"ray"`` (Ray Data over Parquet shards, :mod:`preflab.audit.distributed`;
            the same results).
        ray_address: the Ray cluster for ``engine="ray"`` (default: the connection already
            made, else a local instance).

    Raises:
        UsageError: neither pairs nor judgments given.
    """
    p = _frame(pairs)
    j = _frame(judgments)
    if p is None and j is None:
        raise UsageError("give pairs, judgments or both to audit")
    timings: dict[str, float] = {}
    report: dict[str, Any] = {"title": title, "sections": {}, "findings": []}
    sec = report["sections"]

    def timed(name: str, fn: Any, *args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        timings[name] = time.perf_counter() - t0
        return out

    if p is not None and p.height == 0:
        report["pairs"] = 0
        p = None
    if p is not None:
        report["pairs"] = p.height
        sec["length"] = timed("length", length_bias, p, tokenizer=tokenizer, seed=seed)
        sec["format"] = timed("format", format_bias, p)
        sec["prefix"] = timed("prefix", prefix_bias, p)
        sec["identity"] = timed("identity", identity_mentions, p)
        sec["pair_similarity"] = timed(
            "pair_similarity", near_duplicate_pairs, p, threshold=similarity_threshold
        )
        sec["exact_duplicates"] = timed("exact_duplicates", exact_duplicates, p)
        if "prompt" in p.columns:
            sec["transcript_similarity"] = timed(
                "transcript_similarity", near_duplicate_pairs, p,
                threshold=similarity_threshold, include_prompt=True,
            )
            unique = p.select(
                pl.col("prompt_id") if "prompt_id" in p.columns else prompt_text(p).alias("prompt_id")
            ).with_row_index("row").unique("prompt_id", keep="first", maintain_order=True)
            texts = prompt_text(p[unique["row"].to_list()]) if "prompt_id" in p.columns else prompt_text(p)
            dup = timed("prompt_duplicates", *_step("near_duplicate_texts", engine, ray_address), texts,
                        threshold=prompt_threshold)
            rows = unique["row"].to_numpy() if "prompt_id" in p.columns else np.arange(p.height)
            dup["near_examples"] = [[int(rows[i]) for i in c] for c in dup["near_examples"]]
            dup["exact_examples"] = [[int(rows[i]) for i in c] for c in dup["exact_examples"]]
            dup.pop("clusters")
            dup["unit"] = "distinct prompt_id" if "prompt_id" in p.columns else "row"
            sec["prompt_duplicates"] = dup
        sec["splits"] = timed("splits", split_leaks, p)
        if eval_texts is not None:
            sec["contamination"] = timed("contamination", *_step("contamination", engine, ray_address), p,
                                         eval_texts)
    if j is not None and j.height:
        shown = shown_order_known(j)
        if shown.height:
            sec["position"] = timed("position", position_bias, shown)
            if shown.height < j.height:
                sec["position"]["order_unknown"] = j.height - shown.height
        else:
            sec["position"] = {"skipped": f"the {j.height} judgments do not record the order shown "
                                          f"(flag {ORDER_UNKNOWN_FLAG!r}, e.g. HH-RLHF lists chosen first)"}
        if include_agreement:
            sec["agreement"] = timed(
                "agreement", agreement_summary, j, gold=_gold_not_from(gold, j), prompts=prompts,
                n_resamples=n_resamples, seed=seed,
            )
        outcomes = timed("outcomes", judgment_outcomes, j, gold)
        if shown.height < j.height:  # the source's order is not the shown order
            known = pl.col("judgment_id").is_in(shown["judgment_id"].implode())
            outcomes = outcomes.with_columns(
                pl.when(known | pl.col("choice").is_in(["tie", "both_bad"]))
                .then(pl.col("choice")).otherwise(pl.lit("unknown")).alias("choice")
            )
        st = streaks(outcomes.filter(pl.col("choice") != "unknown"))
        fast = too_fast(outcomes)
        sec["people"] = {
            "fatigue": timed("fatigue", fatigue, outcomes),
            "streaks": st,
            "too_fast": fast,
            "gold_over_time": gold_over_time(outcomes),
            "judges": judge_scorecards(outcomes, streaks=st, fast_limit=fast.get("limit_seconds", 5.0)),
        }
        if gold:  # also when nothing is scored yet: the report says so
            sec["gold"] = timed("gold", gold_summary, outcomes, gold_items=len(gold))
            sec["gold"]["source"] = gold_source
        cards = batch_scorecards(j, outcomes, batches=batches, fast_limit=fast.get("limit_seconds", 5.0))
        if cards:
            sec["batches"] = {"cards": cards, "trend": batch_trend(cards)}
            if "gold" in sec:  # gold per batch in delivery order, as the cards
                rank = {c["batch_id"]: i for i, c in enumerate(cards)}
                sec["gold"]["by_batch"].sort(key=lambda r: rank.get(r["batch_id"], len(rank)))
        # pairs without their ids cannot be linked to judgments: score the items instead
        linked = p if p is not None and {"prompt_id", "chosen_id", "rejected_id"} <= set(p.columns) else None
        # gold taken from these same judgments is no independent evidence (as for agreement)
        sec["flipped"] = timed("flipped", likely_flipped, j, linked, gold=_gold_not_from(gold, j))
    if p is not None:
        sec["sufficiency"] = _sufficiency(p, sec)
    report["timings"] = timings
    report["findings"] = _findings(report) or [
        {"id": "empty", "severity": "note", "example_kind": "pair", "examples": [],
         "text": "Nothing to audit: no pairs and no pairwise, ranking or rating judgments with two judges."}
    ]
    return report


def _step(name: str, engine: Engine, address: str | None) -> tuple[Any, ...]:
    """Return the function of step ``name`` on ``engine`` (for ``timed``), with its address bound."""
    if engine == "local":
        return ({"near_duplicate_texts": near_duplicate_texts, "contamination": contamination}[name],)
    if engine != "ray":
        raise UsageError(f"engine must be local or ray, got {engine!r}", field="engine", value=engine)
    from functools import partial

    from preflab.audit import distributed  # Ray is imported only when asked for

    return (partial(getattr(distributed, f"{name}_ray"), address=address),)


def _sufficiency(p: pl.DataFrame, sec: dict[str, Any]) -> dict[str, Any]:
    """Return the usable pairs against the published rules of thumb, beside agreement and gold."""
    cols = {c: p[c].to_arrow() for c in ("split", "agreement") if c in p.columns}
    table = pa.table(cols) if cols else pa.table({"row": pa.array(np.arange(p.height))})
    alpha = next((c for c in sec.get("agreement", {}).get("coefficients", [])
                  if c["name"].startswith("Krippendorff's alpha (nominal)")), None)
    gold = sec.get("gold") or {}
    return assess_sufficiency(
        table,
        agreement={"name": alpha["name"], "value": alpha["value"], "verdict": alpha["verdict"]} if alpha else None,
        gold_accuracy=gold.get("accuracy"),
        gold_judgments=gold.get("gold_judgments"),
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _gold_not_from(gold: dict[str, float] | None, j: pl.DataFrame) -> dict[str, float] | None:
    """Return ``gold`` without the items whose answer was taken from one of these judgments.

    The agreement table scores judges per item, so an item whose gold came from a judgment
    here is left out of it entirely (the gold section scores the other judgments on it).
    """
    sources = getattr(gold, "derived_from", None)
    if not gold or not sources or "judgment_id" not in j.columns:
        return gold
    own = j.filter(pl.col("judgment_id").is_in(pl.Series(sorted(sources), dtype=pl.String).implode()))
    keys = own.select(
        pl.concat_str([pl.col("prompt_id"), pl.col("response_ids").list.sort().list.join("|")], separator="|")
    ).to_series().to_list()
    drop = set(keys)
    return {k: v for k, v in gold.items() if k not in drop}


def _transcript_finding(s: dict[str, Any], add: Any) -> None:
    """Whole-transcript similarity as a figure: the shared prompt makes long contexts similar."""
    d, r = s["transcript_similarity"], s.get("pair_similarity")
    t_high = np.asarray(d["values"]) > d["threshold"]
    r_high = np.asarray(r["values"]) > r["threshold"] if r is not None else np.zeros_like(t_high)
    explained = int((t_high & ~r_high).sum())
    # pairs share their prompt by construction: only the responses can make a transcript pair
    # a near-duplicate, and the response check above reports those
    add("transcript_similarity", "ok",
        f"Figure only: {d['high']} of {d['pairs']} pairs ({_pct(d['share_high'])}) have whole transcripts "
        f"(shared prompt + response) more than {d['threshold']:.0%} similar (mean {d['mean']:.3f}); "
        f"in {explained} of them the responses are not, so the shared context explains it "
        "(the response similarity above is the check).",
        [e["row"] for e in d["examples"]])


def _exact_duplicate_findings(d: dict[str, Any], add: Any) -> None:
    """Pairs repeated exactly, and prompts shared by several pairs, each with its count."""
    def where(e: dict[str, Any]) -> str:
        lines = e.get("source_line") or []
        return f"row {e['row']} ×{e['count']}" + (f" (lines {', '.join(map(str, lines[:4]))})" if lines else "")

    if d["repeated_pairs"]:
        top = "; ".join(where(e) for e in d["pair_examples"][:3])
        add("exact_duplicates", "warn",
            f"{d['repeated_pairs']} pairs are repeated exactly (same prompt, chosen and rejected): "
            f"{d['extra_pair_copies']} extra copies among {d['pairs']} pairs, which train twice; "
            f"most repeated: {top}.",
            [e["row"] for e in d["pair_examples"]])
    else:
        add("exact_duplicates", "ok", f"No pair is repeated exactly among {d['pairs']} pairs.")
    if d.get("repeated_prompts"):
        top = "; ".join(where(e) for e in d["prompt_examples"][:3])
        add("repeated_prompts", "note",
            f"{d['repeated_prompts']} prompts are shared by more than one pair ({d['extra_prompt_rows']} "
            f"extra pairs; {d['distinct_prompts']} distinct prompts in {d['pairs']} pairs); most "
            f"repeated: {top}. Fine when several answers per prompt were judged; a copy when the "
            "pairs repeat too.",
            [e["row"] for e in d["prompt_examples"]])


def _contamination_finding(d: dict[str, Any], add: Any) -> None:
    """Rows holding an eval item, and which of the three tests found them."""
    tests = d.get("by_test", {})
    sim = d.get("similarity") or {}
    parts = [f"exact after normalization {tests.get('exact', {}).get('rows', 0)}",
             f"shared {d['ngram']}-gram {tests.get('ngram', {}).get('rows', 0)}"]
    if sim:
        parts.append(f"similar prompt turn (char {sim['ngram']}-gram Jaccard ≥ {sim['threshold']}, "
                     f"ratio ≥ {sim['ratio']}) {tests.get('similar', {}).get('rows', 0)}")
    add("contamination", "bad" if d["contaminated_rows"] else "ok",
        f"{d['contaminated_rows']} rows hold an eval item ({d['eval_items_hit']} of {d['eval_items']} "
        f"eval items hit); rows per test: {', '.join(parts)}.",
        [e["row"] for e in d["examples"]])


def _prefix_finding(d: dict[str, Any], add: Any) -> None:
    """Pairs that differ only at the end, with figures about those same pairs."""
    skipped = d.get("skipped", {})
    note = (f" Not checked: {skipped.get('shorter response under min_chars', 0)} pairs whose shorter response "
            f"has under {d.get('min_chars', 0)} characters, {skipped.get('identical responses', 0)} with "
            "identical responses.") if skipped else ""
    if d["shared_prefix_pairs"]:
        add("prefix", "note",
            f"{d['shared_prefix_pairs']} of {d.get('checked', d['pairs'])} pairs share at least "
            f"{d['share_threshold']:.0%} of the shorter response as a common prefix (in those pairs the "
            f"common prefix is {d['shared_mean_chars']:.0f} characters, {_pct(d['shared_mean_share'])} "
            f"of the shorter response, on average): they differ only at the end.{note}",
            d["examples"])
    else:
        add("prefix", "ok",
            f"No pair shares {d['share_threshold']:.0%} or more of the shorter response as a common "
            f"prefix ({d.get('checked', d['pairs'])} pairs checked).{note}")


def _findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Turn the figures into sentences with a severity (ok / note / warn / bad)."""
    s = report["sections"]
    out: list[dict[str, Any]] = []

    def add(fid: str, severity: str, text: str, examples: list[Any] | None = None, kind: str = "pair") -> None:
        out.append({"id": fid, "severity": severity, "text": text, "examples": examples or [], "example_kind": kind})

    if "length" in s:
        w = s["length"]["words"]
        longer, shorter = w["chosen_longer"], w["chosen_shorter"]
        if longer > 1.5 * shorter:
            sev, what = "warn", "Chosen is longer much more often than shorter: a reward model may learn 'longer is better'."
        elif shorter > 1.5 * longer:
            sev, what = "note", "Chosen is shorter much more often than longer."
        else:
            sev, what = "ok", "Length is fairly balanced between chosen and rejected."
        if shorter > longer and sev == "ok":
            what = "Chosen is shorter more often than longer (no strong length preference)."
        add(
            "length", sev,
            f"{what} Chosen longer in {_pct(w['share_chosen_longer'])}, shorter in "
            f"{_pct(w['share_chosen_shorter'])}, equal in {_pct(w['share_equal'])} of {w['pairs']} pairs "
            f"(words; mean {w['chosen_mean']:.1f} vs {w['rejected_mean']:.1f}, median "
            f"{w['chosen_median']:.0f} vs {w['rejected_median']:.0f}).",
            s["length"]["examples"]["chosen_much_longer"][:3] + s["length"]["examples"]["chosen_much_shorter"][:3],
        )
        lm = s["length"]["length_model"]
        if lm.get("fitted"):
            rate, rci = lm["length_controlled_p_longer_chosen"], lm["length_controlled_ci95"]
            sci = lm["slope_ci95"]
            parts = [text for hit, text in (
                (rci[0] > 0.5, "at (almost) equal length the longer one still wins more often"),
                (rci[1] < 0.5, "at (almost) equal length the shorter one wins more often"),
                (sci[0] > 0, "the larger the difference, the likelier the longer one wins"),
                (sci[1] < 0, "the larger the difference, the likelier the shorter one wins"),
            ) if hit]
            toward_longer = sci[0] > 0 or (rci[0] > 0.5 and lm["p_longer_by_1sd_chosen"] > 0.5)
            add(
                "length_model", "warn" if toward_longer else "note" if parts else "ok",
                (f"Length preference beyond chance: {'; '.join(parts)}. " if parts
                 else "No length preference beyond chance. ")
                + f"Length-controlled model (AlpacaEval-style logistic of 'the longer one is chosen' on "
                f"tanh(|Δlength|/sd), {lm['pairs']} pairs of unequal length, tokens): length coefficient "
                f"{lm['slope']:+.2f} (95% CI {sci[0]:+.2f}…{sci[1]:+.2f}, p={lm['slope_p_value']:.3g}); "
                f"at equal length the longer one is chosen {_pct(rate)} (95% CI {_pct(rci[0])}…{_pct(rci[1])}, "
                f"50% = no preference), 1 sd longer {_pct(lm['p_longer_by_1sd_chosen'])}.",
            )
    if "pair_similarity" in s:
        d = s["pair_similarity"]
        sev = "warn" if (d["share_high"] or 0) > 0.1 else "note" if d["high"] else "ok"
        add(
            "pair_similarity", sev,
            f"{d['high']} of {d['pairs']} pairs ({_pct(d['share_high'])}) have chosen and rejected "
            f"responses more than {d['threshold']:.0%} similar (mean similarity {d['mean']:.3f}); "
            "such pairs teach little.",
            [e["row"] for e in d["examples"]],
        )
    if "transcript_similarity" in s:
        _transcript_finding(s, add)
    if "exact_duplicates" in s:
        _exact_duplicate_findings(s["exact_duplicates"], add)
    if "prompt_duplicates" in s:
        d = s["prompt_duplicates"]
        sev = "warn" if d["exact_duplicates"] + d["near_duplicates"] else "ok"
        add(
            "prompt_duplicates", sev,
            f"{d['exact_duplicates']} exact and {d['near_duplicates']} near-duplicate prompts "
            f"(MinHash LSH, Jaccard ≥ {d['threshold']}) among {d['texts']} "
            + ("distinct prompts." if d.get("unit") == "distinct prompt_id" else "prompts."),
            [c[0] for c in d["near_examples"][:10]] + [c[0] for c in d["exact_examples"][:10]],
        )
    if s.get("splits", {}).get("checked"):
        d = s["splits"]
        add("splits", "bad" if d["leaked_prompts"] else "ok",
            f"{d['leaked_prompts']} prompts appear in more than one split.", [e["row"] for e in d["examples"]])
    if "contamination" in s:
        _contamination_finding(s["contamination"], add)
    if "identity" in s:
        d = s["identity"]
        n = d["chosen"] + d["rejected"]
        add("identity", "note" if n else "ok",
            f"{d['chosen']} chosen and {d['rejected']} rejected responses name themselves as a model "
            "(\"As an AI language model…\").", d["examples"])
    if "prefix" in s:
        _prefix_finding(s["prefix"], add)
    if "format" in s:
        strong = [
            f"{name} (chosen {_pct(v['chosen_share'])} vs rejected {_pct(v['rejected_share'])})"
            for name, v in s["format"].items()
            if v["when_one_has"]["p_value"] is not None and v["when_one_has"]["p_value"] < 0.05
        ]
        strong_rows = [
            i for v in s["format"].values()
            if v["when_one_has"]["p_value"] is not None and v["when_one_has"]["p_value"] < 0.05
            for i in v["examples"]
        ]
        add("format", "warn" if strong else "ok",
            "Style features that predict the choice: " + ", ".join(strong) if strong
            else "No markdown/emoji style feature predicts the choice.", strong_rows)
    if "position" in s and "skipped" in s["position"]:
        add("position", "note", f"Position bias not checked: {s['position']['skipped']}.")
    elif "position" in s:
        o = s["position"]["overall"]
        if o["trials"]:
            biased = [g["judge_id"] for g in s["position"].get("by_judge", []) if g["biased"]]
            sev = "warn" if (o["p_value"] or 1) < 0.05 or biased else "ok"
            add("position", sev,
                f"The first-shown response wins {_pct(o['share'])} of {o['trials']} decided judgments "
                f"(95% CI {_pct(o['ci95'][0])}–{_pct(o['ci95'][1])}, p={o['p_value']:.3g})"
                + (f"; judges with a position bias: {', '.join(map(str, biased))}." if biased else "."),
                biased, kind="judge")
    if "agreement" in s and "coefficients" in s["agreement"]:
        a = s["agreement"]
        for c in a["coefficients"]:
            if c["name"].startswith("Krippendorff's alpha (nominal)"):
                sev = {"strong": "ok", "moderate": "note", "fair": "warn"}.get(c["verdict"], "bad")
                ci = c["ci95"]
                add("agreement", sev,
                    f"Agreement is {c['verdict']}: Krippendorff's alpha {c['value']:.3f}"
                    + (f" (95% CI {ci[0]:.3f}–{ci[1]:.3f})" if ci else "")
                    + f" on {a['multi_judged_items']} items judged by two or more of {a['judges']} judges.",
                    [h["item"] for h in a.get("hardest_items", [])], kind="item")
    if "people" in s:
        ppl = s["people"]
        flagged = [c for c in ppl["judges"] if c["flags"]]
        if flagged:
            add("judges", "warn",
                "Judges to look at: " + "; ".join(f"{c['judge_id']} ({', '.join(c['flags'])})" for c in flagged) + ".",
                [c["judge_id"] for c in flagged], kind="judge")
        fast = ppl["too_fast"]
        if fast.get("timed"):
            add("too_fast", "warn" if fast["share"] > 0.05 else "ok",
                f"{fast['too_fast']} of {fast['timed']} timed judgments ({_pct(fast['share'])}) took less than "
                f"{fast['limit_seconds']:.1f} s.",
                [r["judge_id"] for r in fast["by_judge"] if r["share"] > 0.2], kind="judge")
        fat = ppl["fatigue"]
        pa_ = fat.get("position_vs_agreement")
        if pa_ and pa_["p_value"] < 0.05 and pa_["spearman"] < 0:
            add("fatigue", "warn",
                f"Agreement falls as sessions go on (Spearman {pa_['spearman']:.2f} between position in "
                f"session and agreement, p={pa_['p_value']:.3g}).",
                [r["judge_id"] for r in fat["by_judge"]
                 if r["agreement_early"] is not None and r["agreement_late"] is not None
                 and r["agreement_early"] - r["agreement_late"] > 0.1], kind="judge")
    if "gold" in s and not s["gold"]["gold_judgments"]:
        g = s["gold"]
        add("gold", "note",
            "Gold accuracy: no judgments to score yet (gold answers: "
            + (str(g["source"]) if g.get("source") else f"{g['gold_items']} items")
            + (f"; {g['source_judgments']} judgments are where the gold answers came from and are not "
               "scored against them" if g.get("source_judgments") else "") + ").")
    elif "gold" in s:
        g = s["gold"]
        low = [r["judge_id"] for r in g["by_judge"] if r["gold_judgments"] >= 5 and r["accuracy"] < 0.7]
        sev = "bad" if (g["accuracy"] or 0) < 0.6 else "warn" if (g["accuracy"] or 0) < 0.8 or low else "ok"
        add("gold", sev,
            f"Gold accuracy {_pct(g['accuracy'])} (95% CI {_pct(g['ci95'][0])}–{_pct(g['ci95'][1])}) on "
            f"{g['gold_judgments']} judgments of {g['judged_gold_items']} gold items"
            + (f" ({g['source']})" if g.get("source") else "")
            + (f"; {g['source_judgments']} judgments the gold answers came from not scored"
               if g.get("source_judgments") else "")
            + (f"; judges below 70%: {', '.join(map(str, low))}." if low else "."),
            low, kind="judge")
    if "sufficiency" in s:
        d = s["sufficiency"]
        narrow, general, gold = d["uses"]
        verdict = (d.get("agreement") or {}).get("verdict")
        sev = ("warn" if narrow["status"] == "below" or verdict in ("fair", "poor")
               else "note" if general["status"] == "below" or gold["status"] == "below" else "ok")
        add("sufficiency", sev,
            f"How much is enough: {d['training']:,} training pairs ({narrow['status']} the {narrow['low']:,}–"
            f"{narrow['high']:,} of DPO on a narrow task, {general['status']} the {general['low']:,}–"
            f"{general['high']:,} of general DPO or a reward model), {d['gold']:,} gold pairs ("
            f"{gold['low']:,}–{gold['high']:,} for evaluation). {d['advice']} (Figures: {d['source']}.)")
    if "flipped" in s:
        _flipped_finding(s["flipped"], add)
    if "batches" in s:
        tr = s["batches"]["trend"]
        worse = sorted(set(tr["consensus_agreement"]["worse"] + tr["gold_accuracy"]["worse"]))
        slope = tr["consensus_agreement"]["slope"]
        add("batches", "warn" if worse else "ok",
            f"{len(s['batches']['cards'])} batches; agreement trend {slope:+.3f} per batch"
            if slope is not None else f"{len(s['batches']['cards'])} batches",
            worse, kind="batch")
        cards = s["batches"]["cards"]
        if any(c.get("vendor") or c.get("delivered_at") for c in cards):
            out[-1]["text"] += " (" + "; ".join(
                f"{c['batch_id']}: {c.get('vendor') or 'vendor unknown'}"
                + (f", delivered {c['delivered_at'][:10]}" if c.get("delivered_at") else "")
                + (f", gold {_pct(c['gold_accuracy'])}" if c.get("gold_accuracy") is not None else "")
                for c in cards[:8]) + ("; …" if len(cards) > 8 else "") + ")"
        if worse:
            out[-1]["text"] += f"; batches that got worse: {', '.join(map(str, worse))}."
    return out


def _flipped_finding(d: dict[str, Any], add: Any) -> None:
    """Add the likely-flipped finding: how many, by which rule, and the worst pairs with their evidence."""
    if d.get("skipped_reason"):
        add("likely_flipped", "note", f"Likely-flipped labels not checked: {d['skipped_reason']}.")
        return
    top = d["top"]
    worst = "; ".join(
        f"{t['prompt_id']} chosen {t['chosen_id']} (score {t['flip_score']:.2f}: "
        f"{t['humans_agreeing']} of {t['humans']} annotators agree"
        + (f", AI judge disagrees in both orders ({t['ai_disagreeing']} of {t['ai_votes']})"
           if t["ai_disagreeing"] else "")
        + (", gold disagrees" if t["gold"] == "disagrees" else "") + ")"
        for t in top[:3] if t["flip_score"] >= d["threshold"])
    cl = d.get("confident_learning_issues")
    add("likely_flipped", "warn" if d["flagged"] else "ok",
        f"{d['flagged']} of {d['scored']} distinct pairs (prompt, chosen, rejected) are likely "
        f"flipped (Dawid–Skene posterior of the other response ≥ {d['threshold']:.2f}, from "
        "annotator agreement, AI judges in both orders and gold)"
        + (f"; Confident Learning (cleanlab) finds {cl}" if cl is not None
           else "; Confident Learning not run (pip install 'preflab[clean]')" if d.get("cleanlab") is False else "")
        + (f". Most likely: {worst}." if worst else ".")
        + " `preflab export --drop-likely-flipped` leaves them out; "
          "`preflab projects requeue-flipped` sends them back to annotators.",
        [t["row"] for t in top if t["row"] is not None and t["flip_score"] >= d["threshold"]][:12])
