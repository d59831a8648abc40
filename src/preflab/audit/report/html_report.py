"""The ``--html`` report: one self-contained file (inline CSS and SVG, no script, no CDN).

Every finding links to its examples, which are anchors inside the file: ``#pair-<row>``
(a pair with its prompt, chosen and rejected), ``#item-<n>`` (a disputed item),
``#judge-<id>`` and ``#batch-<id>`` (scorecard rows).
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

import numpy as np
import polars as pl

from preflab.audit.report.svg import bar_chart, histogram, line_chart

__all__ = ["anchor", "render_html"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4}.sev{font-weight:600;text-transform:uppercase;font-size:.8em;
padding:1px 6px;border-radius:3px;color:#fff}.ok{background:#2e9e5b}.note{background:#3b6fb6}
.warn{background:#d9822b}.bad{background:#b63b5e}.finding{margin:.4em 0}.ex a{margin-right:.4em}
pre{white-space:pre-wrap;background:#f8f8f8;padding:6px;margin:2px 0;max-height:18em;overflow:auto}
.pair{border:1px solid #ddd;padding:6px 10px;margin:10px 0}.pair:target,tr:target{outline:3px solid #d9822b}
figure{display:inline-block;margin:6px 12px 6px 0;vertical-align:top}figcaption{font-weight:600;font-size:.9em}
.chart{max-width:100%;height:auto;border:1px solid #eee}
"""


def anchor(kind: str, key: Any) -> str:
    """Return the anchor id of an example (``pair-12``, ``judge-alice``…).

    >>> anchor("judge", "Ann B.")
    'judge-Ann-B-'
    """
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_-]", "-", str(key))


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return escape(str(x))


