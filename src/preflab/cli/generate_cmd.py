"""``preflab generate`` and ``preflab judge``: produce candidates and synthetic judgments.

Thin: parse options, call :mod:`preflab.generate`, show progress and a summary with rich.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from preflab.errors import UsageError

if TYPE_CHECKING:
    from preflab.generate import EndpointConfig, JobSummary
    from preflab.generate.judges import PairwiseJudgeResult, RubricJudgeResult
    from preflab.records import Judgment, Prompt

# Library imports sit inside the commands, so that `preflab --help` does not load the OpenAI
# client, PyArrow or SQLAlchemy.

console = Console()

generate_app = typer.Typer(
    help="Generate candidate responses and verifiable pairs from model endpoints.\n\n"
    "Example: `preflab generate candidates --endpoints eps.yaml --prompts prompts.jsonl -n 2`",
    no_args_is_help=True,
)
judge_app = typer.Typer(
    help="Judge responses with AI judges and check them against human judgments.\n\n"
    "Example: `preflab judge pairwise --endpoints endpoints.yaml --judge gpt-judge`",
    no_args_is_help=True,
)

EndpointsOpt = typer.Option(..., "--endpoints", help="YAML/TOML/JSON file of model endpoints.")
DbOpt = typer.Option(
    None, "--database-url", help="Workspace database URL (default: the workspace SQLite)."
)
DryOpt = typer.Option(False, "--dry-run", help="Show what would be called; call and write nothing.")
JsonOpt = typer.Option(False, "--json", help="Print the summary as JSON.")
PromptsOpt = typer.Option(
    None, "--prompts", help="JSONL file of prompts (default: the workspace's prompts)."
)
RetryFailedOpt = typer.Option(
    False,
    "--retry-failed",
    help="Call again requests that failed in an earlier run (by default they stay failed and "
    "the summary counts them).",
)
RetryUnparseableOpt = typer.Option(
    False,
    "--retry-unparseable",
    help="Ask the judge again where an earlier reply held no readable verdict or rating.",
)
TemplateVersionOpt = typer.Option(
    "1",
    "--template-version",
    help="Version name of the judge's template; part of the judge's identity, with the "
    "model, revision, template text and sampling parameters.",
)
BatchOpt = typer.Option(
    False,
    "--batch",
    help="Send the calls through the endpoint's OpenAI-compatible batch API (/v1/files, "
    "/v1/batches): upload, poll, download; a re-run after a crash resumes the same batches.",
)
PollOpt = typer.Option(
    5.0, "--poll-interval", min=0.01, help="Seconds between polls of a submitted batch."
)


def _database_url(database_url: str | None) -> str:
    """Return ``--database-url``, or the workspace's (the settings are read only then)."""
    if database_url is not None:
        return database_url
    from preflab.settings import Settings

    return Settings().effective_database_url()


def _engine(database_url: str | None) -> Any:
    from preflab.generate import open_engine

    url = _database_url(database_url)
    if database_url is None and url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return open_engine(url)


def _finish(engine: Any | None) -> None:
    """Close the workspace database and let ``preflab`` exit at once (:mod:`preflab.cli.main`).

    By now every result is committed and the summary printed; the interpreter's own shutdown
    (freeing everything SQLAlchemy, PyArrow and the rest built) cost 0.25-0.6 s of a run.
    ``engine`` is None when the command never opened one (a re-run answered from the cache).
    """
    from preflab.cli.app import state

    if engine is not None:
        engine.dispose()
    state["exit_now"] = True


def _endpoints(path: Path, names: Sequence[str] | None = None) -> dict[str, EndpointConfig]:
    from preflab.generate import read_endpoints

    eps = read_endpoints(path)
    for name in names or ():
        if name not in eps:
            raise UsageError(
                f"no endpoint named {name!r} in {path} (known: {', '.join(sorted(eps))})"
            )
    return eps


