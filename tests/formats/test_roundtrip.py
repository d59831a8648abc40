"""Property tests: files written from generated records read back to the same records."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.strategies import conversations, judgments, texts

from preflab.formats.hh_rlhf import parse_transcript
from preflab.formats.registry import iter_read, read
from preflab.records import (
    Judgment,
    Prompt,
    Response,
    normalize_text,
    records_to_table,
    table_to_records,
)

_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# HH transcripts cannot carry a blank line followed by a speaker marker inside a turn
_HH_TEXT = texts().filter(
    lambda s: "\n\nHuman:" not in s and "\n\nAssistant:" not in s and "\n\n" not in s
)


def _transcript(messages):
    names = {"user": "Human", "assistant": "Assistant"}
    return "".join(f"\n\n{names[m['role']]}: {m['content']}" for m in messages)


@_SETTINGS
@given(context=conversations(text=_HH_TEXT, system=False), chosen=_HH_TEXT, rejected=_HH_TEXT)
def test_hh_transcripts_read_back_to_their_messages(tmp_path_factory, context, chosen, rejected):
    path: Path = tmp_path_factory.mktemp("hh") / "hh.jsonl"
    row = {
        "chosen": _transcript([*context, {"role": "assistant", "content": chosen}]),
        "rejected": _transcript([*context, {"role": "assistant", "content": rejected}]),
    }
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    chunk = read("hh-rlhf", path)
    stripped = [{"role": m["role"], "content": m["content"].strip()} for m in context]
    assert parse_transcript(row["chosen"])[:-1] == stripped
    if normalize_text(chosen) == normalize_text(rejected):
        assert chunk.counts.get("dropped_identical") == 1
    else:
        assert chunk.prompts.column("messages").to_pylist() == [stripped]
        assert chunk.responses.column("content").to_pylist() == [chosen.strip(), rejected.strip()]


@_SETTINGS
@given(rows=st.lists(st.tuples(conversations(), texts(), texts()), min_size=1, max_size=6))
def test_trl_conversational_rows_round_trip(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("trl") / "p.jsonl"
    written = [
        {
            "prompt": p,
            "chosen": [{"role": "assistant", "content": c}],
            "rejected": [{"role": "assistant", "content": r}],
        }
        for p, c, r in rows
    ]
    path.write_text("".join(json.dumps(w) + "\n" for w in written), encoding="utf-8")
    chunk = read("trl-preference", path, chunk_size=2)
    prompts = {p.prompt_id: p for p in table_to_records(chunk.prompts, Prompt)}
    resp = {r.response_id: r for r in table_to_records(chunk.responses, Response)}
    back = []
    for j in table_to_records(chunk.judgments, Judgment):
        chosen = resp[j.pairwise.preferred].content
        rejected = next(resp[r].content for r in j.response_ids if r != j.pairwise.preferred)
        back.append(
            {
                "prompt": [m.model_dump() for m in prompts[j.prompt_id].messages],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    kept = [
        w
        for w in written
        if normalize_text(w["chosen"][0]["content"]) != normalize_text(w["rejected"][0]["content"])
    ]
    assert back == kept
    assert chunk.counts.get("dropped_identical", 0) == len(written) - len(kept)


@_SETTINGS
@given(data=judgments())
def test_generated_judgments_read_back_identically_from_parquet(tmp_path_factory, data):
    """Record tables written as generic Parquet keep every generated judgment valid."""
    _prompt, _resps, judgment = data
    table = records_to_table([judgment])
    path = tmp_path_factory.mktemp("pq") / "j.parquet"
    import pyarrow.parquet as pq

    pq.write_table(table, path)
    assert table_to_records(pq.read_table(path), Judgment) == [judgment]


def test_ids_do_not_depend_on_chunking(hh_sample):
    whole = read("hh-rlhf", hh_sample, chunk_size=10_000)
    pieces = [c.judgments for c in iter_read("hh-rlhf", hh_sample, chunk_size=7)]
    import pyarrow as pa

    assert (
        pa.concat_tables(pieces).column("judgment_id").equals(whole.judgments.column("judgment_id"))
    )


_CSV_TEXT = texts().filter(lambda s: not s.lstrip().startswith("["))


@_SETTINGS
@given(rows=st.lists(st.tuples(_CSV_TEXT, _CSV_TEXT, _CSV_TEXT), min_size=1, max_size=5))
def test_csv_cells_with_quotes_commas_and_newlines_round_trip(tmp_path_factory, rows):
    import csv

    path = tmp_path_factory.mktemp("csv") / "p.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "chosen", "rejected"])
        writer.writerows(rows)
    chunk = read("csv", path)
    prompts = {p.prompt_id: p for p in table_to_records(chunk.prompts, Prompt)}
    resp = {r.response_id: r.content for r in table_to_records(chunk.responses, Response)}
    back = [
        (prompts[j.prompt_id].messages[0].content, resp[j.response_ids[0]], resp[j.response_ids[1]])
        for j in table_to_records(chunk.judgments, Judgment)
    ]
    kept = [r for r in rows if normalize_text(r[1]) != normalize_text(r[2])]
    assert back == kept
