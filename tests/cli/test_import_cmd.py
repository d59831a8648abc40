"""``preflab import`` end to end: a real process on the real HH-RLHF sample."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from preflab.store.engine import make_engine
from preflab.store.queries import count_rows, read_judgments
from tests.cli_process import run_cli


def _counts(workspace: Path) -> dict[str, int]:
    engine = make_engine(f"sqlite:///{workspace / 'preflab.sqlite'}")
    try:
        return count_rows(engine)
    finally:
        engine.dispose()


def test_help_shows_an_example() -> None:
    proc = run_cli("import", "--help")
    assert 0 == proc.returncode, proc.stderr
    assert "preflab import hh-rlhf" in proc.stdout
    assert "--skip-invalid" in proc.stdout


def test_import_hh_sample_then_again_is_already_imported(hh_sample: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    first = run_cli("import", "hh-rlhf", str(hh_sample), "--workspace", str(ws), "--json")
    assert 0 == first.returncode, first.stderr
    (summary,) = json.loads(first.stdout)["imports"]
    assert (400, 399, 1) == (
        summary["counts"]["rows"],
        summary["counts"]["judgments"],
        summary["counts"]["dropped_empty_response"],
    )
    assert not summary["already_imported"]
    second = run_cli("import", "hh-rlhf", str(hh_sample), "--workspace", str(ws), "--json")
    assert 0 == second.returncode, second.stderr
    assert json.loads(second.stdout)["imports"][0]["already_imported"]
    assert 399 == _counts(ws)["judgments"]
    assert 1 == _counts(ws)["imports"]


def test_summary_table_names_counts_and_rules(hh_sample: Path, tmp_path: Path) -> None:
    proc = run_cli(
        "import",
        "hh-rlhf",
        str(hh_sample),
        "--workspace",
        str(tmp_path / "ws"),
        "--project",
        "harmless",
    )
    assert 0 == proc.returncode, proc.stderr
    assert "judgments added" in proc.stdout
    assert "dropped by rule: empty response 1" in proc.stdout
    assert "created project harmless" in proc.stdout  # the id rule is collect's


def test_bad_row_exits_1_naming_file_line_field_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = {
        "chosen": "\n\nHuman: hi\n\nAssistant: hello",
        "rejected": "\n\nHuman: hi\n\nAssistant: go away",
    }
    bad.write_text(json.dumps(good) + "\n" + json.dumps({"chosen": None, "rejected": "x"}) + "\n")
    ws = tmp_path / "ws"
    proc = run_cli("import", "hh-rlhf", str(bad), "--workspace", str(ws))
    assert 1 == proc.returncode
    message = " ".join(proc.stderr.split())
    assert 'bad.jsonl, line 2, field "chosen"' in message
    assert "Traceback" not in proc.stderr
    assert 0 == _counts(ws)["judgments"]
    assert 0 == _counts(ws)["imports"]


def test_skip_invalid_imports_the_rest_and_lists_skipped_rows(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl.gz"
    good = {
        "chosen": "\n\nHuman: hi\n\nAssistant: hello",
        "rejected": "\n\nHuman: hi\n\nAssistant: go away",
    }
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(good) + "\n{not json\n")
    ws = tmp_path / "ws"
    proc = run_cli(
        "import", "hh-rlhf", str(path), "--workspace", str(ws), "--skip-invalid", "--json"
    )
    assert 0 == proc.returncode, proc.stderr
    (summary,) = json.loads(proc.stdout)["imports"]
    assert (1, 1) == (summary["counts"]["judgments"], summary["counts"]["skipped"])
    assert ["line 2" in p for p in summary["problems"]] == [True]
    assert 1 == _counts(ws)["judgments"]


def test_generic_jsonl_with_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "votes.jsonl"
    path.write_text(json.dumps({"question": "2+2?", "good": "4", "bad": "5"}) + "\n")
    ws = tmp_path / "ws"
    proc = run_cli(
        "import",
        "jsonl",
        str(path),
        "--workspace",
        str(ws),
        "--map",
        "question=prompt",
        "--map",
        "good=chosen",
        "--map",
        "bad=rejected",
        "--json",
    )
    assert 0 == proc.returncode, proc.stderr
    assert 1 == json.loads(proc.stdout)["imports"][0]["counts"]["judgments"]


def test_malformed_map_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "votes.jsonl"
    path.write_text("{}\n")
    proc = run_cli(
        "import", "jsonl", str(path), "--workspace", str(tmp_path / "ws"), "--map", "nonsense"
    )
    assert 2 == proc.returncode
    assert "COLUMN=FIELD" in proc.stderr


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_import_into_postgresql_by_db_flag_and_env(hh_sample: Path, db_url: str) -> None:
    assert db_url.startswith("postgresql+psycopg://")
    proc = run_cli("import", "hh-rlhf", str(hh_sample), "--db", db_url, "--project", "pg")
    assert 0 == proc.returncode, proc.stderr
    again = run_cli(
        "import",
        "hh-rlhf",
        str(hh_sample),
        "--project",
        "pg",
        "--json",
        env={"PREFLAB_DATABASE_URL": db_url},
    )
    assert 0 == again.returncode, again.stderr
    assert json.loads(again.stdout)["imports"][0]["already_imported"]
    engine = make_engine(db_url)
    try:
        assert 399 == read_judgments(engine).num_rows
        assert 399 == count_rows(engine)["items"]
    finally:
        engine.dispose()


_SPLIT = {  # two Assistant turns in a row, as in 15 real helpful-base test rows (texts made up)
    "chosen": "\n\nHuman: Name two composers.\n\nAssistant: Bach\n\nAssistant: and Bartók.",
    "rejected": "\n\nHuman: Name two composers.\n\nAssistant: I don't know any.",
}
_GOOD = {
    "chosen": "\n\nHuman: hi\n\nAssistant: hello",
    "rejected": "\n\nHuman: hi\n\nAssistant: go away",
}


def test_consecutive_turns_are_dropped_by_default_and_listed_with_file_and_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "split.jsonl"
    path.write_text(json.dumps(_GOOD) + "\n" + json.dumps(_SPLIT) + "\n")
    proc = run_cli("import", "hh-rlhf", str(path), "--workspace", str(tmp_path / "ws"))
    assert 0 == proc.returncode, proc.stderr
    assert "split.jsonl: dropped by rule: consecutive turns 1" in proc.stdout
    assert "line 2" in proc.stdout.split("where")[1]


def test_consecutive_turns_merge_imports_the_row_and_counts_it(tmp_path: Path) -> None:
    path = tmp_path / "split.jsonl"
    path.write_text(json.dumps(_GOOD) + "\n" + json.dumps(_SPLIT) + "\n")
    ws = tmp_path / "ws"
    proc = run_cli(
        "import", "hh-rlhf", str(path), "--workspace", str(ws), "--consecutive-turns", "merge",
        "--json",
    )
    assert 0 == proc.returncode, proc.stderr
    (summary,) = json.loads(proc.stdout)["imports"]
    assert (summary["counts"]["judgments"], summary["counts"]["merged_consecutive_turns"]) == (2, 1)
    assert [n for n in summary["notes"] if "line 2" in n and "joined with a blank line" in n]
    assert 2 == _counts(ws)["judgments"]


def test_consecutive_turns_on_a_format_without_the_rule_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "shp.jsonl"
    path.write_text("{}\n")
    proc = run_cli(
        "import", "shp", str(path), "--workspace", str(tmp_path / "ws"),
        "--consecutive-turns", "merge",
    )
    assert 2 == proc.returncode, (proc.stdout, proc.stderr)
    assert "takes no option 'consecutive_turns'" in " ".join(proc.stderr.split())


def test_new_importers_run_from_the_cli(tmp_path: Path) -> None:
    pku = tmp_path / "pku.jsonl"
    pku.write_text(json.dumps({
        "prompt": "Is it safe to mix bleach and ammonia?", "response_0": "Yes, go ahead.",
        "response_1": "No: it releases toxic chloramine gas.", "is_response_0_safe": False,
        "is_response_1_safe": True, "better_response_id": 1, "safer_response_id": 1,
    }) + "\n")  # fmt: skip
    nectar = tmp_path / "nectar.jsonl"
    nectar.write_text(json.dumps({
        "prompt": "\n\nHuman: Say hi.\n\nAssistant:", "turns": 1, "num_responses": 2,
        "answers": [{"answer": "Hi!", "model": "gpt-4", "rank": 1.0},
                    {"answer": "No.", "model": "llama-2-7b-chat", "rank": 2.0}],
        "source": ["sharegpt"], "good_natured": True,
    }) + "\n")  # fmt: skip
    ws = tmp_path / "ws"
    for fmt, path, judgments in (("pku-saferlhf", pku, 4), ("nectar", nectar, 1)):
        proc = run_cli("import", fmt, str(path), "--workspace", str(ws), "--json")
        assert 0 == proc.returncode, proc.stderr
        assert judgments == json.loads(proc.stdout)["imports"][0]["counts"]["judgments"]
    assert 5 == _counts(ws)["judgments"]


def test_summary_counts_records_the_workspace_already_held(hh_sample: Path, tmp_path: Path) -> None:
    # the first 50 lines again, in a second file: their records are stored, not added twice
    with gzip.open(hh_sample, "rt", encoding="utf-8") as f:
        head = [next(f) for _ in range(50)]
    rows = [json.loads(line) for line in head]
    part = tmp_path / "part.jsonl"
    part.write_text("".join(head), encoding="utf-8")
    ws = str(tmp_path / "ws")
    assert 0 == run_cli("import", "hh-rlhf", str(hh_sample), "--workspace", ws).returncode
    proc = run_cli("import", "hh-rlhf", str(part), "--workspace", ws)
    assert 0 == proc.returncode, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "already stored (same id)" in x)
    usable = [r for r in rows if r["chosen"].rsplit("\n\nAssistant:", 1)[1].strip()
              and r["rejected"].rsplit("\n\nAssistant:", 1)[1].strip()]
    # one prompt, two responses and one judgment per usable line, all already stored
    assert int(line.split()[-2].replace(",", "")) == 4 * len(usable)