def _prompts(engine: Any, path: Path | None) -> list[Prompt]:
    from preflab.generate.prompt_file import read_prompt_file
    from preflab.generate.writeback import load_prompts

    if path is not None:
        return read_prompt_file(path)
    with engine.connect() as conn:
        prompts = load_prompts(conn)
    if not prompts:
        raise UsageError(
            "the workspace has no prompts; pass --prompts FILE.jsonl or import some first"
        )
    return prompts


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(
            "-- req/s" if speed is None else f"{speed:.1f} req/s", style="progress.data.speed"
        )


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    if quiet:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(label, total=None)

        def hook(finished: int, total: int) -> None:
            progress.update(task, completed=finished, total=total)

        yield hook


def _show(summaries: Sequence[JobSummary], extra: dict[str, Any], as_json: bool) -> None:
    notes = _notes(summaries)
    if as_json:
        console.print_json(
            json.dumps({"jobs": [s.to_json() for s in summaries], **extra, "notes": notes})
        )
        return
    table = Table(title="job summary")
    for col in (
        "job",
        "requests",
        "done",
        "cached",
        "unparseable",
        "failed",
        "calls",
        "tokens in/out",
        "s",
    ):
        table.add_column(col, justify="right" if col != "job" else "left")
    for s in summaries:
        if s.dry_run:
            planned = ", ".join(f"{k}: {v}" for k, v in sorted(s.planned.items())) or "nothing"
            console.print(
                f"[bold]dry run[/] {s.job_id}: {s.total} requests, {s.cached} cached; "
                f"would call {planned}"
            )
            continue
        table.add_row(
            s.job_id,
            str(s.total),
            str(s.done),
            str(s.cached),
            str(s.unparseable),
            str(s.failed),
            str(s.calls),
            f"{s.prompt_tokens}/{s.completion_tokens}",
            f"{s.elapsed:.2f}",
        )
    if table.row_count:
        console.print(table)
    if all(s.dry_run for s in summaries):
        return  # nothing was produced; the counts below would only mislead
    for key, value in extra.items():
        console.print(f"{key}: {value}")
    for note in notes:
        console.print(note)


def _notes(summaries: Sequence[JobSummary]) -> list[str]:
    """Return the sentences that say what a run did not do, and how to make it."""
    out: list[str] = []
    for s in summaries:
        if s.dry_run:
            continue
        if s.total and s.calls == 0:
            answered = s.cached + s.unparseable
            out.append(
                f"{s.job_id}: no call made; {answered} of {s.total} request(s) answered from "
                "the cache."
            )
        if s.failed_earlier:
            out.append(
                f"{s.job_id}: {s.failed_earlier} request(s) failed in an earlier run and were "
                "not called again; pass --retry-failed to call them."
            )
        failed_now = s.failed - s.failed_earlier - s.interrupted
        if failed_now:
            out.append(
                f"{s.job_id}: {failed_now} request(s) failed in this run; they are left "
                "failed (a re-run with --retry-failed calls them again)."
            )
        if s.interrupted:
            out.append(
                f"{s.job_id}: {s.interrupted} request(s) were cut off by a worker process that "
                "died; any re-run calls them again."
            )
        if s.unparseable:
            out.append(
                f"{s.job_id}: {s.unparseable} reply(ies) held no readable answer; pass "
                "--retry-unparseable to ask again."
            )
        if s.merged:
            out.append(
                f"{s.job_id}: {s.merged} sample(s) were the same text as another sample of the "
                "same model and prompt and were merged into one response."
            )
    return out


