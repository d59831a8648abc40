"""Contamination: exact (normalized), 13-gram and character 5-gram tests against an eval set.

The HH-RLHF sample is the dataset; the unrelated eval texts are the few-shot examples that
lm-eval ships inside its task configs (MMLU, BBH, GSM8K… questions and answers).
"""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import random
import re
from pathlib import Path

import polars as pl
import pytest
import yaml

from preflab.audit.contamination import (
    SIMILARITY_THRESHOLD,
    contamination,
    read_eval_texts,
    similar_texts,
)
from preflab.audit.shingles import char_shingles, normalize_texts
from preflab.errors import InputError

FALSE_ALARM_BOUND = 0.01  # docs/audit.md states the measured rate (0 of 1,000) and this bound


def _first_turns(hh_pairs: pl.DataFrame) -> list[str]:
    """Distinct first user turns of the HH sample, in file order."""
    return list(dict.fromkeys(m[0]["content"] for m in hh_pairs["prompt"].to_list()))


def _paraphrase(text: str, rng: random.Random) -> str:
    """One word (of 3+ letters) replaced by another word, and the punctuation dropped."""
    words = text.split()
    idx = [i for i, w in enumerate(words) if len(re.sub(r"\W", "", w)) >= 3] or list(range(len(words)))
    i = rng.choice(idx)
    words[i] = rng.choice([w for w in ("thing", "person", "really", "house", "money") if w != words[i].lower()])
    return re.sub(r"[^\w\s]", "", " ".join(words))


