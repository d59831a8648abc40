"""Gold items (issue 13): answers checked against their item, uploads all or nothing, the
threshold that flags and stops an annotator, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from preflab import collect
from preflab.collect import ProjectCreate
from preflab.errors import InputError, PermissionDeniedError
from preflab.store.tables import Item

from .conftest import Seeded, add_prompt_items, seed_project

TIE = {"scale": 5, "preferred": None, "strength": 0, "tie": True, "both_bad": False}


def _rids(seeded: Seeded, item_id: str) -> list[str]:
    with seeded.db.connect() as conn:
        item = collect.get_item(conn, item_id)
    assert item is not None
    return list(item.response_ids)


def _gold_state(seeded: Seeded) -> list[tuple[str, bool, object]]:
    with seeded.db.read() as s:
        return sorted((i.item_id, i.is_gold, i.gold_answer)
                      for i in s.query(Item).filter(Item.project_id == seeded.project_id))


def test_answer_naming_a_response_the_item_lacks_is_refused(seeded: Seeded) -> None:
    item_id = seeded.item_ids[0]
    with pytest.raises(InputError) as err, seeded.db.transaction() as conn:
        collect.set_gold(conn, seeded.project_id,
                         [collect.GoldLine(0, item_id, {"preferred": "r_other"})])
    assert err.value.field == "answer.preferred"
    assert str(err.value).startswith(f'field "answer.preferred" of item {item_id}: expected one')
    assert "r_other" in str(err.value)


@pytest.mark.parametrize(("spec", "answer", "field"), [
    ({"allow_tie": False, "scale": 8}, {"tie": True}, "answer.tie"),
    ({"allow_both_bad": False}, {"both_bad": True}, "answer.both_bad"),
    ({}, {"preferred": "$0", "tie": True}, "answer"),
    ({}, {"preferred": "$0", "min_strength": 3}, "answer.min_strength"),
    ({}, {"label": True}, "answer.label"),
    ({"kind": "binary"}, {"label": "yes"}, "answer.label"),
    ({"kind": "ranking"}, {"best": "nope"}, "answer.best"),
    ({"kind": "rating"}, {"scores": {"$0": {"helpfulness": 9}}}, "answer.scores.$0.helpfulness"),
    ({"kind": "rating"}, {"scores": {"$0": {"charm": 2}}}, "answer.scores.$0.charm"),
])
def test_answers_are_checked_against_the_kind_and_scale(seeded: Seeded, spec, answer,
                                                        field) -> None:
    pid = seed_project(seeded.db, ProjectCreate(name="Checked", **spec), [])
    (item_id,) = add_prompt_items(seeded.db, pid, [("Q?", ["a", "b"])])
    rid = _rids(seeded, item_id)[0]
    fill = {k: ({rid: v["$0"]} if k == "scores" else (rid if v == "$0" else v))
            for k, v in answer.items()}
    with pytest.raises(InputError) as err, seeded.db.transaction() as conn:
        collect.set_gold(conn, pid, [collect.GoldLine(0, item_id, fill)])
    assert err.value.field == field.replace("$0", rid)


def test_each_kind_takes_its_answer(seeded: Seeded) -> None:
    for kind in ("pairwise", "binary", "ranking", "rating"):
        pid = seed_project(seeded.db, ProjectCreate(name=f"Kind {kind}", kind=kind), [])
        (item_id,) = add_prompt_items(seeded.db, pid, [("Q?", ["a", "b"])])
        r0, r1 = _rids(seeded, item_id)
        answer, stored = {
            "pairwise": ({"both_bad": True}, {"both_bad": True}),
            "binary": ({"label": False}, {"label": False, "response_id": r0}),
            "ranking": ({"best": r1}, {"best": r1}),
            "rating": ({"scores": {r0: {"coherence": 3}}, "tolerance": 1},
                       {"scores": {r0: {"coherence": 3.0}}, "tolerance": 1.0}),
        }[kind]
        with seeded.db.transaction() as conn:
            collect.set_gold(conn, pid, [collect.GoldLine(0, item_id, answer)])
        with seeded.db.connect() as conn:
            assert [stored] == [g["answer"] for g in collect.list_gold(conn, pid)]


@pytest.mark.parametrize(("kind", "value", "answer", "right"), [
    ("pairwise", {"preferred": "a", "strength": 1}, {"preferred": "a"}, True),
    ("pairwise", {"preferred": "a", "strength": 1}, {"preferred": "a", "min_strength": 2}, False),
    ("pairwise", {"preferred": "b", "strength": 2}, {"preferred": "a"}, False),
    ("pairwise", {"tie": True}, {"tie": True}, True),
    ("pairwise", {"both_bad": True, "preferred": None}, {"preferred": "a"}, False),
    ("pairwise", {"both_bad": True}, {"both_bad": True}, True),
    ("binary", {"response_id": "a", "label": True}, {"label": True, "response_id": "a"}, True),
    ("binary", {"response_id": "a", "label": False}, {"label": True, "response_id": "a"}, False),
    ("ranking", {"groups": [["a"], ["b"]]}, {"best": "a"}, True),
    ("ranking", {"groups": [["a", "b"]]}, {"best": "a"}, False),
    ("rating", {"scores": {"a": {"h": 3.0}}}, {"scores": {"a": {"h": 4.0}}, "tolerance": 1}, True),
    ("rating", {"scores": {"a": {"h": 2.0}}}, {"scores": {"a": {"h": 4.0}}, "tolerance": 1}, False),
])
def test_gold_correct_per_kind(kind, value, answer, right) -> None:
    assert right == collect.gold.gold_correct(kind, value, answer)


def test_upload_with_one_bad_line_stores_nothing(seeded: Seeded) -> None:
    a, b, c = seeded.item_ids[:3]
    ra = _rids(seeded, a)
    text = ("item_id,preferred,tie\n"
            f"{a},{ra[0]},\n"
            f"{b},,yes\n"
            f"{c},r_not_this_items,\n")
    before = _gold_state(seeded)
    with pytest.raises(InputError) as err, seeded.db.transaction() as conn:
        collect.load_gold_file(conn, seeded.project_id, "gold.csv", text.encode())
    assert (err.value.path, err.value.line, err.value.field) == ("gold.csv", 4,
                                                                 "answer.preferred")
    assert str(err.value).startswith('gold.csv, line 4, field "answer.preferred": expected one')
    assert before == _gold_state(seeded)  # the good lines 2 and 3 are not stored either


def test_upload_names_every_bad_line_of_a_jsonl_file(seeded: Seeded) -> None:
    a, b = seeded.item_ids[:2]
    text = (f'{{"item_id": "{a}", "answer": {{"tie": true}}}}\n'
            "not json\n"
            '{"item_id": "i_missing", "answer": {"tie": true}}\n'
            f'{{"item_id": "{b}", "answer": {{"colour": "red"}}}}\n')
    with pytest.raises(InputError) as err, seeded.db.transaction() as conn:
        collect.load_gold_file(conn, seeded.project_id, "gold.jsonl", text.encode())
    msg = str(err.value)
    assert err.value.line == 2
    assert msg.startswith('gold.jsonl, line 2, field "file": not JSON')
    assert 'gold.jsonl, line 3, field "item_id": no item' in msg
    assert 'gold.jsonl, line 4, field "answer.colour"' in msg
    assert "3 problems; nothing was stored" in msg
    assert not any(g for _, g, _ in _gold_state(seeded))


def test_good_upload_marks_every_line_gold(seeded: Seeded) -> None:
    a, b = seeded.item_ids[:2]
    rb = _rids(seeded, b)
    text = (f'{{"item_id": "{a}", "answer": {{"tie": true}}}}\n\n'
            f'{{"item_id": "{b}", "preferred": "{rb[1]}"}}\n')
    with seeded.db.transaction() as conn:
        assert 2 == collect.load_gold_file(conn, seeded.project_id, "g.jsonl", text.encode())
        assert [(a, {"tie": True}), (b, {"preferred": rb[1]})] == sorted(
            (g["item_id"], g["answer"]) for g in collect.list_gold(conn, seeded.project_id))
        assert 1 == collect.clear_gold(conn, seeded.project_id, [a, "i_unknown"])
        assert [b] == [g["item_id"] for g in collect.list_gold(conn, seeded.project_id)]


def _answer(seeded: Seeded, pid: str, user: str, gold_value: dict, *, tasks: int = 40,
            until_gold: int | None = None) -> int:
    """Serve and answer tasks (gold ones with ``gold_value``); return how many were gold."""
    n_gold = 0
    for i in range(tasks):
        if until_gold is not None and n_gold >= until_gold:
            break
        with seeded.db.write() as s:
            t = collect.next_task(s, collect.get_project(s, pid), f"human:{user}")
            assert t is not None
            n_gold += t.item.is_gold
            collect.submit_judgment(
                s, assignment_id=t.assignment.assignment_id, user_id=f"human:{user}",
                kind="pairwise", value=gold_value if t.item.is_gold else TIE,
                idempotency_key=f"{pid}-{user}-{i}", guideline_version=None)
    return n_gold


def _gold_project(seeded: Seeded, name: str, answer: dict, threshold: dict) -> str:
    pid = seed_project(seeded.db, ProjectCreate(name=name, gold_share=0.5), ["alice", "bob"])
    gold_ids = add_prompt_items(seeded.db, pid, [(f"G{i}?", [f"x{i}", f"y{i}"])
                                                 for i in range(12)])
    add_prompt_items(seeded.db, pid, [(f"N{i}?", [f"p{i}", f"q{i}"]) for i in range(30)])
    with seeded.db.transaction() as conn:
        collect.set_gold(conn, pid, [collect.GoldLine(0, g, answer) for g in gold_ids])
        collect.set_gold_threshold(conn, pid, threshold)
    return pid


def test_threshold_flags_and_stops_a_wrong_annotator_only(seeded: Seeded) -> None:
    pid = _gold_project(seeded, "Strict", {"tie": True},
                        {"min_accuracy": 0.75, "after": 3, "stop_serving": True})
    wrong = {"scale": 5, "preferred": None, "strength": 0, "tie": False, "both_bad": True}
    assert 3 == _answer(seeded, pid, "alice", wrong, until_gold=3)
    _answer(seeded, pid, "bob", TIE, until_gold=3)
    with seeded.db.connect() as conn:
        progress = collect.project_progress(conn, pid)
    assert {"human:alice": True, "human:bob": False} == {g["judge_id"]: g["flagged"]
                                                         for g in progress.gold}
    with pytest.raises(PermissionDeniedError) as err, seeded.db.write() as s:
        collect.next_task(s, collect.get_project(s, pid), "human:alice")
    assert err.value.field == "gold_accuracy"
    assert "gold accuracy 0% (0 of 3) is below the minimum 75% after 3 gold items" in str(err.value)
    with seeded.db.write() as s:  # bob keeps working
        assert collect.next_task(s, collect.get_project(s, pid), "human:bob") is not None


def test_threshold_without_stop_only_flags(seeded: Seeded) -> None:
    pid = _gold_project(seeded, "Lenient", {"both_bad": True}, {"min_accuracy": 0.9, "after": 1})
    assert 2 == _answer(seeded, pid, "alice", TIE, until_gold=2)
    with seeded.db.write() as s:
        assert collect.next_task(s, collect.get_project(s, pid), "human:alice") is not None
        assert [True] == [g["flagged"] for g in collect.project_progress(s, pid).gold]


def test_threshold_out_of_range_is_refused(seeded: Seeded) -> None:
    with pytest.raises(InputError) as err, seeded.db.transaction() as conn:
        collect.set_gold_threshold(conn, seeded.project_id, {"min_accuracy": 1.5, "after": 3})
    assert err.value.field == "min_accuracy"
