"""``preflab leaderboard`` end to end, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lxml.html
import numpy as np
import pytest

from preflab.arena import read_battles


def _preflab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "preflab.cli.main", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def battle_file(tmp_path: Path, simulate_battles) -> Path:
    df, _ = simulate_battles(
        np.array([0.8, 0.2, -0.2, -0.8]), 2_000, seed=31, tie_model="random", tie_share=0.1
    )
    winners = {"a": "model_a", "b": "model_b", "tie": "tie"}
    path = tmp_path / "battles.jsonl"
    with path.open("w") as fh:
        for n, row in enumerate(df.iter_rows(named=True)):
            winner = "tie (bothbad)" if n % 25 == 0 else winners[row["outcome"]]
            fh.write(
                json.dumps(
                    {
                        "model_a": row["model_a"],
                        "model_b": row["model_b"],
                        "winner": winner,
                        "anony": n % 10 != 0,
                        "judge": f"u{n % 5}",
                    }
                )
                + "\n"
            )
    return path


def test_json_output_matches_the_library(battle_file: Path) -> None:
    proc = _preflab(
        "leaderboard",
        str(battle_file),
        "--json",
        "--rounds",
        "20",
        "--seed",
        "4",
        "--anchor",
        "m03",
        "--anchor-rating",
        "1100",
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [r["model"] for r in data["ratings"]] == ["m00", "m01", "m02", "m03"]
    assert data["ratings"][-1]["rating"] == pytest.approx(1100.0)
    assert data["hygiene"]["steps"][1]["dropped"] == 200  # every 10th vote is not anonymous
    assert data["settings"]["battles"] == 1_800
    from preflab.arena import build_leaderboard, leaderboard_to_dict

    expected = leaderboard_to_dict(
        build_leaderboard(
            read_battles(battle_file), rounds=20, seed=4, anchor="m03", anchor_rating=1100
        )
    )
    assert data["ratings"] == json.loads(json.dumps(expected["ratings"]))


def test_table_output_and_html_page(battle_file: Path, tmp_path: Path) -> None:
    page = tmp_path / "out" / "board.html"
    proc = _preflab(
        "leaderboard",
        str(battle_file),
        "--rounds",
        "20",
        "--html",
        str(page),
        "--max-votes-per-judge",
        "300",
        "--ties",
        "davidson",
    )
    assert proc.returncode == 0, proc.stderr
    assert "m00" in proc.stdout and "95% interval" in proc.stdout
    assert "fitted tie parameter (davidson)" in proc.stdout
    assert "judge_cap: " in proc.stdout
    doc = lxml.html.fromstring(page.read_text())
    assert len(doc.cssselect("#ratings-table tbody tr")) == 4
    assert not list(page.parent.glob(".*.tmp"))


def test_bad_row_exits_1_naming_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"model_a": "x", "model_b": "y", "winner": "model_a"}\n'
        '{"model_a": "x", "model_b": "y", "winner": "left"}\n'
    )
    proc = _preflab("leaderboard", str(path))
    assert proc.returncode == 1
    message = " ".join(proc.stderr.split())  # rich wraps at the terminal width
    assert 'bad.jsonl, line 2, field "winner"' in message
    assert "Traceback" not in proc.stderr


def test_unknown_tie_rule_exits_2(battle_file: Path) -> None:
    proc = _preflab("leaderboard", str(battle_file), "--ties", "coin-flip")
    assert proc.returncode == 2
    assert "ties must be one of" in proc.stderr


def test_reader_arena_gives_the_same_board_as_the_plain_battle_file(
    tmp_path: Path, simulate_battles
) -> None:
    df, _ = simulate_battles(np.array([0.5, 0.0, -0.5]), 300, seed=41)
    winners = {"a": "model_a", "b": "model_b"}
    path = tmp_path / "arena.jsonl"

    def conv(n: int, side: str) -> list[dict[str, str]]:
        return [
            {"role": "user", "content": f"question {n}"},
            {"role": "assistant", "content": f"answer {n} from side {side}"},
        ]

    with path.open("w") as fh:
        for n, row in enumerate(df.iter_rows(named=True)):
            fh.write(
                json.dumps(
                    {
                        "question_id": f"q{n}",
                        "model_a": row["model_a"],
                        "model_b": row["model_b"],
                        "winner": winners[row["outcome"]],
                        "judge": f"u{n % 4}",
                        "anony": n % 7 != 0,
                        "tstamp": 1_700_000_000 + n,
                        "conversation_a": conv(n, "a"),
                        "conversation_b": conv(n, "b"),
                    }
                )
                + "\n"
            )
    common = ["--json", "--rounds", "10"]
    direct = _preflab("leaderboard", str(path), *common)
    via_reader = _preflab("leaderboard", str(path), "--reader", "arena", *common)
    assert direct.returncode == 0, direct.stderr
    assert via_reader.returncode == 0, via_reader.stderr
    a, b = json.loads(direct.stdout), json.loads(via_reader.stdout)
    assert a["settings"]["battles"] == b["settings"]["battles"] == 300 - 43
    assert [r["rating"] for r in a["ratings"]] == pytest.approx([r["rating"] for r in b["ratings"]])


def _write_style_battles(path: Path, rows: list[dict[str, object]], counts: str) -> None:
    """Write battles whose ``conv_metadata`` holds integer counts or dicts of counts."""
    with path.open("w") as fh:
        for row in rows:
            meta: dict[str, object] = {}
            for side in ("a", "b"):
                meta[f"sum_assistant_{side}_tokens"] = row[f"tokens_{side}"]
                for key in ("header_count", "list_count", "bold_count"):
                    n = int(row[f"{key}_{side}"])  # type: ignore[call-overload]
                    # FastChat's dict shape: one count per kind, summed by preprocess_for_style
                    meta[f"{key}_{side}"] = n if counts == "int" else {"x": n // 2, "y": n - n // 2}
            fh.write(json.dumps({k: row[k] for k in ("model_a", "model_b", "winner")}
                                | {"conv_metadata": meta}) + "\n")


def test_style_control_reads_integer_counts_like_dict_counts(tmp_path: Path, simulate_battles) -> None:
    """Chatbot Arena files carry header/list/bold counts as ints or dicts; both give one board."""
    df, _ = simulate_battles(np.array([0.6, 0.1, -0.1, -0.6]), 600, seed=53)
    rng = np.random.default_rng(53)
    winners = {"a": "model_a", "b": "model_b"}
    rows: list[dict[str, object]] = []
    for row in df.iter_rows(named=True):
        rec: dict[str, object] = {"model_a": row["model_a"], "model_b": row["model_b"],
                                  "winner": winners[row["outcome"]]}
        for side in ("a", "b"):
            rec[f"tokens_{side}"] = int(rng.integers(20, 600))
            for key in ("header_count", "list_count", "bold_count"):
                rec[f"{key}_{side}"] = int(rng.integers(0, 6))
        rows.append(rec)
    as_int, as_dict = tmp_path / "int.jsonl", tmp_path / "dict.jsonl"
    _write_style_battles(as_int, rows, "int")
    _write_style_battles(as_dict, rows, "dict")
    common = ["--json", "--rounds", "10", "--seed", "2", "--style-control"]
    by_int = _preflab("leaderboard", str(as_int), *common)
    by_dict = _preflab("leaderboard", str(as_dict), *common)
    assert by_int.returncode == 0, by_int.stderr
    assert by_dict.returncode == 0, by_dict.stderr
    a, b = json.loads(by_int.stdout)["style_control"], json.loads(by_dict.stdout)["style_control"]
    assert set(a["coefficients"]) == {"length", "headers", "lists", "bold"}
    assert a == b


def test_style_count_of_the_wrong_type_exits_1_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad_style.jsonl"
    meta = {"sum_assistant_a_tokens": 10, "sum_assistant_b_tokens": 12,
            "header_count_a": "two", "header_count_b": "one"}
    path.write_text(json.dumps({"model_a": "x", "model_b": "y", "winner": "model_a",
                                "conv_metadata": meta}) + "\n")
    proc = _preflab("leaderboard", str(path), "--style-control")
    assert proc.returncode == 1
    message = " ".join(proc.stderr.split())
    assert 'field "conv_metadata.header_count_a"' in message
    assert "Traceback" not in proc.stderr
