"""Generic JSONL / CSV / Parquet readers with a column mapping."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from preflab.errors import InputError, UsageError
from preflab.formats.registry import read
from preflab.records import make_prompt_id, make_response_id

MAPPING = {
    "prompt": "question",
    "chosen": "good",
    "rejected": "bad",
    "judge": "annotator",
    "chosen_model": "good_model",
}
ROWS = [
    {"question": "2+2?", "good": "4", "bad": "5", "annotator": "ann-1", "good_model": "m1"},
    {
        "question": "Capital of France?",
        "good": "Paris",
        "bad": "Lyon",
        "annotator": "",
        "good_model": "",
    },
]


def _expected_pairs():
    out = []
    for row in ROWS:
        pid = make_prompt_id([{"role": "user", "content": row["question"]}])
        out.append(
            (
                pid,
                make_response_id(pid, row["good"], row["good_model"] or None),
                make_response_id(pid, row["bad"]),
            )
        )
    return out


def _write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("container", ["jsonl", "csv", "parquet"])
def test_mapped_preference_rows_in_every_container(tmp_path, records_of, container):
    path = tmp_path / f"data.{container}"
    if container == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    elif container == "csv":
        _write_csv(path, ROWS)
    else:
        pq.write_table(pa.Table.from_pylist(ROWS), path)
    chunk = read(container, path, mapping=MAPPING)
    judgments = records_of(chunk)["judgments"]
    expected = _expected_pairs()
    assert [(j.prompt_id, j.response_ids[0], j.response_ids[1]) for j in judgments] == expected
    # ann-1 for row 1; an empty judge cell falls back to the format name
    assert [j.judge_id for j in judgments] == ["ann-1", container]
    lines = [2, 3] if container == "csv" else [1, 2]  # CSV line 1 is the header
    assert [j.source_line for j in judgments] == lines


def test_identity_mapping_reads_trl_columns(write_jsonl):
    path = write_jsonl([{"prompt": "Q", "completion": "A", "label": "yes"}])
    chunk = read("jsonl", path)
    assert chunk.judgments.column("binary").to_pylist()[0]["label"] is True


def test_csv_cells_holding_json_messages_are_decoded(tmp_path):
    rows = [
        {
            "prompt": json.dumps([{"role": "user", "content": "Hi"}]),
            "chosen": json.dumps([{"role": "assistant", "content": "Hello"}]),
            "rejected": "Go away",
            "system": "Be kind.",
        }
    ]
    chunk = read("csv", _write_csv(tmp_path / "c.csv", rows))
    assert chunk.prompts.column("messages").to_pylist() == [
        [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    ]
    assert chunk.responses.column("content").to_pylist() == ["Hello", "Go away"]


def test_errors_name_the_files_own_column(write_jsonl):
    path = write_jsonl([{"question": "Q", "good": 4, "bad": "B"}])
    with pytest.raises(InputError) as info:
        read("jsonl", path, mapping={"prompt": "question", "chosen": "good", "rejected": "bad"})
    assert info.value.field == "good"


def test_rows_without_known_columns_ask_for_a_mapping(write_jsonl):
    with pytest.raises(InputError, match="pass a mapping"):
        read("jsonl", write_jsonl([{"q": "x", "a": "y"}]))


def test_unknown_mapping_field_is_a_usage_error(write_jsonl):
    with pytest.raises(UsageError, match="unknown mapping field 'answer'"):
        read("jsonl", write_jsonl([{"q": "x"}]), mapping={"answer": "a"})


def test_csv_row_with_too_many_cells_is_named(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("prompt,chosen,rejected\nQ,A,B\nQ,A,B,extra\n")
    chunk = read("csv", path, skip_invalid=True)
    assert [(p.line, p.message) for p in chunk.problems] == [
        (3, "the row has 4 cells but the header names 3 columns")
    ]


def _shown_rows(n: int, first_share: float, seed: int = 0) -> list[dict[str, str]]:
    """Rows whose ``side`` column says which answer was shown first (left)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [
        {"q": f"question {i}", "good": f"good answer {i}", "bad": f"bad answer {i}",
         "who": f"ann-{i % 3}", "side": "chosen" if rng.random() < first_share else "rejected"}
        for i in range(n)
    ]


