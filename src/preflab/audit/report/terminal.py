"""The terminal report: findings in words, then the main tables, with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_report"]

_STYLE = {"ok": "green", "note": "blue", "warn": "yellow", "bad": "bold red"}


def _f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    if isinstance(x, list):
        return ", ".join(map(str, x))
    return str(x)


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    """Print the audit summary: verdicts in words first, then agreement and scorecards."""
    con = console or Console()
    con.rule(f"[bold]{report['title']}")
    if "pairs" in report:
        con.print(f"{report['pairs']} pairs audited.")
    for f in report["findings"]:
        style = _STYLE.get(f["severity"], "")
        con.print(f"[{style}]{f['severity'].upper():>4}[/] {f['text']}", highlight=False)
    s = report["sections"]
    a = s.get("agreement", {})
    if a.get("coefficients"):
        t = Table(title=f"Agreement ({a['multi_judged_items']} items with ≥ 2 judges)")
        for col in ("coefficient", "value", "95% CI", "verdict"):
            t.add_column(col)
        for c in a["coefficients"]:
            ci = "–" if not c["ci95"] else f"{c['ci95'][0]:.3f} – {c['ci95'][1]:.3f}"
            t.add_row(c["name"], _f(c["value"]), ci, c["verdict"])
        con.print(t)
    for r in a.get("ratings") or []:
        iv = r["interval"]
        con.print(f"Rating agreement on {r['attribute']}: alpha (interval) {_f(iv['value'])}, {iv['verdict']} "
                  f"({r['responses']} responses, {r['judges']} judges)")
    rk = a.get("rankings")
    if rk and rk.get("judge_pairs"):
        con.print(f"Ranking agreement: mean Kendall's tau-b {_f(rk['mean_tau'])} over {rk['judge_pairs']} pairs")
    ppl = s.get("people")
    if ppl and ppl["judges"]:
        t = Table(title="Annotators")
        cols = [("judge_id", "judge"), ("judgments", "n"), ("consensus_agreement", "agreement"),
                ("gold_accuracy", "gold"), ("first_shown_share", "first shown"), ("median_seconds", "median s"),
                ("flags", "flags")]
        for _, label in cols:
            t.add_column(label)
        for j in ppl["judges"]:
            t.add_row(*[_f(j.get(c)) for c, _ in cols])
        con.print(t)
    gold = s.get("gold")
    if gold and gold["by_judge"]:
        t = Table(title=f"Gold accuracy per annotator (overall {_f(gold['accuracy'])} on {gold['gold_judgments']})")
        for label in ("judge", "gold judgments", "correct", "accuracy"):
            t.add_column(label)
        for r in gold["by_judge"]:
            t.add_row(str(r["judge_id"]), str(r["gold_judgments"]), str(r["correct"]), _f(r["accuracy"]))
        con.print(t)
    flipped = s.get("flipped") or {}
    top = [r for r in flipped.get("top", []) if r["flip_score"] >= flipped["threshold"]][:10]
    if top:
        t = Table(title=f"Likely-flipped labels ({flipped['flagged']} of {flipped['scored']} pairs, "
                        f"score ≥ {flipped['threshold']:.2f})")
        for label in ("row", "prompt", "chosen", "score", "annotators agreeing", "AI disagreeing",
                      "gold"):
            t.add_column(label)
        for r in top:
            t.add_row(_f(r["row"]), r["prompt_id"], r["chosen_id"], _f(r["flip_score"]),
                      f"{r['humans_agreeing']} of {r['humans']}",
                      f"{r['ai_disagreeing']} of {r['ai_votes']}", _f(r["gold"]))
        con.print(t)
    suff = s.get("sufficiency")
    if suff:
        t = Table(title=f"How much is enough ({suff['training']:,} training pairs, {suff['gold']:,} gold)")
        for label in ("use", "published figure", "have", "verdict"):
            t.add_column(label)
        for u in suff["uses"]:
            t.add_row(u["label"], f"{u['low']:,}–{u['high']:,} {u['counts']}", f"{u['have']:,}", u["status"])
        con.print(t)
    if "batches" in s:
        t = Table(title="Batches (delivery order)")
        cols = [("batch_id", "batch"), ("vendor", "vendor"), ("delivered_at", "delivered"), ("judgments", "n"),
                ("alpha_nominal", "alpha"),
                ("verdict", "verdict"), ("gold_accuracy", "gold"), ("flags", "flags")]
        for _, label in cols:
            t.add_column(label)
        for c in s["batches"]["cards"]:
            t.add_row(*[_f(c.get(k)) if k != "delivered_at" else (c.get(k) or "–")[:10] for k, _ in cols])
        con.print(t)
