"""50 annotators × 40 submits against a real server on loopback: nothing lost, nothing doubled.

There are fewer open slots (900 items × 2 judges) than submissions wanted (2,000), so the
annotators race for the last slots; every acknowledged judgment must be stored, no item may
get more judgments than its target, no annotator may judge an item twice, and a retried
submission must return the judgment already stored.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from preflab import collect
from preflab.collect import ProjectCreate
from preflab.server.auth import hash_token
from preflab.store.tables import Item, JudgmentRow

from .conftest import (
    Seeded,
    add_prompt_items,
    password_hash,
    seed_project,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.slow

ANNOTATORS, SUBMITS, ITEMS, OVERLAP = 50, 40, 900, 2


def _annotate(url: str, token: str, project_id: str, seed: int) -> tuple[list[str], int]:
    rng = random.Random(seed)
    acked: list[str] = []
    retries = 0
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        for n in range(SUBMITS):
            r = c.post(f"/api/v1/projects/{project_id}/tasks/next")
            r.raise_for_status()
            task = r.json()["task"]
            if task is None:
                break
            body = {"submission_id": f"{token[15:21]}-{n}-{seed}", "choice": str(rng.randint(1, 5))}
            path = f"/api/v1/tasks/{task['assignment_id']}/judgments"
            r = c.post(path, json=body)
            assert r.status_code == 201, r.text
            acked.append(r.json()["judgment_id"])
            if rng.random() < 0.1:  # a client retrying after a lost response
                again = c.post(path, json=body)
                assert again.status_code == 200 and again.json()["judgment_id"] == acked[-1]
                retries += 1
    return acked, retries


def test_fifty_annotators_forty_submits(seeded: Seeded) -> None:
    db = seeded.db
    names = [f"ann{i:02d}" for i in range(ANNOTATORS)]
    tokens = {}
    with db.write() as s:
        for name in names:
            user = collect.create_user(s, name, password_hash("alice"))
            tokens[name] = f"pfl_test_token_{name}_{'x' * 16}"
            collect.create_api_token(s, user.user_id, "test", hash_token(tokens[name]))
    pid = seed_project(db, ProjectCreate(name="Race", overlap=OVERLAP), names)
    add_prompt_items(db, pid, [(f"Race {i}?", [f"a{i}", f"b{i}"]) for i in range(ITEMS)],
                     target=OVERLAP)
    server = start_server(seeded.url, seeded.workspace)
    try:
        lock = threading.Lock()
        acked: list[str] = []
        with ThreadPoolExecutor(ANNOTATORS) as pool:
            futures = [pool.submit(_annotate, server.url, tokens[n], pid, i)
                       for i, n in enumerate(names)]
            retries = 0
            for f in futures:
                ids, r = f.result()
                with lock:
                    acked += ids
                retries += r
    except BaseException:
        print(server.output())
        raise
    finally:
        stop_server(server)
    assert retries > 0
    with db.read() as s:
        stored = list(s.execute(select(JudgmentRow.judgment_id, JudgmentRow.item_id,
                                       JudgmentRow.judge_id).where(JudgmentRow.project_id == pid)))
        items = {i.item_id: i for i in s.scalars(select(Item).where(Item.project_id == pid))}
        reserved = s.scalar(select(func.sum(Item.reserved)).where(Item.project_id == pid))
    assert len(acked) == len(set(acked)) == ITEMS * OVERLAP  # demand > supply: all slots used
    assert sorted(acked) == sorted(j for j, _, _ in stored)  # zero lost, zero extra
    pairs = Counter((item, judge) for _, item, judge in stored)
    assert max(pairs.values()) == 1  # nobody judged an item twice
    per_item = Counter(item for _, item, _ in stored)
    assert all(per_item[i] == it.done <= it.target for i, it in items.items())  # never over-served
    assert reserved == 0