def test_shown_first_column_orders_response_ids_and_clears_order_unknown(tmp_path, records_of):
    rows = _shown_rows(3, 0.5)
    rows[0]["side"], rows[1]["side"], rows[2]["side"] = "chosen", "Rejected ", ""
    mapping = {"prompt": "q", "chosen": "good", "rejected": "bad", "shown_first": "side"}
    judgments = records_of(read("csv", _write_csv(tmp_path / "s.csv", rows), mapping=mapping))["judgments"]
    preferred = [j.pairwise.preferred for j in judgments]
    assert [j.response_ids[0] == p for j, p in zip(judgments, preferred, strict=True)] == [True, False, True]
    # an empty cell: the order was not recorded, as for files without the column
    assert [list(j.flags) for j in judgments] == [[], [], ["order_unknown"]]


@pytest.mark.parametrize("value", ["left", "1"])
def test_bad_shown_first_value_names_line_and_column(tmp_path, value):
    rows = _shown_rows(2, 1.0)
    rows[1]["side"] = value
    mapping = {"prompt": "q", "chosen": "good", "rejected": "bad", "shown_first": "side"}
    with pytest.raises(InputError) as info:
        read("csv", _write_csv(tmp_path / "bad.csv", rows), mapping=mapping)
    assert (info.value.line, info.value.field) == (3, "side")  # line 1 is the header
    assert "expected 'chosen' or 'rejected'" in str(info.value) and repr(value) in str(info.value)


def _cli(*args: str):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFLAB_")}
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "preflab.cli.main", *args],
                          check=False, capture_output=True, text=True, env=env, timeout=300)


def test_imported_shown_order_feeds_the_position_bias_audit(tmp_path, db_url):
    """A CSV whose ``side`` column records the shown order: the audit's position check uses it."""
    rows = _shown_rows(120, 0.8, seed=5)
    rows[7]["side"] = rows[8]["side"] = ""  # order not recorded on two rows
    path = _write_csv(tmp_path / "votes.csv", rows)
    maps = ["--map", "q=prompt", "--map", "good=chosen", "--map", "bad=rejected",
            "--map", "who=judge", "--map", "side=shown_first"]
    imp = _cli("import", "csv", str(path), *maps, "--db", db_url, "--project", "votes")
    assert 0 == imp.returncode, imp.stderr
    audit = _cli("audit", "--project", "votes", "--db", db_url, "--json", "--resamples", "0")
    assert 0 == audit.returncode, audit.stderr
    position = json.loads(audit.stdout)["sections"]["position"]
    first = sum(r["side"] == "chosen" for r in rows)
    assert (position["overall"]["successes"], position["overall"]["trials"]) == (first, 118)
    assert position["order_unknown"] == 2
    assert position["overall"]["p_value"] < 1e-6  # the planted 80% first-shown preference


def test_bad_shown_first_value_exits_1_and_imports_nothing(tmp_path, db_url):
    rows = _shown_rows(4, 1.0)
    rows[2]["side"] = "left"
    path = _write_csv(tmp_path / "votes.csv", rows)
    maps = ["--map", "q=prompt", "--map", "good=chosen", "--map", "bad=rejected",
            "--map", "side=shown_first"]
    imp = _cli("import", "csv", str(path), *maps, "--db", db_url, "--project", "votes")
    assert 1 == imp.returncode
    message = " ".join(imp.stderr.split())
    assert 'line 4, field "side"' in message and "'left'" in message
    audit = _cli("audit", "--project", "votes", "--db", db_url, "--json", "--resamples", "0")
    assert "Traceback" not in audit.stderr
    assert 0 != audit.returncode or json.loads(audit.stdout)["pairs"] == 0
