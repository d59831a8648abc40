"""The three reports: terminal words, strict JSON, one offline HTML file whose links resolve."""

from __future__ import annotations

import json
from typing import Any

import lxml.html
import polars as pl
import pytest
from rich.console import Console

from preflab.audit import audit_dataset, gold_from_judgments, pairs_from_judgments
from preflab.audit.report import print_report, render_html, report_to_json
from preflab.errors import UsageError


@pytest.fixture(scope="module")
def hh_report(hh_pairs: pl.DataFrame, hh_chunk: Any) -> dict[str, Any]:
    return audit_dataset(hh_pairs, hh_chunk.judgments, n_resamples=0,
                         eval_texts=[" ".join(hh_pairs["chosen"][3].split()[:15])])


@pytest.fixture(scope="module")
def crowd_report(crowd: dict[str, Any]) -> tuple[dict[str, Any], pl.DataFrame]:
    pairs = pairs_from_judgments(crowd["judgments"], crowd["responses"], crowd["prompts"])
    report = audit_dataset(pairs, crowd["judgments"], gold=gold_from_judgments(crowd["gold"]),
                           batches=crowd["batches"], n_resamples=50)
    return report, pairs


def _finding(report: dict[str, Any], fid: str) -> dict[str, Any]:
    return next(f for f in report["findings"] if f["id"] == fid)


def test_hh_report_states_the_length_pattern_and_near_duplicates(hh_report: dict[str, Any]) -> None:
    assert "Chosen is shorter more often than longer" in _finding(hh_report, "length")["text"]
    # multi-turn pairs share their context: whole-transcript similarity is a figure, not a warning
    dup = _finding(hh_report, "transcript_similarity")
    assert dup["severity"] == "ok" and len(dup["examples"]) > 5 and "shared context" in dup["text"]
    assert not [f["id"] for f in hh_report["findings"] if f["severity"] == "warn" and "similar" in f["id"]]
    assert _finding(hh_report, "contamination")["severity"] == "bad"
    assert "not checked" in _finding(hh_report, "position")["text"]  # imported: shown order unknown


def test_json_report_is_strict_and_has_every_section(hh_report: dict[str, Any]) -> None:
    data = json.loads(report_to_json(hh_report))
    assert data["sections"]["length"]["words"]["chosen_shorter"] > data["sections"]["length"]["words"]["chosen_longer"]
    assert "values" not in data["sections"]["pair_similarity"]
    for key in ("length", "format", "prefix", "identity", "pair_similarity", "transcript_similarity",
                "prompt_duplicates", "splits", "contamination", "position"):
        assert key in data["sections"], key
    assert "NaN" not in report_to_json(hh_report)


def _check_html(html: str) -> lxml.html.HtmlElement:
    doc = lxml.html.fromstring(html)
    assert not doc.cssselect("script, link, iframe, img[src^='http']")
    for el in doc.iter():
        for attr in ("src", "href"):
            value = el.get(attr)
            if value is not None:
                assert value.startswith("#"), f"external reference {value!r}"
    ids = {el.get("id") for el in doc.iter() if el.get("id")}
    for a in doc.cssselect("a[href]"):
        assert a.get("href")[1:] in ids, f"dangling link {a.get('href')}"
    return doc


def test_hh_html_is_offline_and_its_example_links_resolve(hh_report: dict[str, Any], hh_pairs: pl.DataFrame) -> None:
    doc = _check_html(render_html(hh_report, hh_pairs))
    assert len(doc.cssselect("svg.chart")) >= 3  # lengths + two similarity histograms
    dup_links = doc.cssselect("#finding-{} .ex a".format(
        [f["id"] for f in hh_report["findings"]].index("transcript_similarity")))
    assert dup_links
    target = doc.get_element_by_id(dup_links[0].get("href")[1:])
    assert "chosen" in target.text_content() and "rejected" in target.text_content()


def test_crowd_html_has_people_and_batch_plots(crowd_report: tuple[dict[str, Any], pl.DataFrame]) -> None:
    report, pairs = crowd_report
    doc = _check_html(render_html(report, pairs))
    titles = [t.text for t in doc.cssselect("svg.chart > title")]
    assert "Agreement per annotator" in titles
    assert "Fatigue: agreement by position in session" in titles
    assert "Per-batch trend (delivery order)" in titles
    assert doc.cssselect("tr#judge-carol") and doc.cssselect("tr#batch-b3")
    judge_links = [a.get("href") for a in doc.cssselect(".finding .ex a")]
    assert "#judge-carol" in judge_links and "#judge-eve" in judge_links


def test_terminal_report_prints_verdicts_in_words(crowd_report: tuple[dict[str, Any], pl.DataFrame]) -> None:
    report, _ = crowd_report
    console = Console(record=True, width=120)
    print_report(report, console)
    text = console.export_text()
    assert "Agreement is" in text and "Krippendorff" in text
    assert "carol" in text and "position bias" in text
    assert "b3" in text


def test_audit_needs_something_to_audit() -> None:
    with pytest.raises(UsageError):
        audit_dataset()


def test_empty_inputs_give_a_report_that_says_so() -> None:
    from preflab.records import JUDGMENT_SCHEMA, PAIR_SCHEMA

    report = audit_dataset(PAIR_SCHEMA.empty_table(), JUDGMENT_SCHEMA.empty_table(), n_resamples=10)
    assert report["pairs"] == 0
    assert [f["id"] for f in report["findings"]] == ["empty"]
    _check_html(render_html(report))
    assert json.loads(report_to_json(report))["findings"][0]["severity"] == "note"
