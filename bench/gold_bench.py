"""What gold costs the queue (issue 13): CPU per next+submit with gold on and off.

In one process, on SQLite and on PostgreSQL, one annotator takes and answers tasks round-robin
in three projects of the same shape: no gold (the baseline), a 10% gold share, and a 10% gold
share with a stopping gold threshold (which reads the annotator's gold answers on every new
task). Prints CPU ms per next+submit transaction and the ratio to the baseline, with the load
average.

Usage: ``python bench/gold_bench.py [--rounds 250] [--backends sqlite,postgres]``
Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert

from preflab import collect
from preflab.collect import ProjectCreate
from preflab.records import make_prompt_id, make_response_id
from preflab.server.db import Database
from preflab.store.items import make_item_id, make_response_ids_key
from preflab.store.tables import Item, PromptRow, ResponseRow

PG_ADMIN = os.environ.get("PREFLAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TIE = {"scale": 5, "preferred": None, "strength": 0, "tie": True, "both_bad": False}


def add_items(db: Database, project_id: str, n: int, tag: str) -> list[str]:
    prompts, responses, items = [], [], []
    for i in range(n):
        messages = [{"role": "user", "content": f"{tag} question {i}?"}]
        pid = make_prompt_id(messages)
        rids = [make_response_id(pid, f"{tag} answer {k} {i}", "m") for k in "ab"]
        prompts.append({"prompt_id": pid, "messages": messages, "source": "bench", "tags": []})
        responses += [{"response_id": r, "prompt_id": pid, "content": f"answer {r}", "model": "m",
                       "params": {}, "origin": "model"} for r in rids]
        items.append({"item_id": make_item_id(project_id, pid, rids), "project_id": project_id,
                      "prompt_id": pid, "response_ids": rids,
                      "response_ids_key": make_response_ids_key(rids), "target": 1, "done": 0,
                      "reserved": 0, "is_open": True, "is_gold": False, "priority": 0})
    with db.write() as s:
        s.execute(insert(PromptRow), prompts)
        s.execute(insert(ResponseRow), responses)
        s.execute(insert(Item), items)
    return [i["item_id"] for i in items]


def project(db: Database, name: str, n: int, share: float, threshold: dict | None) -> str:
    with db.write() as s:
        pid = collect.create_project(s, ProjectCreate(name=name, gold_share=share)).project_id
    add_items(db, pid, n, name)
    if share:
        gold = add_items(db, pid, max(int(n * share), 1), name + " gold")
        with db.transaction() as conn:
            collect.set_gold(conn, pid, [collect.GoldLine(0, g, {"tie": True}) for g in gold])
    if threshold:
        with db.transaction() as conn:
            collect.set_gold_threshold(conn, pid, threshold)
    return pid


def run(url: str, rounds: int) -> None:
    db = Database(url)
    with db.write() as s:
        collect.create_user(s, "gold-bench", "not-a-hash")
    variants = {
        "no gold (baseline)": project(db, "B0", rounds + 50, 0.0, None),
        "gold share 10%": project(db, "B1", rounds + 50, 0.1, None),
        "gold share 10% + stopping threshold": project(
            db, "B2", rounds + 50, 0.1, {"min_accuracy": 0.5, "after": 5, "stop_serving": True}),
    }
    cpu = dict.fromkeys(variants, 0.0)
    for r in range(rounds):
        for name, pid in variants.items():
            t0 = time.process_time()
            with db.write() as s:
                t = collect.next_task(s, collect.get_project(s, pid), "human:gold-bench")
                assert t is not None
                collect.submit_judgment(
                    s, assignment_id=t.assignment.assignment_id, user_id="human:gold-bench",
                    kind="pairwise", value=TIE, idempotency_key=f"{pid}-{r}",
                    guideline_version=None)
            cpu[name] += time.process_time() - t0
    db.dispose()
    base = cpu["no gold (baseline)"] / rounds
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"[{url.split(':')[0].split('+')[0]}] {rounds} next+submit per variant; load {load}")
    for name in variants:
        per = cpu[name] / rounds
        print(f"  {name:38s} {per * 1000:6.2f} ms CPU  ratio {per / base:4.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=250)
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                run(f"sqlite:///{tmp}/gold-bench.sqlite", args.rounds)
            continue
        import psycopg

        name = f"preflab_goldbench_{uuid.uuid4().hex[:8]}"
        admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            run(f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}", args.rounds)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