def _unrelated_eval_texts(count: int) -> list[str]:
    """``count`` few-shot texts of 4+ words from lm-eval's task configs (seeded choice)."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or spec.origin is None:
        pytest.skip("lm-eval is not installed (pip install 'preflab[judges]')")
    root = Path(spec.origin).parent / "tasks"

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)  # !function tags
    texts: set[str] = set()
    for path in sorted(root.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if "fewshot_config" not in text or "samples:" not in text:
            continue
        try:
            conf = yaml.load(text, Loader=Loader)
        except yaml.YAMLError:
            continue
        shots = (conf.get("fewshot_config") or {}) if isinstance(conf, dict) else {}
        for row in (shots.get("samples") if isinstance(shots, dict) else None) or []:
            if isinstance(row, dict):
                texts.update(v for v in row.values() if isinstance(v, str) and len(v.split()) >= 4)
    if len(texts) < count:
        pytest.skip(f"lm-eval ships {len(texts)} few-shot texts, fewer than {count}")
    return random.Random(0).sample(sorted(texts), count)


def test_twenty_short_items_equal_to_hh_prompts_are_all_found(hh_pairs: pl.DataFrame) -> None:
    short = [t for t in _first_turns(hh_pairs) if 1 <= len(t.split()) <= 8][:20]
    assert len(short) == 20
    # the same words, in other case and spacing, with other punctuation
    items = [t.upper().replace("?", "") + " ?" for t in short]
    res = contamination(hh_pairs, items)
    assert res["eval_items_hit"] == 20
    assert res["by_test"]["exact"]["eval_items_hit"] == 20


def test_compared_prompt_text_has_no_role_prefix(hh_pairs: pl.DataFrame) -> None:
    single = next(ms[0]["content"] for ms in hh_pairs["prompt"].to_list() if len(ms) == 1)
    res = contamination(hh_pairs, [single, "user: " + single])
    hit = {e["eval_item"]: e for e in res["examples"]}
    assert hit[0]["test"] == "exact" and hit[0]["part"] in ("whole", "turn")
    assert 1 not in hit or hit[1]["test"] != "exact"


def test_light_paraphrases_of_hh_prompts_are_found(hh_pairs: pl.DataFrame) -> None:
    rng = random.Random(5)
    turns = [t for t in _first_turns(hh_pairs) if len(t.split()) >= 3]
    short = [t for t in turns if len(t.split()) <= 8]
    chosen = rng.sample(short, 5) + rng.sample([t for t in turns if len(t.split()) > 8], 5)
    items = [_paraphrase(t, rng) for t in chosen]
    assert all(normalize_texts([a])[0] != normalize_texts([b])[0] for a, b in zip(items, chosen, strict=True))
    res = contamination(hh_pairs, items)
    assert res["by_test"]["exact"]["eval_items_hit"] == 0
    assert res["by_test"]["similar"]["eval_items_hit"] >= 8
    assert all(e["test"] in ("similar", "ngram") for e in res["examples"])


def test_unrelated_eval_text_raises_few_false_alarms(hh_pairs: pl.DataFrame) -> None:
    evals = _unrelated_eval_texts(1000)
    res = contamination(hh_pairs, evals)
    assert res["eval_items"] == 1000
    assert res["eval_items_hit"] / 1000 <= FALSE_ALARM_BOUND


def test_similarity_join_finds_every_pair_a_brute_force_finds() -> None:
    rng = random.Random(11)
    words = ["ab", "abc", "bca", "cab", "ba", "a", "cc"]
    left = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 6))) for _ in range(60)]
    right = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 6))) for _ in range(80)]
    qs, ts = char_shingles(left, n=3), char_shingles(right, n=3)

    def sets(sh):
        out = {}
        for d, h in zip(sh.docs.tolist(), sh.hashes.tolist(), strict=True):
            out.setdefault(d, set()).add(h)
        return out

    a, b = sets(qs), sets(ts)
    for t in (0.3, 0.5, 0.8, 1.0):
        expected = {(i, j) for i, j in itertools.product(a, b) if len(a[i] & b[j]) / len(a[i] | b[j]) >= t}
        got = similar_texts(qs, ts, threshold=t, block=7)
        assert expected == set(zip(got["query"].to_list(), got["target"].to_list(), strict=True))


def test_each_hit_names_the_test_that_found_it(hh_pairs: pl.DataFrame) -> None:
    long_reply = " ".join(hh_pairs["chosen"][5].split()[:20])
    first = _first_turns(hh_pairs)[0]
    res = contamination(hh_pairs, ["Unrelated " + long_reply + " tail", first])
    tests = {e["eval_item"]: e["test"] for e in res["examples"]}
    assert tests[0] == "ngram" and tests[1] == "exact"
    assert res["similarity"]["threshold"] == SIMILARITY_THRESHOLD and res["normalization"]


def test_an_eval_item_copied_into_a_response_is_found(hh_pairs: pl.DataFrame) -> None:
    leaked = " ".join(hh_pairs["chosen"][5].split()[:20])
    evals = ["What is the boiling point of water at sea level in degrees Celsius?", "Unrelated " + leaked + " tail"]
    res = contamination(hh_pairs, evals)
    assert res["contaminated_rows"] >= 1
    assert {(e["row"], e["eval_item"]) for e in res["examples"]} >= {(5, 1)}
    assert res["by_column"]["chosen"] >= 1 and res["eval_items_hit"] == 1


def test_twelve_shared_words_are_not_contamination() -> None:
    words = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]
    df = pl.DataFrame({"prompt": ["x " + " ".join(words) + " y"], "chosen": ["c"], "rejected": ["r"]})
    # the 13-gram rule alone (the similarity test would find these near-equal texts)
    assert contamination(df, ["z " + " ".join(words) + " w"], similarity_threshold=None)["contaminated_rows"] == 0
    assert contamination(df, ["x " + " ".join(words)], similarity_threshold=None)["contaminated_rows"] == 1


def test_prompt_messages_are_checked(hh_pairs: pl.DataFrame) -> None:
    first = next(m[0]["content"] for m in hh_pairs["prompt"] if len(m[0]["content"].split()) >= 13)
    res = contamination(hh_pairs, [first])
    assert res["by_column"]["prompt"] >= 1


def test_read_eval_texts_reads_lines_jsonl_and_names_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "e.txt").write_text("q1\n\nq2\n")
    assert read_eval_texts(tmp_path / "e.txt") == ["q1", "q2"]
    with gzip.open(tmp_path / "e.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"question": "q1", "answer": "a"}) + "\n")
    assert read_eval_texts(tmp_path / "e.jsonl.gz") == ["q1"]
    (tmp_path / "bad.jsonl").write_text('{"question": "ok"}\n{"answer": 1}\n')
    with pytest.raises(InputError) as err:
        read_eval_texts(tmp_path / "bad.jsonl")
    assert err.value.line == 2 and "bad.jsonl" in str(err.value)


def test_similarity_join_in_target_blocks_equals_one_join(hh_pairs: pl.DataFrame) -> None:
    from preflab.audit.contamination import _similar_in_blocks

    turns = normalize_texts(pl.Series([m["content"] for msgs in hh_pairs["prompt"].to_list()
                                       for m in msgs if m["role"] == "user"]))
    rng = random.Random(5)
    queries = normalize_texts(pl.Series([_paraphrase(t, rng) for t in rng.sample(turns.to_list(), 40)]))
    q = char_shingles(queries, n=5)
    one = similar_texts(q, char_shingles(turns, n=5), threshold=0.35)
    blocked = _similar_in_blocks(q, turns, n=5, threshold=0.35, block=97)
    assert one.height >= 20  # most paraphrases match at least their own source turn
    assert one.to_dicts() == blocked.to_dicts()