@generate_app.command("candidates")
def candidates_cmd(
    endpoints: Path = EndpointsOpt,
    model: list[str] = typer.Option(
        None, "--model", help="Endpoint name to sample from (repeat; default: all)."
    ),
    prompts: Path | None = PromptsOpt,
    n: int = typer.Option(1, "-n", "--n", help="Samples per prompt per model."),
    seed: int = typer.Option(
        0, "--seed", help="Seed of the first sample (sample i uses seed + i)."
    ),
    on_policy: str | None = typer.Option(
        None, "--on-policy", help="Endpoint of the on-policy checkpoint; answers every prompt."
    ),
    models_per_prompt: int | None = typer.Option(
        None, "--models-per-prompt", help="Draw this many other models per prompt."
    ),
    processes: int | None = typer.Option(
        None,
        "--processes",
        min=1,
        help="Worker processes making the calls (default: by job size, CPUs and concurrency; "
        "1: all in this process).",
    ),
    retry_failed: bool = RetryFailedOpt,
    batch: bool = BatchOpt,
    poll_interval: float = PollOpt,
    database_url: str | None = DbOpt,
    dry_run: bool = DryOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Sample candidate responses: n per prompt per model, tagged with model and revision.

    Example: `preflab generate candidates --endpoints eps.yaml --prompts p.jsonl --on-policy ckpt`
    """
    from preflab.generate.candidate_rules import MixRule

    eps = _endpoints(endpoints, model)
    chosen = {k: v for k, v in eps.items() if not model or k in model or k == on_policy}
    mix = MixRule(on_policy=on_policy, models_per_prompt=models_per_prompt)
    res = None
    ps: list[Prompt] | None = None
    if prompts is not None and not (dry_run or batch or retry_failed):
        # a re-run the cache answers wholly is read with sqlite3, without the store (issue 14)
        from preflab.generate.cached_rerun import answer_from_cache
        from preflab.generate.prompt_file import read_prompt_file

        ps = read_prompt_file(prompts)
        res = answer_from_cache(_database_url(database_url), ps, chosen, n=n, mix=mix, seed=seed)
    engine = None
    if res is None:
        from preflab.generate.candidates import generate_candidates

        engine = _engine(database_url)
        if ps is None:
            ps = _prompts(engine, prompts)
        with _progress("generate", as_json or dry_run) as hook:
            res = generate_candidates(
                engine,
                ps,
                chosen,
                n=n,
                seed=seed,
                dry_run=dry_run,
                on_progress=hook,
                mix=mix,
                processes=processes,
                retry_failed=retry_failed,
                via="batch" if batch else "online",
                poll_interval=poll_interval,
            )
    extra = {
        "responses": len(res.responses),
        "merged_samples": res.merged,
        "empty_replies": res.empty,
        "duplicates": sum(len(g.dropped) for g in res.duplicates),
        "prompts_missing_on_policy": len(res.missing_on_policy),
    }
    _show([res.summary], extra, as_json)
    _finish(engine)


@generate_app.command("ifeval")
def ifeval_cmd(
    endpoints: Path = EndpointsOpt,
    model: str = typer.Option(..., "--model", help="Endpoint name that answers."),
    prompts: Path = typer.Option(
        ...,
        "--prompts",
        help="JSONL with prompt + constraints (or IFEval's instruction_id_list/kwargs).",
    ),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    retry_failed: bool = RetryFailedOpt,
    database_url: str | None = DbOpt,
    dry_run: bool = DryOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Make constraint pairs: answer with and without the constraint, verify with lm-eval's IFEval.

    Example: `preflab generate ifeval --endpoints eps.yaml --model ckpt --prompts ifeval.jsonl`
    """
    from preflab.generate.prompt_file import read_prompt_file
    from preflab.generate.verifiers import Constraint, generate_constraint_pairs
    from preflab.records import Prompt

    eps = _endpoints(endpoints, [model])
    engine = _engine(database_url)
    items = []
    for p in read_prompt_file(prompts):
        if not p.constraints:
            raise UsageError(f"prompt {p.prompt_id} in {prompts} has no constraints")
        base = p.model_copy(update={"constraints": None, "prompt_id": ""})
        items.append(
            (
                Prompt.model_validate(base.model_dump()),
                [Constraint.from_json(c) for c in p.constraints],
            )
        )
    with _progress("ifeval", as_json or dry_run) as hook:
        res = generate_constraint_pairs(
            engine,
            eps,
            items,
            model,
            seed=seed,
            dry_run=dry_run,
            retry_failed=retry_failed,
            on_progress=hook,
        )
    not_called = sum(1 for why in res.skipped.values() if why.startswith("not called"))
    _show(
        [res.summary],
        {
            "pairs": len(res.judgments),
            "skipped": len(res.skipped),
            "skipped_uncalled": not_called,
            "checks_unavailable": dict(res.unavailable),
        },
        as_json,
    )
    _finish(engine)


@generate_app.command("math")
def math_cmd(
    endpoints: Path = EndpointsOpt,
    model: list[str] = typer.Option(..., "--model", help="Endpoint name to sample from (repeat)."),
    prompts: Path = typer.Option(
        ..., "--prompts", help='JSONL with "prompt" and "reference" per line.'
    ),
    n: int = typer.Option(4, "-n", "--n", help="Solutions per prompt per model."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first sample."),
    retry_failed: bool = RetryFailedOpt,
    database_url: str | None = DbOpt,
    dry_run: bool = DryOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Make math pairs: sample solutions, compare final answers symbolically; correct wins.

    Example: `preflab generate math --endpoints eps.yaml --model ckpt --prompts gsm8k.jsonl -n 4`
    """
    from preflab.generate.prompt_file import read_prompt_file
    from preflab.generate.verifiers import generate_math_pairs

    eps = {k: v for k, v in _endpoints(endpoints, model).items() if k in model}
    engine = _engine(database_url)
    with _progress("math", as_json or dry_run) as hook:
        res = generate_math_pairs(
            engine,
            eps,
            read_prompt_file(prompts),
            n=n,
            seed=seed,
            dry_run=dry_run,
            retry_failed=retry_failed,
            on_progress=hook,
        )
    _show([res.summary], {"pairs": len(res.judgments), "skipped": len(res.skipped)}, as_json)
    _finish(engine)


@generate_app.command("revise")
def revise_cmd(
    endpoints: Path = EndpointsOpt,
    model: str = typer.Option(..., "--model", help="Endpoint that critiques and revises."),
    principle: Path | None = typer.Option(
        None, "--principle", help="JSON file: name, critique_request, revision_request."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Revise at most this many responses."),
    retry_failed: bool = RetryFailedOpt,
    database_url: str | None = DbOpt,
    dry_run: bool = DryOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Critique and revise stored responses against a principle; revision chosen over original.

    Example: `preflab generate revise --endpoints eps.yaml --model ckpt --limit 100`
    """
    from preflab.generate import HARMLESS_PRINCIPLE, Principle, critique_and_revise
    from preflab.generate.writeback import load_prompts, load_responses

    eps = _endpoints(endpoints, [model])
    engine = _engine(database_url)
    pr = HARMLESS_PRINCIPLE
    if principle is not None:
        try:
            pr = Principle(**json.loads(principle.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(
                f"{principle}: expected JSON with name, critique_request, revision_request ({exc})"
            ) from None
    with engine.connect() as conn:
        prompts = {p.prompt_id: p for p in load_prompts(conn)}
        responses = [r for r in load_responses(conn) if r.origin.value != "revision"]
    items = [(prompts[r.prompt_id], r) for r in responses if r.prompt_id in prompts][:limit]
    with _progress("revise", as_json or dry_run) as hook:
        res = critique_and_revise(
            engine,
            eps,
            items,
            model,
            pr,
            dry_run=dry_run,
            retry_failed=retry_failed,
            on_progress=hook,
        )
    summaries = [res.critique_summary] + ([res.revision_summary] if res.revision_summary else [])
    _show(summaries, {"revisions": len(res.revisions), "skipped": len(res.skipped)}, as_json)
    _finish(engine)


def _judge_figures(res: PairwiseJudgeResult | RubricJudgeResult, **own: int) -> dict[str, Any]:
    """Return the summary figures of a judge run, with the judge's ``own`` after the shared."""
    return {
        "judge": res.judge.judge_id,
        "judgments": len(res.judgments),
        "new_judgments": res.new_judgments,
        "already_stored": res.already_stored,
        **own,
        "failures": len(res.failures),
        "failure_reasons": dict(Counter(f.reason for f in res.failures).most_common(5)),
    }


@judge_app.command("pairwise")
def pairwise_cmd(
    endpoints: Path = EndpointsOpt,
    judge: str = typer.Option(..., "--judge", help="Endpoint name of the judge model."),
    constitution: Path | None = typer.Option(
        None, "--constitution", help="Text file of principles."
    ),
    on_inconsistent: str = typer.Option("tie", "--on-inconsistent", help="tie | humans"),
    project: str | None = typer.Option(
        None, "--project", help="Project id that receives items sent to humans."
    ),
    max_pairs_per_prompt: int = typer.Option(
        6, "--max-pairs-per-prompt", help="Cap on pairs judged per prompt."
    ),
    template_version: str = TemplateVersionOpt,
    retry_failed: bool = RetryFailedOpt,
    retry_unparseable: bool = RetryUnparseableOpt,
    batch: bool = BatchOpt,
    poll_interval: float = PollOpt,
    database_url: str | None = DbOpt,
    dry_run: bool = DryOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Judge stored candidate pairs in both orders under a constitution.

    Example: `preflab judge pairwise --endpoints eps.yaml --judge big --on-inconsistent humans
    --project calib`
    """
    from preflab.generate import candidate_pairs
    from preflab.generate.judges import PairwiseJudgeConfig, judge_pairwise
    from preflab.generate.writeback import check_project, load_prompts, load_responses

    if on_inconsistent not in ("tie", "humans"):
        raise UsageError(f"--on-inconsistent must be tie or humans, got {on_inconsistent!r}")
    if on_inconsistent == "humans" and project is None:
        raise UsageError(
            "--on-inconsistent humans sends position-inconsistent items to annotators: pass "
            "--project with the project that receives them (nothing was called)"
        )
    eps = _endpoints(endpoints, [judge])
    engine = _engine(database_url)
    if project is not None:
        with engine.connect() as conn:
            check_project(conn, project)
    kw: dict[str, Any] = {
        "endpoint": judge,
        "on_inconsistent": on_inconsistent,
        "template_version": template_version,
    }
    if constitution is not None:
        try:
            kw["constitution"] = constitution.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read --constitution {constitution}: {exc.strerror}") from None
    config = PairwiseJudgeConfig(**kw)
    with engine.connect() as conn:
        prompts = {p.prompt_id: p for p in load_prompts(conn)}
        responses = load_responses(conn)
    per_prompt: dict[str, int] = {}
    items = []
    for a, b in candidate_pairs(responses):
        if per_prompt.get(a.prompt_id, 0) < max_pairs_per_prompt and a.prompt_id in prompts:
            per_prompt[a.prompt_id] = per_prompt.get(a.prompt_id, 0) + 1
            items.append((prompts[a.prompt_id], a, b))
    with _progress("judge", as_json or dry_run) as hook:
        res = judge_pairwise(
            engine,
            eps,
            items,
            config,
            project_id=project,
            dry_run=dry_run,
            retry_failed=retry_failed,
            retry_unparseable=retry_unparseable,
            on_progress=hook,
            via="batch" if batch else "online",
            poll_interval=poll_interval,
        )
    figures = _judge_figures(
        res,
        unparseable_items=res.unparseable,
        inconsistent=res.inconsistent,
        to_humans=len(res.to_humans),
    )
    _show([res.summary], figures, as_json)
    _finish(engine)


@judge_app.command("rubric")
def rubric_cmd(
    endpoints: Path = EndpointsOpt,
    judge: str = typer.Option(..., "--judge", help="Endpoint name of the judge model."),
    aspect: list[str] = typer.Option(
        None, "--aspect", help="name=question (repeat; default: UltraFeedback's four)."
    ),
    template_version: str = TemplateVersionOpt,
    retry_failed: bool = RetryFailedOpt,
    retry_unparseable: bool = RetryUnparseableOpt,
    batch: bool = BatchOpt,
    poll_interval: float = PollOpt,
    database_url: str | None = DbOpt,
    dry_run: bool = DryOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Rate stored responses on several aspects (UltraFeedback-style, 1-5).

    Example: `preflab judge rubric --endpoints eps.yaml --judge big --aspect helpfulness="Useful?"`
    """
    from preflab.generate.judges import RubricJudgeConfig, judge_rubric
    from preflab.generate.writeback import load_prompts, load_responses

    eps = _endpoints(endpoints, [judge])
    engine = _engine(database_url)
    kw: dict[str, Any] = {"endpoint": judge, "template_version": template_version}
    if aspect:
        pairs = [a.split("=", 1) for a in aspect]
        if any(len(p) != 2 for p in pairs):
            raise UsageError("--aspect takes name=question")
        kw["aspects"] = {k.strip(): v.strip() for k, v in pairs}
    with engine.connect() as conn:
        prompts = {p.prompt_id: p for p in load_prompts(conn)}
        items = [(prompts[r.prompt_id], r) for r in load_responses(conn) if r.prompt_id in prompts]
    with _progress("rubric", as_json or dry_run) as hook:
        res = judge_rubric(
            engine,
            eps,
            items,
            RubricJudgeConfig(**kw),
            dry_run=dry_run,
            retry_failed=retry_failed,
            retry_unparseable=retry_unparseable,
            on_progress=hook,
            via="batch" if batch else "online",
            poll_interval=poll_interval,
        )
    _show([res.summary], _judge_figures(res, unparseable_answers=res.unparseable), as_json)
    _finish(engine)


@judge_app.command("agreement")
def agreement_cmd(
    database_url: str | None = DbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Report agreement of each AI judge with human judgments on shared items, by aspect.

    Example: `preflab judge agreement --json`
    """
    from preflab.generate.judges import judge_agreement
    from preflab.generate.writeback import load_judge_kinds, load_judgments
    from preflab.records import Judgment, records_to_table

    engine = _engine(database_url)
    with engine.connect() as conn:
        kinds = load_judge_kinds(conn)
        judgments = load_judgments(conn)

    def is_ai(j: Judgment) -> bool:
        return kinds.get(j.judge_id, "") in ("ai", "verifier") or j.judge_id.startswith(
            ("ai:", "verifier:")
        )

    ai = [j for j in judgments if is_ai(j)]
    human = [j for j in judgments if not is_ai(j) and kinds.get(j.judge_id, "human") == "human"]
    table = judge_agreement(
        records_to_table(ai, cls=Judgment), records_to_table(human, cls=Judgment)
    )
    rows = table.to_pylist()
    if as_json:
        console.print_json(json.dumps({"agreement": rows}))
        return
    out = Table(title="AI judge vs humans")
    for col in ("judge", "aspect", "items", "agreement", "kappa", "spearman", "MAE"):
        out.add_column(col)

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    for r in rows:
        out.add_row(
            r["judge_id"],
            r["aspect"],
            str(r["items"]),
            fmt(r["agreement"]),
            fmt(r["kappa"]),
            fmt(r["spearman"]),
            fmt(r["mean_abs_error"]),
        )
    console.print(out)


def register(app: typer.Typer) -> None:
    """Add ``generate`` and ``judge`` to the ``preflab`` command."""
    app.add_typer(generate_app, name="generate")
    app.add_typer(judge_app, name="judge")
