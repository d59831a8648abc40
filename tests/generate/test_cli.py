"""``preflab generate`` and ``preflab judge`` end to end against the loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from preflab.cli.main import app


@pytest.fixture
def workspace(tmp_path: Path, fake):
    eps = tmp_path / "endpoints.yaml"
    eps.write_text(
        "endpoints:\n"
        f"  - {{name: ckpt, base_url: '{fake.base_url}', model: ckpt-model, revision: step-5, timeout: 2, max_attempts: 2, backoff_base: 0.01}}\n"
        f"  - {{name: other, base_url: '{fake.base_url}', model: other-model, timeout: 2, max_attempts: 2, backoff_base: 0.01}}\n"
        f"  - {{name: judge, base_url: '{fake.base_url}', model: judge-model, timeout: 2, max_attempts: 2, backoff_base: 0.01}}\n"
    )
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"prompt": "Say hi."}\n{"messages": [{"role": "user", "content": "Say bye."}]}\n'
    )
    return {"eps": str(eps), "prompts": str(prompts), "db": f"sqlite:///{tmp_path / 'ws.sqlite'}"}


def _run(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _fail(*args: str) -> tuple[str, str]:
    """Return the error class name and its text (``preflab``'s handler maps it to exit 2)."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code != 0
    return type(result.exception).__name__, str(result.exception)


def _candidates(workspace, *extra: str, prompts: str | None = None) -> list[str]:
    """``generate candidates`` on the workspace's endpoints, prompts (or ``prompts``), database."""
    return [
        "generate",
        "candidates",
        "--endpoints",
        workspace["eps"],
        "--prompts",
        prompts or workspace["prompts"],
        "--database-url",
        workspace["db"],
        *extra,
    ]


def _generate(workspace, *extra: str) -> dict:
    return _run(*_candidates(workspace, "--model", "other", "--json", *extra))


def _judge(workspace, *extra: str) -> list[str]:
    return [
        "judge",
        "pairwise",
        "--endpoints",
        workspace["eps"],
        "--judge",
        "judge",
        "--database-url",
        workspace["db"],
        "--json",
        *extra,
    ]


def test_generate_dry_run_calls_nothing(workspace, fake) -> None:
    out = _run(
        *_candidates(
            workspace, "--model", "ckpt", "--model", "other", "-n", "2", "--dry-run", "--json"
        )
    )
    assert out["jobs"][0]["planned"] == {"ckpt": 4, "other": 4}
    assert fake.total_calls() == 0


def test_generate_then_judge_then_rerun_is_cached(workspace, fake) -> None:
    fake.script(
        [
            {"pattern": r"Assistant A's Answer\]\necho\[ckpt", "reply": "[[A]]"},
            {"pattern": r"Assistant B's Answer\]\necho\[ckpt", "reply": "[[B]]"},
        ]
    )
    gen = _candidates(workspace, "--model", "other", "--on-policy", "ckpt", "--json")
    out = _run(*gen)
    assert (
        out["jobs"][0]["done"] == 4
        and out["responses"] == 4
        and out["prompts_missing_on_policy"] == 0
    )
    judged = _run(*_judge(workspace))
    assert judged["judgments"] == 2 and judged["inconsistent"] == 0
    calls = fake.total_calls()
    again = _run(*gen)
    assert again["jobs"][0]["cached"] == 4 and again["jobs"][0]["calls"] == 0
    assert fake.total_calls() == calls


def test_unknown_model_name_is_a_usage_error(workspace) -> None:
    result = CliRunner().invoke(app, _candidates(workspace, "--model", "nope"))
    assert result.exit_code != 0
    assert "no endpoint named 'nope'" in str(result.exception)


def test_bad_prompt_line_names_file_line_and_field(workspace, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": 3}\n')
    result = CliRunner().invoke(app, _candidates(workspace, prompts=str(bad)))
    err = result.exception
    assert (err.path, err.line, err.field) == (str(bad), 2, "prompt")


def test_generate_shows_progress_and_a_summary_table(workspace) -> None:
    result = CliRunner().invoke(app, _candidates(workspace, "--model", "ckpt"))
    assert result.exit_code == 0, result.output
    assert "req/s" in result.output and "ETA" in result.output
    assert "job summary" in result.output and "cached" in result.output


def test_judge_agreement_reports_ai_against_humans(workspace, fake) -> None:
    from preflab.generate.cache import open_engine
    from preflab.generate.writeback import save_judges, save_judgments, save_prompts, save_responses
    from preflab.records import Judge, Judgment, Message, PairwiseValue, Prompt, Response
    from preflab.store.unit_of_work import write_scope

    p = Prompt(messages=(Message(role="user", content="hi"),))
    a, b = (
        Response(prompt_id=p.prompt_id, content="hello", model="x"),
        Response(prompt_id=p.prompt_id, content="yo", model="y"),
    )
    engine = open_engine(workspace["db"])
    with write_scope(engine) as conn:
        save_prompts(conn, [p])
        save_responses(conn, [a, b])
        save_judges(
            conn, [Judge(judge_id="alice", kind="human"), Judge(judge_id="ai:j:t@1", kind="ai")]
        )
        save_judgments(
            conn,
            [
                Judgment(
                    judgment_id="h1",
                    prompt_id=p.prompt_id,
                    response_ids=(a.response_id, b.response_id),
                    kind="pairwise",
                    judge_id="alice",
                    pairwise=PairwiseValue(preferred=a.response_id),
                ),
                Judgment(
                    judgment_id="a1",
                    prompt_id=p.prompt_id,
                    response_ids=(b.response_id, a.response_id),
                    kind="pairwise",
                    judge_id="ai:j:t@1",
                    pairwise=PairwiseValue(preferred=a.response_id),
                ),
            ],
        )
    engine.dispose()
    out = _run("judge", "agreement", "--database-url", workspace["db"], "--json")
    assert out["agreement"] == [
        {
            "judge_id": "ai:j:t@1",
            "aspect": "preference",
            "items": 1,
            "agreement": 1.0,
            "kappa": None,
            "spearman": None,
            "mean_abs_error": None,
        }
    ]


def test_ifeval_math_revise_and_rubric_commands_run(workspace, fake, tmp_path: Path) -> None:
    fake.script(
        [
            {"pattern": "^Evaluate the assistant's response", "reply": "Rating: 3"},
            {"pattern": "refrain from the use of any commas", "reply": "Kyoto is calm and green."},
            {"pattern": "Describe Kyoto", "reply": "Kyoto is calm, green, and old."},
            {"pattern": "apples", "reply": "So: $\\boxed{1{seed}}$"},
            {"pattern": "^Identify specific ways", "reply": "It is curt."},
            {"pattern": "^Please rewrite", "reply": "A kinder answer."},
        ]
    )
    ifeval = tmp_path / "ifeval.jsonl"
    ifeval.write_text(
        json.dumps(
            {
                "prompt": "Describe Kyoto.",
                "instruction_id_list": ["punctuation:no_comma"],
                "kwargs": [{}],
            }
        )
        + "\n"
    )
    math = tmp_path / "math.jsonl"
    math.write_text(json.dumps({"prompt": "4 apples plus 6 apples?", "reference": "10"}) + "\n")
    common = ["--endpoints", workspace["eps"], "--database-url", workspace["db"], "--json"]
    out = _run("generate", "ifeval", "--model", "ckpt", "--prompts", str(ifeval), *common)
    assert out["pairs"] == 1 and out["skipped"] == 0
    out = _run("generate", "math", "--model", "ckpt", "--prompts", str(math), "-n", "2", *common)
    assert out["pairs"] == 1
    out = _run("generate", "revise", "--model", "ckpt", "--limit", "1", *common)
    assert out["revisions"] == 1 and [j["done"] for j in out["jobs"]] == [1, 1]
    out = _run(
        "judge", "rubric", "--judge", "judge", "--aspect", "helpfulness=Is it useful?", *common
    )
    assert out["failure_reasons"] == {}
    assert out["judgments"] == out["jobs"][0]["total"] == 5


def test_humans_without_project_and_unknown_project_are_refused_before_any_call(
    workspace, fake
) -> None:
    _generate(workspace, "-n", "2")
    fake.reset()
    code, text = _fail(*_judge(workspace, "--on-inconsistent", "humans"))
    assert code == "UsageError" and "pass --project" in text
    code, text = _fail(*_judge(workspace, "--on-inconsistent", "humans", "--project", "ghost"))
    assert code == "UsageError" and "project 'ghost' does not exist" in text
    assert "preflab projects create" in text
    assert fake.total_calls() == 0


def test_template_version_names_a_new_judge_and_a_rerun_says_it_called_nothing(
    workspace, fake
) -> None:
    fake.script(
        [
            {"pattern": r"Assistant A's Answer", "reply": "[[C]]"},
            {"pattern": r"^Say", "reply": "{seed}"},  # samples unlike each other: one pair each
        ]
    )
    _generate(workspace, "-n", "2")
    first = _run(*_judge(workspace))
    assert first["new_judgments"] == first["judgments"] == 2
    again = _run(*_judge(workspace))
    assert again["jobs"][0]["calls"] == 0 and again["new_judgments"] == 0
    assert again["already_stored"] == 2
    assert any("no call made" in note for note in again["notes"])
    v7 = _run(*_judge(workspace, "--template-version", "v7"))
    assert "@v7:" in v7["judge"] and v7["judge"] != first["judge"]
    assert v7["new_judgments"] == 2


def test_failed_requests_wait_for_retry_failed_and_the_summary_says_so(
    workspace, fake, tmp_path: Path
) -> None:
    prompts = tmp_path / "flaky.jsonl"
    prompts.write_text('{"prompt": "fine"}\n{"prompt": "flaky [[fault:500:2]]"}\n')
    args = ["--prompts", str(prompts)]
    first = _generate(workspace, *args)
    assert first["jobs"][0]["failed"] == 1  # max_attempts 2: both attempts got the 500
    kept = _generate(workspace, *args)
    assert kept["jobs"][0]["calls"] == 0 and kept["jobs"][0]["failed_earlier"] == 1
    assert any("--retry-failed" in note and "1 request(s)" in note for note in kept["notes"])
    retried = _generate(workspace, *args, "--retry-failed")
    assert retried["jobs"][0]["calls"] == 1 and retried["jobs"][0]["failed"] == 0
    assert retried["responses"] == 2


def test_ifeval_command_names_the_checks_it_cannot_run(workspace, fake, tmp_path: Path) -> None:
    import nltk

    try:
        nltk.data.find("tokenizers/punkt_tab")
        pytest.skip("NLTK's punkt_tab is installed here")
    except LookupError:
        pass
    ifeval = tmp_path / "ifeval.jsonl"
    ifeval.write_text(
        json.dumps(
            {
                "prompt": "Describe Nara.",
                "instruction_id_list": ["length_constraints:number_sentences"],
                "kwargs": [{"num_sentences": 2, "relation": "at least"}],
            }
        )
        + "\n"
    )
    out = _run(
        "generate",
        "ifeval",
        "--model",
        "ckpt",
        "--prompts",
        str(ifeval),
        "--endpoints",
        workspace["eps"],
        "--database-url",
        workspace["db"],
        "--json",
    )
    assert list(out["checks_unavailable"]) == ["length_constraints:number_sentences"]
    assert out["skipped_uncalled"] == 1 and fake.total_calls() == 0
