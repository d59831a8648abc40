"""Speed as a user runs it: the CLI commands as subprocesses beside TRL's HH script path.

Builds the HH-RLHF sample repeated ``--repeat`` times (402 × 400 = 160,800 lines, plain JSON
lines in a temporary folder) and runs, each in its own child process, in one run:

1. ``floor``: a plain ``json.loads`` loop over the file (the least any reader does);
2. ``trl-script``: the approach of TRL's ``examples/datasets/hh-rlhf-helpful-base.py``, written
   here in our own words: ``datasets.load_dataset("json", …)``, ``map`` of a function that cuts
   the common start of chosen and rejected into the prompt messages (character by character,
   as that script does), ``to_parquet``; its datasets cache lives in the temporary folder, so
   it starts cold as a first run does;
3. ``import``: ``preflab import hh-rlhf FILE --workspace ws``;
4. ``export``: ``preflab export --workspace ws --format trl-preference --style conversational``;
5. ``export --from``: the same export read straight from the file (``--from hh-rlhf:FILE``);
6. ``--help``: ``preflab --help``, ``--help-runs`` times; the median is reported.

For each it prints the wall time, the child's CPU time (user + system) and its peak resident
memory (``os.wait4``'s rusage of that child alone), and the ratio TRL script / step. CPU time is
steadier than wall time on a shared machine; the load average is printed beside. ``--distinct``
makes every copy of the sample distinct (a copy number appended to every turn), so the figures
can be compared with input where nothing repeats. Nothing is asserted.

Usage::

    PREFLAB_TEST_DATA=../shared/data .venv/bin/python bench/ship_bench.py [--repeat 402]
        [--distinct] [--data FILE] [--help-runs 7] [--skip trl-script,…]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_TRL_SCRIPT = r'''
import re, sys
from datasets import disable_progress_bars, load_dataset

disable_progress_bars()
_TURN = re.compile(r"(\n\nAssistant: |\n\nHuman: )")
_ASSISTANT = "\n\nAssistant: "


def shared_start(a, b):
    """The longest common start, compared one character at a time as TRL's script does."""
    kept = []
    for x, y in zip(a, b):
        if x != y:
            break
        kept.append(x)
    return "".join(kept)


def to_conversation(row):
    head = shared_start(row["chosen"], row["rejected"])
    if not head.endswith(_ASSISTANT):
        head = head[: head.rfind(_ASSISTANT)] + _ASSISTANT
    chosen, rejected = row["chosen"][len(head):], row["rejected"][len(head):]
    pieces = _TURN.split(head[: -len(_ASSISTANT)])[1:]
    prompt = [
        {"role": "user" if pieces[i] == "\n\nHuman: " else "assistant", "content": pieces[i + 1]}
        for i in range(0, len(pieces), 2)
    ]
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


source, cache, out = sys.argv[1:4]
dataset = load_dataset("json", data_files=source, split="train", cache_dir=cache)
dataset = dataset.map(to_conversation)
dataset.to_parquet(out)
print(dataset.num_rows)
'''

_FLOOR_SCRIPT = r'''
import json, sys
n = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        json.loads(line)
        n += 1