def _table(rows: list[dict[str, Any]], cols: list[tuple[str, str]], kind: str | None = None, key: str = "") -> str:
    head = "".join(f"<th>{escape(label)}</th>" for _, label in cols)
    body = []
    for r in rows:
        rid = f' id="{anchor(kind, r[key])}"' if kind else ""
        cells = []
        for c, _ in cols:
            v = r.get(c)
            if isinstance(v, list):
                v = ", ".join(map(str, v))
            cells.append(f"<td>{_num(v)}</td>")
        body.append(f"<tr{rid}>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _examples_links(f: dict[str, Any], item_index: dict[str, int]) -> str:
    links = []
    for ex in f["examples"][:12]:
        kind = f["example_kind"]
        if kind == "item":
            if ex not in item_index:
                continue
            target, label = anchor("item", item_index[ex]), f"item {item_index[ex] + 1}"
        elif kind == "pair":
            target, label = anchor("pair", ex), f"row {ex}"
        else:
            target, label = anchor(kind, ex), str(ex)
        links.append(f'<a href="#{target}">{escape(label)}</a>')
    return f'<div class="ex">examples: {"".join(links)}</div>' if links else ""


def _cut(text: str | None, limit: int = 1200) -> str:
    text = text or ""
    return escape(text if len(text) <= limit else text[:limit] + " …")


def _prompt_str(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(f"{m.get('role')}: {m.get('content')}" for m in value)
    return "" if value is None else str(value)


def _charts(report: dict[str, Any]) -> list[str]:
    s = report["sections"]
    out = []
    if "length" in s and "values" in s["length"]:
        c = np.asarray(s["length"]["values"]["chosen_words"], dtype=float)
        r = np.asarray(s["length"]["values"]["rejected_words"], dtype=float)
        if len(c):
            top = float(np.quantile(np.concatenate([c, r]), 0.98)) or 1.0
            edges = np.linspace(0, top, 21)
            out.append(histogram(
                edges.tolist(),
                {"chosen": np.histogram(np.clip(c, 0, top), edges)[0].tolist(),
                 "rejected": np.histogram(np.clip(r, 0, top), edges)[0].tolist()},
                title="Length distribution (words)", x_label="words (last bin holds the longest 2%)"))
    for key, label in (("pair_similarity", "responses"), ("transcript_similarity", "transcripts")):
        if key in s:
            h = s[key]["histogram"]
            out.append(histogram(h["edges"], {f"pairs ({label})": h["counts"]},
                                 title=f"Chosen vs rejected similarity ({label})", x_label="similarity"))
    ppl = s.get("people")
    if ppl and ppl["judges"]:
        judges = ppl["judges"]
        out.append(bar_chart(
            [j["judge_id"] for j in judges],
            {"agreement with others": [j["consensus_agreement"] for j in judges],
             "gold accuracy": [j["gold_accuracy"] for j in judges]},
            title="Agreement per annotator", y_label="share", y_max=1.0))
        curve = ppl["fatigue"]["curve"]
        if curve:
            xs = [float(p["bucket"]) for p in curve]
            out.append(line_chart(xs, {"agreement": [p["agreement"] for p in curve],
                                       "gold accuracy": [p["gold_accuracy"] for p in curve]},
                                  title="Fatigue: agreement by position in session", y_label="share",
                                  x_label="position in session", y_max=1.0))
            secs = [p["median_seconds"] for p in curve]
            if any(v is not None for v in secs):
                out.append(line_chart(xs, {"median seconds per item": secs},
                                      title="Fatigue: time per item by position in session",
                                      y_label="seconds", x_label="position in session"))
    gold = s.get("gold")
    if gold and len(gold["over_time"]["periods"]) >= 2:
        periods = gold["over_time"]["periods"]
        out.append(line_chart([float(i + 1) for i in range(len(periods))],
                              {"gold accuracy": [p["accuracy"] for p in periods]},
                              title=f"Gold accuracy over time ({periods[0]['period'][:10]} to "
                                    f"{periods[-1]['period'][:10]}, per {gold['over_time']['every']})",
                              y_label="share", x_label="period", y_max=1.0))
    if "batches" in s:
        cards = s["batches"]["cards"]
        xs = [float(i + 1) for i in range(len(cards))]
        out.append(line_chart(xs, {"agreement with others": [c["consensus_agreement"] for c in cards],
                                   "gold accuracy": [c["gold_accuracy"] for c in cards],
                                   "alpha (nominal)": [c["alpha_nominal"] for c in cards]},
                              title="Per-batch trend (delivery order)", y_label="value",
                              x_label="batch", y_max=1.0))
    return out


def _flipped_html(d: dict[str, Any]) -> str:
    """Return the likely-flipped section: the worst pairs, their evidence, the judges' reliability."""
    rows = [{**t, "humans": f"{t['humans_agreeing']} of {t['humans']}",
             "ai": f"{t['ai_disagreeing']} of {t['ai_votes']}"} for t in d["top"]]
    head = ("<h2 id='flipped'>Likely-flipped labels</h2>"
            f"<p>{d['flagged']} of {d['scored']} distinct pairs have a flip score of at least "
            f"{d['threshold']:.2f} (1 − the Dawid–Skene posterior of the chosen response). "
            f"Method: {escape(d.get('method', ''))}.</p>")
    table = _table(rows, [("row", "pair row"), ("prompt_id", "prompt"), ("chosen_id", "chosen"),
                          ("rejected_id", "rejected"), ("flip_score", "flip score"),
                          ("humans", "annotators agreeing"),
                          ("ai", "AI judges disagreeing (both orders)"),
                          ("min_judge_accuracy", "least reliable agreeing"), ("gold", "gold"),
                          ("confident_learning", "Confident Learning issue")])
    judges = _table(d["judges"], [("judge_id", "judge"), ("kind", "kind"), ("votes", "votes"),
                                  ("ds_accuracy", "Dawid–Skene accuracy"), ("gold_judgments", "gold judgments"),
                                  ("gold_accuracy", "gold accuracy")])
    return head + table + "<h3>Judges' reliability</h3>" + judges


def render_html(report: dict[str, Any], pairs: pl.DataFrame | None = None) -> str:
    """Return the whole report as one HTML document.

    Args:
        report: the dict of :func:`preflab.audit.suite.audit_dataset`.
        pairs: the pairs table the report was computed on (to show example pairs).
    """
    s = report["sections"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(report['title'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(report['title'])}</h1>",
    ]
    if "pairs" in report:
        parts.append(f"<p>{report['pairs']} pairs audited.</p>")
    hardest = s.get("agreement", {}).get("hardest_items", [])
    item_index = {h["item"]: i for i, h in enumerate(hardest)}
    row_of_prompt: dict[str, int] = {}
    if pairs is not None and "prompt_id" in pairs.columns and hardest:
        wanted_ids = {h["prompt_id"] for h in hardest}
        for i, pid in enumerate(pairs["prompt_id"].to_list()):
            if pid in wanted_ids and pid not in row_of_prompt:
                row_of_prompt[pid] = i
    parts.append("<h2 id='findings'>Findings</h2>")
    for i, f in enumerate(report["findings"]):
        parts.append(
            f'<div class="finding" id="finding-{i}"><span class="sev {escape(f["severity"])}">'
            f'{escape(f["severity"])}</span> {escape(f["text"])}{_examples_links(f, item_index)}</div>'
        )
    charts = _charts(report)
    if charts:
        parts.append("<h2 id='plots'>Plots</h2>")
        for svg in charts:
            found = re.search(r"<title>(.*?)</title>", svg)
            caption = found.group(1) if found else ""
            parts.append(f"<figure><figcaption>{caption}</figcaption>{svg}</figure>")
    if "agreement" in s and "coefficients" in s["agreement"]:
        a = s["agreement"]
        rows = [{**c, "ci95": "–" if not c["ci95"] else f"{c['ci95'][0]:.3f} – {c['ci95'][1]:.3f}"} for c in a["coefficients"]]
        parts.append("<h2 id='agreement'>Agreement</h2>")
        parts.append(_table(rows, [("name", "coefficient"), ("value", "value"), ("ci95", "95% CI"), ("verdict", "verdict")]))
        if a.get("cohen"):
            parts.append("<h3>Cohen's kappa per pair of judges</h3>")
            parts.append(_table([{**c, "judges": " & ".join(c["judges"])} for c in a["cohen"]],
                                [("judges", "judges"), ("items", "items"), ("kappa", "kappa")]))
        if hardest:
            parts.append("<h3>Hardest items (for adjudication)</h3>")
            for i, h in enumerate(hardest):
                labels = ", ".join(f"{escape(k)}: {v:g}" for k, v in h["labels"].items())
                row = row_of_prompt.get(h["prompt_id"])
                link = f' — <a href="#{anchor("pair", row)}">see the texts (row {row})</a>' if row is not None else ""
                parts.append(f'<div class="pair" id="{anchor("item", i)}"><b>item {i + 1}</b> '
                             f'prompt <code>{escape(h["prompt_id"])}</code>, disagreement {h["disagreement"]:.2f}; '
                             f"labels (1 = first id preferred, −1 = second, 0 = tie, 9 = both bad): {labels}"
                             f"{link}</div>")
    suff = s.get("sufficiency")
    if suff:
        parts.append("<h2 id='sufficiency'>How much is enough</h2>")
        parts.append(_table([{**u, "figure": f"{u['low']:,}–{u['high']:,} {u['counts']}"} for u in suff["uses"]],
                            [("label", "use"), ("figure", "published figure"), ("have", "have"),
                             ("status", "verdict")]))
        parts.append(f"<p>{escape(suff['advice'])} Source: {escape(suff['source'])}.</p>")
    ratings = s.get("agreement", {}).get("ratings")
    if ratings:
        parts.append("<h2 id='ratings'>Rating agreement per attribute</h2>")
        parts.append(_table([{"attribute": r["attribute"], "responses": r["responses"], "judges": r["judges"],
                              "interval": r["interval"]["value"], "ordinal": r["ordinal"]["value"],
                              "verdict": r["interval"]["verdict"]} for r in ratings],
                            [("attribute", "attribute"), ("responses", "responses"), ("judges", "judges"),
                             ("interval", "alpha interval"), ("ordinal", "alpha ordinal"), ("verdict", "verdict")]))
    rankings = s.get("agreement", {}).get("rankings")
    if rankings and rankings.get("judge_pairs"):
        parts.append("<h2 id='rankings'>Ranking agreement</h2>")
        parts.append(f"<p>Mean Kendall's tau-b {rankings['mean_tau']:.3f} over {rankings['judge_pairs']} "
                     "pairs of rankings of the same prompt.</p>")
    ppl = s.get("people")
    if ppl:
        parts.append("<h2 id='judges'>Annotator scorecards</h2>")
        parts.append(_table(ppl["judges"], [
            ("judge_id", "judge"), ("judgments", "judgments"), ("consensus_agreement", "agreement"),
            ("gold_accuracy", "gold acc."), ("first_shown_share", "first shown"), ("tie_share", "ties"),
            ("median_seconds", "median s"), ("too_fast_share", "too fast"), ("longest_run", "longest run"),
            ("flags", "flags")], kind="judge", key="judge_id"))
    gold = s.get("gold")
    if gold and not gold["gold_judgments"]:  # nothing scored: say so, with why
        parts.append("<h2 id='gold'>Gold accuracy</h2>")
        parts.append(f"<p>No judgments to score yet ({gold['gold_items']} gold items"
                     + (f"; answers from {escape(str(gold['source']))}" if gold.get("source") else "")
                     + (f"; {gold.get('source_judgments')} judgments are where the gold answers came from "
                        "and are not scored against them" if gold.get("source_judgments") else "") + ").</p>")
    elif gold:
        ci = gold["ci95"]
        parts.append("<h2 id='gold'>Gold accuracy</h2>")
        parts.append(f"<p>{_pct(gold['accuracy'])} correct (95% CI {_pct(ci[0])} – {_pct(ci[1])}) on "
                     f"{gold['gold_judgments']} judgments of {gold['judged_gold_items']} of "
                     f"{gold['gold_items']} gold items"
                     + (f"; answers from {escape(str(gold['source']))}" if gold.get("source") else "") + ".</p>")
        parts.append(_table(gold["by_judge"], [("judge_id", "judge"), ("gold_judgments", "gold judgments"),
                                               ("correct", "correct"), ("accuracy", "accuracy")]))
        if gold["by_batch"]:
            parts.append(_table(gold["by_batch"], [("batch_id", "batch"), ("gold_judgments", "gold judgments"),
                                                   ("correct", "correct"), ("accuracy", "accuracy")]))
        if gold["over_time"]["periods"]:
            parts.append(f"<h3>Over time (per {escape(gold['over_time']['every'])})</h3>")
            parts.append(_table(gold["over_time"]["periods"], [("period", "period"),
                                                                ("gold_judgments", "gold judgments"),
                                                                ("accuracy", "accuracy")]))
    if s.get("flipped", {}).get("top"):
        parts.append(_flipped_html(s["flipped"]))
    if "batches" in s:
        parts.append("<h2 id='batches'>Batch scorecards</h2>")
        parts.append(_table(s["batches"]["cards"], [
            ("batch_id", "batch"), ("vendor", "vendor"), ("delivered_at", "delivered"), ("status", "status"),
            ("guideline_version", "guideline"), ("judgments", "judgments"),
            ("judges", "judges"), ("alpha_nominal", "alpha"), ("verdict", "verdict"),
            ("consensus_agreement", "agreement"), ("gold_accuracy", "gold acc."),
            ("first_shown_share", "first shown"), ("too_fast_share", "too fast"), ("flags", "flags")],
            kind="batch", key="batch_id"))
    if "length" in s:
        w, t = s["length"]["words"], s["length"]["tokens"]
        parts.append("<h2 id='length'>Length</h2>")
        parts.append(_table([{**w, "unit": "words"}, {**t, "unit": f"tokens ({t.get('unit', '')})"}], [
            ("unit", "unit"), ("share_chosen_longer", "chosen longer"), ("share_chosen_shorter", "chosen shorter"),
            ("share_equal", "equal"), ("chosen_mean", "chosen mean"), ("rejected_mean", "rejected mean"),
            ("chosen_median", "chosen median"), ("rejected_median", "rejected median")]))
    if "format" in s:
        parts.append("<h2 id='format'>Format features</h2>")
        parts.append(_table([{"feature": k, **v, "p": v["when_one_has"]["p_value"], "one": v["when_one_has"]["share"]}
                             for k, v in s["format"].items()],
                            [("feature", "feature"), ("chosen_share", "in chosen"), ("rejected_share", "in rejected"),
                             ("one", "chosen has it, when only one has"), ("p", "p")]))
    # example pairs
    wanted: set[int] = set(row_of_prompt.values())
    for f in report["findings"]:
        if f["example_kind"] == "pair":
            wanted.update(int(e) for e in f["examples"][:12])
    if pairs is not None and wanted:
        parts.append("<h2 id='examples'>Example pairs</h2>")
        has_prompt = "prompt" in pairs.columns
        for row in sorted(wanted):
            if row >= pairs.height:
                continue
            r = pairs.row(row, named=True)
            prompt = _prompt_str(r.get("prompt")) if has_prompt else ""
            parts.append(
                f'<div class="pair" id="{anchor("pair", row)}"><b>row {row}</b>'
                + (f"<div>prompt</div><pre>{_cut(prompt, 800)}</pre>" if prompt else "")
                + f"<div>chosen</div><pre>{_cut(r['chosen'])}</pre>"
                + f"<div>rejected</div><pre>{_cut(r['rejected'])}</pre></div>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)
