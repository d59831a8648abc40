"""Throughput and latency of the annotation app on loopback (issue 4).

Starts the app (uvicorn, one process) on SQLite and on PostgreSQL, then:

1. 32 concurrent API clients loop "next task" → "submit" for a fixed time; prints submits/s and
   p50/p99 of both calls. Baseline in the same run: the same clients hitting ``GET /api/v1/me``
   (token auth, one indexed read) — the ratio says how much of the per-request budget the
   queue and the submit transaction take.
   Also prints the server's CPU time per next+submit pair (all its processes), a figure that
   moves less than the rates when other work shares the machine, and the load average.
2. "Next task" on a project of 100,000 items: p50/p99 of the queue call in process (store
   query, one transaction) and over HTTP (one client).

Usage: ``python bench/collect_bench.py [--seconds 10] [--items 100000] [--backends sqlite,postgres]``
Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import httpx
import psutil
from sqlalchemy import insert

from preflab import collect
from preflab.collect import ProjectCreate
from preflab.records import make_prompt_id, make_response_id
from preflab.server.auth import hash_password, hash_token
from preflab.server.db import Database
from preflab.store.items import make_item_id, make_response_ids_key
from preflab.store.tables import Item, PromptRow, ResponseRow

PG_ADMIN = os.environ.get("PREFLAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CLIENTS = 32


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def add_items(db: Database, project_id: str, n: int, tag: str, target: int = 1) -> None:
    """Bulk-insert n prompts, 2n responses and n items (Core executemany, 5,000 per batch)."""
    for start in range(0, n, 5000):
        prompts, responses, items = [], [], []
        for i in range(start, min(n, start + 5000)):
            messages = [{"role": "user", "content": f"{tag} question {i}?"}]
            pid = make_prompt_id(messages)
            rids = [make_response_id(pid, f"{tag} answer {k} {i}", "m") for k in "ab"]
            prompts.append({"prompt_id": pid, "messages": messages, "source": "bench", "tags": []})
            responses += [{"response_id": r, "prompt_id": pid, "content": f"answer {r}",
                           "model": "m", "params": {}, "origin": "model"} for r in rids]
            items.append({"item_id": make_item_id(project_id, pid, rids), "project_id": project_id,
                          "prompt_id": pid, "response_ids": rids,
                          "response_ids_key": make_response_ids_key(rids), "target": target,
                          "done": 0, "reserved": 0, "is_open": True, "is_gold": False,
                          "priority": 0})
        with db.write() as s:
            s.execute(insert(PromptRow), prompts)
            s.execute(insert(ResponseRow), responses)
            s.execute(insert(Item), items)


def setup(url: str, items: int, big: int) -> tuple[list[str], str, str]:
    db = Database(url)
    pw = hash_password("bench-password")
    tokens = []
    with db.write() as s:
        for i in range(CLIENTS):
            user = collect.create_user(s, f"bench{i:02d}", pw)
            token = f"pfl_bench_{i:02d}_{uuid.uuid4().hex}"
            collect.create_api_token(s, user.user_id, "bench", hash_token(token))
            tokens.append(token)
        for name in ("Bench", "Big"):
            collect.create_project(s, ProjectCreate(name=name))
            for i in range(CLIENTS):
                collect.add_member(s, name.lower(), f"human:bench{i:02d}")
    add_items(db, "bench", items, "bench")
    add_items(db, "big", big, "big")
    db.analyze()  # as the app does after an import
    db.dispose()
    return tokens, "bench", "big"


def server_cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """Return the CPU time (user + system) used so far by the server and its workers."""
    procs = [psutil.Process(proc.pid)]
    procs += procs[0].children(recursive=True)
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def start(url: str, workspace: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, PREFLAB_DATABASE_URL=url, PREFLAB_WORKSPACE=str(workspace))
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "preflab.server.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
         "--workers", str(workers)],
        env={**env, "PREFLAB_SECRET_KEY": "bench-secret"})
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(base + "/login", timeout=1)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


async def run_clients(base: str, tokens: list[str], project: str, seconds: float,
                      mode: str) -> dict[str, list[float]]:
    lat: dict[str, list[float]] = {"next": [], "submit": [], "me": []}
    stop = time.perf_counter() + seconds

    async def one(i: int, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(base, headers=headers) as http:
            n = 0
            while time.perf_counter() < stop:
                if mode == "me":
                    t0 = time.perf_counter()
                    async with http.get("/api/v1/me") as r:
                        await r.read()
                    lat["me"].append(time.perf_counter() - t0)
                    continue
                t0 = time.perf_counter()
                async with http.post(f"/api/v1/projects/{project}/tasks/next") as r:
                    task = (await r.json())["task"]
                lat["next"].append(time.perf_counter() - t0)
                if task is None:
                    return
                body = {"submission_id": f"b{i}-{n}-{uuid.uuid4().hex[:8]}", "choice": "2"}
                t0 = time.perf_counter()
                async with http.post(f"/api/v1/tasks/{task['assignment_id']}/judgments",
                                     json=body) as r:
                    assert r.status == 201, await r.text()
                    await r.read()
                lat["submit"].append(time.perf_counter() - t0)
                n += 1

    await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))
    return lat


def next_in_process(url: str, project: str, n: int) -> list[float]:
    db = Database(url)
    out = []
    try:
        for k in range(n):
            user = f"human:bench{k % CLIENTS:02d}"
            t0 = time.perf_counter()
            with db.write() as s:
                task = collect.next_task(s, collect.get_project(s, project), user)
                assert task is not None
                collect.skip_task(s, task.assignment.assignment_id, user, "bench")
            out.append(time.perf_counter() - t0)
    finally:
        db.dispose()
    return out


def bench_backend(name: str, url: str, workspace: Path, seconds: float, items: int,
                  big: int, workers: int) -> None:
    t0 = time.perf_counter()
    tokens, project, big_project = setup(url, items, big)
    print(f"[{name}] set up {items:,} + {big:,} items in {time.perf_counter() - t0:.1f}s")
    proc, base = start(url, workspace, workers)
    name = f"{name}, {workers} worker{'s' if workers > 1 else ''}"
    try:
        me = asyncio.run(run_clients(base, tokens, project, seconds / 2, "me"))
        me_rate = len(me["me"]) / (seconds / 2)
        cpu0 = server_cpu_seconds(proc)
        lat = asyncio.run(run_clients(base, tokens, project, seconds, "work"))
        cpu = server_cpu_seconds(proc) - cpu0
        rate = len(lat["submit"]) / seconds
        print(f"[{name}] {CLIENTS} clients: {rate:,.0f} submits/s "
              f"(each with its next-task call; {2 * rate:,.0f} requests/s)")
        print(f"[{name}]   server CPU {1000 * cpu / max(len(lat['submit']), 1):.2f} ms per "
              f"next+submit pair; load average {os.getloadavg()[0]:.1f} "
              f"({os.cpu_count()} CPUs)")
        print(f"[{name}]   submit  p50 {pct(lat['submit'], .5):6.1f} ms  p99 {pct(lat['submit'], .99):6.1f} ms")
        print(f"[{name}]   next    p50 {pct(lat['next'], .5):6.1f} ms  p99 {pct(lat['next'], .99):6.1f} ms")
        print(f"[{name}]   baseline GET /api/v1/me: {me_rate:,.0f} requests/s, "
              f"p99 {pct(me['me'], .99):.1f} ms; next+submit pair costs "
              f"{me_rate / max(rate, 1e-9) :.1f}x one baseline request")
        one = []
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens[0]}"}) as c:
            for _ in range(200):
                t1 = time.perf_counter()
                task = c.post(f"/api/v1/projects/{big_project}/tasks/next").json()["task"]
                one.append(time.perf_counter() - t1)
                c.post(f"/api/v1/tasks/{task['assignment_id']}/skip", json={"reason": "bench"})
        print(f"[{name}] next task, {big:,} items, HTTP, 1 client: p50 {pct(one, .5):.1f} ms "
              f"p99 {pct(one, .99):.1f} ms")
    finally:
        proc.terminate()
        proc.wait()
    inproc = next_in_process(url, big_project, 300)
    name = name.split(",")[0]
    print(f"[{name}] next task, {big:,} items, in process (reserve+skip txn): "
          f"p50 {pct(inproc, .5):.1f} ms p99 {pct(inproc, .99):.1f} ms "
          f"(mean {statistics.mean(inproc) * 1000:.1f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--items", type=int, default=30_000)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = ap.parse_args()
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            ws = Path(tmp)
            if backend == "sqlite":
                bench_backend("sqlite", f"sqlite:///{ws / 'bench.sqlite'}", ws, args.seconds,
                              args.items, args.big, args.workers)
                continue
            import psycopg

            dbname = f"preflab_bench_{uuid.uuid4().hex[:8]}"
            admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{dbname}"')
            try:
                bench_backend("postgres", PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname, ws,
                              args.seconds, args.items, args.big, args.workers)
            finally:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    main()
