"""Gold placement and overlap by property tests (issue 13): over many simulated annotators the
gold share holds within one block, no annotator gets a gold item twice, gold places differ per
annotator (not every k-th task), and gold never touches the overlap counts of other items."""

from __future__ import annotations

import itertools
import math

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from preflab import collect
from preflab.collect import ProjectCreate
from preflab.collect.gold import GOLD_BLOCK, is_gold_due
from preflab.store.tables import Item, JudgmentRow

from .conftest import Seeded, add_prompt_items, password_hash, seed_project

SHARES = st.floats(min_value=0.01, max_value=0.5, allow_nan=False)
USERS = st.text(alphabet="abcdefghij0123456789", min_size=1, max_size=12)
TIE = {"scale": 5, "preferred": None, "strength": 0, "tie": True, "both_bad": False}


@settings(deadline=None)
@given(share=SHARES, user=USERS, blocks=st.integers(1, 12))
def test_share_is_exact_at_each_block_end(share: float, user: str, blocks: int) -> None:
    n = blocks * GOLD_BLOCK
    got = sum(is_gold_due(k, share, "seed", "proj", user) for k in range(1, n + 1))
    assert math.floor(n * share + 1e-9) == got


@settings(deadline=None)
@given(share=SHARES, user=USERS, n=st.integers(1, 400))
def test_share_holds_within_one_block_at_any_point(share: float, user: str, n: int) -> None:
    got = sum(is_gold_due(k, share, "seed", "proj", user) for k in range(1, n + 1))
    assert abs(got - n * share) <= GOLD_BLOCK * share + 1


@settings(deadline=None, max_examples=30)
@given(share=st.sampled_from([0.05, 0.1, 0.2, 0.25]), users=st.lists(USERS, min_size=20,
                                                                     max_size=40, unique=True))
def test_places_differ_between_annotators_and_are_not_periodic(share: float,
                                                               users: list[str]) -> None:
    places = {u: tuple(k for k in range(1, 201) if is_gold_due(k, share, "s", "p", u))
              for u in users}
    assert len(set(places.values())) > 1
    # a fixed period ("every k-th task") would make every gap the same
    gaps = {b - a for u in users for a, b in itertools.pairwise(places[u])}
    assert len(gaps) > 1


def _simulate(seeded: Seeded, pid: str, order: list[int], users: list[str],
              wrong: set[str]) -> dict[str, list[tuple[str, bool]]]:
    """Let annotators take and answer tasks in ``order`` (indexes into ``users``); return each
    one's served ``(item_id, is_gold)`` in order. Stops a user once nothing is left."""
    served: dict[str, list[tuple[str, bool]]] = {u: [] for u in users}
    finished: set[str] = set()
    for step, k in enumerate(order):
        user = users[k % len(users)]
        if user in finished:
            continue
        with seeded.db.write() as s:
            t = collect.next_task(s, collect.get_project(s, pid), f"human:{user}")
            if t is None:
                finished.add(user)
                continue
            served[user].append((t.item.item_id, t.item.is_gold))
            value = dict(TIE, tie=user not in wrong, both_bad=user in wrong)
            collect.submit_judgment(
                s, assignment_id=t.assignment.assignment_id, user_id=f"human:{user}",
                kind="pairwise", value=value, idempotency_key=f"{pid}-{step}",
                guideline_version=None)
    return served


_projects = itertools.count()


@settings(max_examples=4, deadline=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(share=st.sampled_from([0.1, 0.2, 0.25]), n_users=st.integers(3, 6),
       overlap=st.integers(1, 3), seed=st.integers(0, 2**16), data=st.data())
def test_queue_keeps_the_share_never_repeats_gold_and_leaves_overlap_alone(
        seeded: Seeded, share: float, n_users: int, overlap: int, seed: int,
        data: st.DataObject) -> None:
    run = next(_projects)
    users = [f"sim{run}u{i}" for i in range(n_users)]
    with seeded.db.write() as s:
        for u in users:
            collect.create_user(s, u, password_hash("alice"))
    pid = seed_project(seeded.db, ProjectCreate(name=f"Sim {run}",
                                                gold_share=share, overlap=overlap), [])
    gold = add_prompt_items(seeded.db, pid, [(f"G{seed}-{i}?", [f"ga{i}", f"gb{i}"])
                                             for i in range(GOLD_BLOCK)])
    plain = add_prompt_items(seeded.db, pid, [(f"N{seed}-{i}?", [f"na{i}", f"nb{i}"])
                                              for i in range(24 * n_users)], target=overlap)
    with seeded.db.transaction() as conn:
        collect.set_gold(conn, pid, [collect.GoldLine(0, g, {"tie": True}) for g in gold])
    # a random interleaving of one block of tasks per annotator
    order = data.draw(st.permutations(list(range(n_users)) * GOLD_BLOCK))
    served = _simulate(seeded, pid, order, users, wrong={users[0]})
    full_blocks = 0
    for user, got in served.items():
        gold_ids = [i for i, g in got if g]
        assert len(gold_ids) == len(set(gold_ids)), user  # never the same gold item twice
        first_block = got[:GOLD_BLOCK]
        if len(first_block) == GOLD_BLOCK:
            full_blocks += 1
            assert math.floor(GOLD_BLOCK * share + 1e-9) == sum(g for _, g in first_block)
    assert full_blocks == n_users  # every simulated annotator got a whole block of tasks
    with seeded.db.read() as s:
        rows = {i.item_id: i for i in s.query(Item).filter(Item.project_id == pid)}
        judged: dict[str, int] = {}
        for j in s.query(JudgmentRow).filter(JudgmentRow.project_id == pid):
            judged[j.item_id] = judged.get(j.item_id, 0) + 1
    for item_id in plain:  # overlap counts are the plain judgments only, never past target
        item = rows[item_id]
        assert judged.get(item_id, 0) == item.done <= item.target == overlap
        assert item.reserved == 0 and item.is_open == (item.done < item.target)
    with seeded.db.connect() as conn:
        progress = collect.project_progress(conn, pid)
    assert len(plain) == progress.items  # gold stays out of the item and target counts
    assert len(plain) * overlap == progress.target_judgments
    assert sum(1 for i in plain if rows[i].done >= overlap) == progress.complete_items
    for g in progress.gold:  # users[0] answers every gold item wrong, the others right
        assert g["correct"] == (0 if g["judge_id"] == f"human:{users[0]}" else g["total"])