print(n)
'''


def sample_path(given: str | None) -> Path:
    """Return the HH sample: ``--data`` or ``$PREFLAB_TEST_DATA`` (see bench/hh_sample.py)."""
    if given:
        return Path(given)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hh_sample import hh_sample_path

    return hh_sample_path()


def build_input(sample: Path, directory: Path, repeat: int, distinct: bool) -> tuple[Path, int]:
    """Write the sample ``repeat`` times as plain JSON lines; return the path and line count."""
    with gzip.open(sample, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    path = directory / "hh-repeated.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        if not distinct:
            block = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            for _ in range(repeat):
                out.write(block)
        else:
            for k in range(repeat):
                tag = f" [{k}]"
                for r in rows:
                    copy = {
                        side: r[side].replace("\n\nAssistant:", f"{tag}\n\nAssistant:") + tag
                        for side in ("chosen", "rejected")
                    }
                    out.write(json.dumps(copy, ensure_ascii=False) + "\n")
    return path, len(rows) * repeat


class _Popen(subprocess.Popen):  # type: ignore[type-arg]
    """A Popen that reaps its child with ``os.wait4`` and keeps the child's own rusage."""

    rusage: Any = None

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        pid, status, self.rusage = os.wait4(self.pid, wait_flags)
        return pid, status


def run(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; return wall s, CPU s (user + system) and peak RSS MiB of that child."""
    start = time.perf_counter()
    proc = _Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
    )
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} … failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    usage = proc.rusage
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mib": usage.ru_maxrss / 1024,
        "stdout": out.decode(),
    }


def preflab_cmd() -> list[str]:
    """Return the ``preflab`` console script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("preflab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "preflab.cli.main"]


def parquet_rows(folder: Path) -> int:
    """Return the rows in every Parquet file under ``folder`` (or of the file itself)."""
    import pyarrow.parquet as pq

    files = [folder] if folder.is_file() else sorted(folder.rglob("*.parquet"))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the HH sample (.jsonl.gz); default $PREFLAB_TEST_DATA/…")
    parser.add_argument("--repeat", type=int, default=402)
    parser.add_argument("--distinct", action="store_true", help="make every copy distinct")
    parser.add_argument("--help-runs", type=int, default=7)
    parser.add_argument("--skip", default="", help="comma-separated steps to leave out")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    preflab = preflab_cmd()
    with tempfile.TemporaryDirectory(prefix="preflab-ship-") as tmp:
        tmp_path = Path(tmp)
        path, lines = build_input(sample_path(args.data), tmp_path, args.repeat, args.distinct)
        print(
            f"input: {lines:,} HH-RLHF lines ({args.repeat} x the 400-line sample"
            f"{', every copy distinct' if args.distinct else ''}), "
            f"{path.stat().st_size / 1e6:.0f} MB; python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        figures: dict[str, dict[str, Any]] = {}
        rows: dict[str, int] = {}
        steps: list[tuple[str, list[str], dict[str, str] | None, Path | None]] = [
            ("floor", [sys.executable, "-c", _FLOOR_SCRIPT, str(path)], None, None),
            ("trl-script", [sys.executable, "-c", _TRL_SCRIPT, str(path), str(tmp_path / "hf"),
                            str(tmp_path / "trl.parquet")],
             {"HF_DATASETS_CACHE": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
              "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}, tmp_path / "trl.parquet"),
            ("import", [*preflab, "import", "hh-rlhf", str(path), "--workspace",
                        str(tmp_path / "ws"), "--json"], None, None),
            ("export", [*preflab, "export", "--workspace", str(tmp_path / "ws"), "--format",
                        "trl-preference", "--style", "conversational", "--out",
                        str(tmp_path / "out-ws"), "--json"], None, tmp_path / "out-ws"),
            ("export --from", [*preflab, "export", "--from", f"hh-rlhf:{path}", "--format",
                               "trl-preference", "--style", "conversational", "--out",
                               str(tmp_path / "out-file"), "--json"], None,
             tmp_path / "out-file"),
        ]
        for name, cmd, env, out in steps:
            if name in skip or (name == "export" and "import" in skip):
                continue
            figures[name] = run(cmd, env)
            if out is not None:
                rows[name] = parquet_rows(out)
            print(f"  ran {name:<14} {figures[name]['wall']:6.2f} s", flush=True)
        if "--help" not in skip:
            helps = [run([*preflab, "--help"]) for _ in range(args.help_runs)]
            figures["--help"] = {
                key: statistics.median(h[key] for h in helps) for key in ("wall", "cpu", "rss_mib")
            }
    trl = figures.get("trl-script")
    print(f"\n{'step':<15}{'wall s':>8}{'CPU s':>8}{'peak MiB':>10}{'rows out':>10}"
          f"{'TRL/step wall':>15}{'TRL/step CPU':>14}")
    for name, f in figures.items():
        ratio = ""
        if trl is not None and name not in ("trl-script", "--help"):
            ratio = f"{trl['wall'] / f['wall']:>14.1f}x{trl['cpu'] / f['cpu']:>13.1f}x"
        out_rows = f"{rows[name]:,}" if name in rows else ""
        print(f"{name:<15}{f['wall']:>8.2f}{f['cpu']:>8.2f}{f['rss_mib']:>10.0f}{out_rows:>10}"
              f"{ratio}")
    if "--help" in figures:
        print(f"--help: median of {args.help_runs} runs")
    if "import" in figures:
        counts = json.loads(figures["import"]["stdout"])["imports"][0]["counts"]
        print("import counts: " + ", ".join(f"{k}={v:,}" for k, v in counts.items()
                                            if isinstance(v, int)))
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(wall times suffer when it is high; CPU times much less)")


if __name__ == "__main__":
    main()
