"""The dataset card beside every export."""

from __future__ import annotations

import pyarrow as pa
from markdown_it import MarkdownIt

from preflab.formats.card import CardInfo, render_dataset_card, summarize_rules, summarize_sources


def _tables(text):
    """Return, per Markdown table in ``text``, its body rows as lists of cell texts."""
    tokens = MarkdownIt().enable("table").parse(text)
    tables, rows, row, in_body = [], [], None, False
    for t in tokens:
        if t.type == "table_open":
            rows = []
            tables.append(rows)
        elif t.type == "tbody_open":
            in_body = True
        elif t.type == "tbody_close":
            in_body = False
        elif in_body and t.type == "tr_open":
            row = []
        elif in_body and t.type == "inline" and row is not None:
            row.append(t.content)
        elif in_body and t.type == "tr_close":
            rows.append(row)
            row = None
    return tables


def test_summarize_rules_counts_each_rule_and_parameter_set():
    t = pa.table({"rule": ["a", "a", "b"], "rule_params": ['{"k": 1}', '{"k": 1}', '{"k": 2}']})
    assert summarize_rules(t) == [{"rule": "a", "params": {"k": 1}, "rows": 2},
                                  {"rule": "b", "params": {"k": 2}, "rows": 1}]


def test_summarize_sources_names_missing_sources_unknown():
    t = pa.table({"source": ["hh.jsonl", None, "hh.jsonl"]})
    assert summarize_sources(t) == {"hh.jsonl": 2, "unknown": 1}


def test_card_shows_counts_rules_sources_columns_and_how_to_load():
    info = CardInfo(
        title="Harmless pairs",
        export_format="trl-preference",
        file_format="parquet",
        split_counts={"train": 90, "test": 10},
        columns=["prompt", "chosen", "rejected", "judge_ids"],
        rules=[{"rule": "pairwise_likert", "params": {"tie_policy": "drop"}, "rows": 100}],
        sources={"hh.jsonl.gz": 100},
        derive_counts={"ties_dropped": 3},
        load_example='ds = load_dataset("parquet", data_files={"train": "x"})',
    )
    text = render_dataset_card(info, {"train": "train/data.parquet", "test": "test/data.parquet"})
    tables = _tables(text)
    assert ["train", "90"] in tables[0] and ["**total**", "100"] in tables[0]
    assert tables[1] == [["`pairwise_likert`", '`{"tie_policy": "drop"}`', "100"]]
    assert "- `hh.jsonl.gz`: 100 rows" in text
    assert "- `judge_ids`: the judges (annotators, AI judges) behind the row" in text
    assert "- ties_dropped: 3" in text
    assert 'load_dataset("parquet"' in text
    assert text.startswith("---\ntags:\n")
