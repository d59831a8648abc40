"""``preflab audit`` end to end: a real process on the real HH-RLHF sample and on a workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lxml.html


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFLAB_")}
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "preflab.cli.main", *args],
                          check=False, capture_output=True, text=True, env=env, timeout=300)


def test_help_shows_an_example() -> None:
    proc = run_cli("audit", "--help")
    assert 0 == proc.returncode, proc.stderr
    assert "preflab audit hh-rlhf" in proc.stdout and "--html" in proc.stdout


def test_audit_hh_file_prints_findings_and_writes_html(hh_sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    proc = run_cli("audit", "hh-rlhf", str(hh_sample), "--html", str(out), "--resamples", "0")
    assert 0 == proc.returncode, proc.stderr
    assert "Chosen is shorter more often than longer" in proc.stdout
    assert "Figure only:" in proc.stdout  # whole-transcript similarity, not a warning (issue 15)
    doc = lxml.html.fromstring(out.read_text(encoding="utf-8"))
    assert doc.cssselect("svg.chart") and doc.cssselect("div.pair[id^='pair-']")
    assert not doc.cssselect("h2#gold, h2#batches")  # no gold items, no batches in an HH file
    assert not (tmp_path / "report.html.part").exists()


def test_audit_json_has_the_figures(hh_sample: Path) -> None:
    proc = run_cli("audit", "hh-rlhf", str(hh_sample), "--json", "--resamples", "0")
    assert 0 == proc.returncode, proc.stderr
    data = json.loads(proc.stdout)
    words = data["sections"]["length"]["words"]
    assert (words["chosen_longer"], words["chosen_shorter"], words["pairs"]) == (178, 208, 399)
    assert data["sections"]["transcript_similarity"]["high"] > 40


def test_audit_a_project_in_the_workspace(hh_sample: Path, db_url: str) -> None:
    imp = run_cli("import", "hh-rlhf", str(hh_sample), "--db", db_url, "--project", "harmless")
    assert 0 == imp.returncode, imp.stderr
    proc = run_cli("audit", "--project", "harmless", "--db", db_url, "--json", "--resamples", "0")
    assert 0 == proc.returncode, proc.stderr
    data = json.loads(proc.stdout)
    assert data["pairs"] == 399
    assert data["sections"]["length"]["words"]["chosen_shorter"] == 208


def test_unknown_project_is_a_clear_error(db_url: str) -> None:
    proc = run_cli("audit", "--project", "nope", "--db", db_url)
    assert 1 == proc.returncode
    assert "no project 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_file_and_project_together_is_a_usage_error(hh_sample: Path) -> None:
    proc = run_cli("audit", "hh-rlhf", str(hh_sample), "--project", "x")
    assert 2 == proc.returncode
    assert "either FORMAT PATH or --project" in proc.stderr


def test_gold_judge_and_eval_set_from_the_command_line(tmp_path: Path) -> None:
    # distinct questions: templated ones differing in a number are near-duplicates to the
    # contamination check's similarity test
    topics = ["capital city of Peru", "boiling point of ethanol", "author of Middlemarch",
              "speed of sound in water", "largest moon of Saturn", "year the Berlin wall fell"]
    questions = [f"Question {i}: please tell me, as precisely as you can, what the {t} is, with a source?"
                 for i, t in enumerate(topics)]
    rows = []
    for i, q in enumerate(questions):
        for judge, right in (("expert", True), ("ann", True), ("bob", i % 2 == 0), ("cy", i % 3 != 0)):
            good, bad = f"The capital is city {i}.", f"I do not know about {i}."
            rows.append({"prompt": q, "chosen": good if right else bad, "rejected": bad if right else good,
                         "judge": judge})
    votes = tmp_path / "votes.jsonl"
    votes.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    evals = tmp_path / "evals.txt"
    evals.write_text(questions[2] + "\n")
    proc = run_cli("audit", "jsonl", str(votes), "--gold-judge", "expert", "--eval-set", str(evals),
                   "--json", "--resamples", "0")
    assert 0 == proc.returncode, proc.stderr
    data = json.loads(proc.stdout)
    per = {j["judge_id"]: j for j in data["sections"]["agreement"]["judge_agreement"]}
    assert set(per) == {"ann", "bob", "cy"}  # the gold judge is not audited as an annotator
    assert per["ann"]["gold_accuracy"] == 1.0 and per["bob"]["gold_accuracy"] == 0.5
    assert data["sections"]["contamination"]["contaminated_rows"] == 3  # question 2, judged by three


def test_bad_eval_set_fails_before_reading_the_data(tmp_path: Path, hh_sample: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok"}\nnot json\n')
    proc = run_cli("audit", "hh-rlhf", str(hh_sample), "--eval-set", str(bad))
    assert 1 == proc.returncode
    assert "bad.jsonl" in proc.stderr and "line 2" in proc.stderr


def test_ray_address_without_the_ray_engine_is_a_usage_error(hh_sample: Path) -> None:
    proc = run_cli("audit", "hh-rlhf", str(hh_sample), "--ray-address", "127.0.0.1:6379")
    assert 2 == proc.returncode
    assert "--ray-address needs --engine ray" in proc.stderr
