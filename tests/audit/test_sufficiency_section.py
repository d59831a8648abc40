"""The audit report says how much is enough: pairs against the rules of thumb, with agreement and gold."""

from __future__ import annotations

from typing import Any

import lxml.html
import polars as pl
from rich.console import Console

from preflab.audit import audit_dataset, gold_from_judgments, pairs_from_judgments
from preflab.audit.report import print_report, render_html


def test_hh_audit_counts_the_pairs_against_the_figures(hh_pairs: pl.DataFrame, hh_chunk: Any) -> None:
    report = audit_dataset(hh_pairs, hh_chunk.judgments, n_resamples=0)
    s = report["sections"]["sufficiency"]
    assert [(u["use"], u["have"], u["status"]) for u in s["uses"]] == [
        ("dpo_narrow", hh_pairs.height, "below"), ("dpo_general_or_reward_model", hh_pairs.height, "below"),
        ("gold_eval", 0, "below")]
    finding = next(f for f in report["findings"] if f["id"] == "sufficiency")
    assert finding["severity"] == "warn"
    assert f"{hh_pairs.height:,} training pairs (below the 500–1,000 of DPO on a narrow task" in finding["text"]


def test_crowd_audit_puts_agreement_and_gold_accuracy_beside_the_counts(crowd: dict[str, Any]) -> None:
    pairs = pairs_from_judgments(crowd["judgments"], crowd["responses"], crowd["prompts"])
    report = audit_dataset(pairs, crowd["judgments"], gold=gold_from_judgments(crowd["gold"]),
                           batches=crowd["batches"], n_resamples=0)
    s = report["sections"]["sufficiency"]
    alpha = next(c for c in report["sections"]["agreement"]["coefficients"]
                 if c["name"].startswith("Krippendorff's alpha (nominal)"))
    assert s["agreement"] == {"name": alpha["name"], "value": alpha["value"], "verdict": alpha["verdict"]}
    assert s["gold_accuracy"] == report["sections"]["gold"]["accuracy"]
    console = Console(record=True, width=200)
    print_report(report, console)
    assert "How much is enough" in console.export_text()
    doc = lxml.html.fromstring(render_html(report, pairs))
    rows = doc.cssselect("h2#sufficiency + table tr")
    assert [c.text_content() for c in rows[1].cssselect("td")][0] == "DPO on a narrow task"
