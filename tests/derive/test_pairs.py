"""Each named rule of derive_pairs, one behaviour per test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preflab.derive import HELPSTEER2_WEIGHTS, DeriveConfig, derive_pairs
from preflab.errors import InputError, UsageError
from preflab.records import PAIR_SCHEMA, Pair, Span, table_to_records


def rows(table, *cols):
    return [tuple(r[c] for c in cols) for r in table.to_pylist()]


# --- pairwise ----------------------------------------------------------------------------


def test_likert_pair_takes_preferred_as_chosen_with_margin_from_strength(tables):
    p = tables.prompt("Is the sky blue?")
    a, b = tables.response(p, "Yes, on a clear day."), tables.response(p, "No.")
    tables.pairwise(p, b, a, preferred=a, scale=7, strength=2)
    pairs = tables.derive().pairs
    assert rows(pairs, "chosen", "rejected", "margin", "rule") == [
        ("Yes, on a clear day.", "No.", pytest.approx(2 / 3), "pairwise_likert")
    ]


def test_two_point_scale_gives_margin_one(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "good"), tables.response(p, "bad")
    tables.pairwise(p, a, b, preferred=a, scale=2)
    assert tables.derive().pairs.column("margin").to_pylist() == [1.0]


def test_pairwise_result_does_not_depend_on_screen_order(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "good"), tables.response(p, "bad")
    tables.pairwise(p, b, a, preferred=a)
    tables.pairwise(p, a, b, preferred=a, judge="bob")
    assert rows(tables.derive().pairs, "chosen", "rejected") == [("good", "bad")] * 2


def test_spans_and_critique_leave_the_derived_pair_unchanged(tables):
    p = tables.prompt("Capital of France?")
    a, b = tables.response(p, "Paris."), tables.response(p, "Berlin.")
    tables.pairwise(p, b, a, preferred=a, scale=5, strength=2, judgment_id="j1")
    plain = tables.derive().pairs
    tables.judgments.clear()
    flagged = Span(response_id=b.response_id, start=0, end=6, label="factual error",
                   text="Berlin")
    tables.pairwise(p, b, a, preferred=a, scale=5, strength=2, judgment_id="j1",
                    spans=[flagged], critique="Berlin is in Germany.")
    assert tables.judgments[0].spans == (flagged,)
    assert tables.derive().pairs.equals(plain)


def test_tie_is_dropped_and_counted_by_default(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "one"), tables.response(p, "two")
    tables.pairwise(p, a, b, tie=True)
    result = tables.derive()
    assert (result.pairs.num_rows, result.ties.num_rows, result.counts["ties_dropped"]) == (0, 0, 1)


def test_tie_is_returned_separately_when_asked(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "one"), tables.response(p, "two")
    j = tables.pairwise(p, a, b, tie=True)
    result = tables.derive(tie_policy="separate")
    assert result.pairs.num_rows == 0
    assert rows(result.ties, "judgment_ids", "both_bad") == [([j.judgment_id], False)]
    assert {result.ties.column("response_a")[0].as_py(), result.ties.column("response_b")[0].as_py()} == {"one", "two"}


def test_both_bad_gives_two_negative_unpaired_rows_and_no_pair(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "one"), tables.response(p, "two")
    tables.pairwise(p, a, b, both_bad=True)
    result = tables.derive(tie_policy="separate")
    assert result.pairs.num_rows == 0 and result.ties.num_rows == 0
    assert sorted(rows(result.unpaired, "completion", "label", "rule")) == [
        ("one", False, "pairwise_both_bad"),
        ("two", False, "pairwise_both_bad"),
    ]


def test_both_bad_with_a_less_bad_side_is_still_never_a_pair(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "one"), tables.response(p, "two")
    tables.pairwise(p, a, b, preferred=a, both_bad=True)
    result = tables.derive()
    assert (result.pairs.num_rows, result.unpaired.num_rows) == (0, 2)


def test_pair_records_provenance(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "good"), tables.response(p, "bad")
    j = tables.pairwise(p, a, b, preferred=a, judge="vendor-7", guideline_version=3, batch_id="b-12",
                        source="hh.jsonl")
    row = tables.derive().pairs.to_pylist()[0]
    assert (row["judgment_ids"], row["judge_ids"], row["guideline_version"], row["batch_id"], row["source"]) == (
        [j.judgment_id], ["vendor-7"], 3, "b-12", "hh.jsonl")
    assert json.loads(row["rule_params"]) == {"aggregate": "none", "multiturn": "as_recorded",
                                              "tie_policy": "drop"}


def test_pairs_table_has_pair_schema_and_rows_are_valid_pair_records(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "good"), tables.response(p, "bad")
    tables.pairwise(p, a, b, preferred=a)
    pairs = tables.derive().pairs
    assert pairs.schema.equals(PAIR_SCHEMA)
    assert [x.chosen for x in table_to_records(pairs, Pair)] == ["good"]


def test_same_text_after_normalization_never_pairs(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "Same answer", model="m1"), tables.response(p, " Same answer\n", model="m2")
    tables.pairwise(p, a, b, preferred=a)
    result = tables.derive()
    assert (result.pairs.num_rows, result.counts["identical_dropped"]) == (0, 1)


def test_unknown_response_is_an_input_error_naming_the_judgment(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "good"), tables.response(p, "bad")
    j = tables.pairwise(p, a, b, preferred=a)
    del tables.responses[b.response_id]
    with pytest.raises(InputError) as info:
        tables.derive()
    assert j.judgment_id in str(info.value) and info.value.field == "response_ids"


def test_unknown_rule_name_is_a_usage_error():
    with pytest.raises(UsageError) as info:
        DeriveConfig(ranking_rule="pairs_of_all")  # type: ignore[arg-type]
    assert info.value.field == "ranking_rule" and "adjacent" in str(info.value)


# --- ranking -----------------------------------------------------------------------------


@pytest.fixture
def ranked(tables):
    p = tables.prompt("Rank these")
    r1, r2a, r2b, r3 = (tables.response(p, t) for t in ("first", "second-a", "second-b", "third"))
    tables.ranking(p, [[r1], [r2a, r2b], [r3]])
    return tables


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("all", {("first", "second-a"), ("first", "second-b"), ("first", "third"),
                 ("second-a", "third"), ("second-b", "third")}),
        ("adjacent", {("first", "second-a"), ("first", "second-b"), ("second-a", "third"),
                      ("second-b", "third")}),
        ("best_vs_rest", {("first", "second-a"), ("first", "second-b"), ("first", "third")}),
    ],
)
def test_ranking_rules(ranked, rule, expected):
    pairs = ranked.derive(ranking_rule=rule).pairs
    assert set(rows(pairs, "chosen", "rejected")) == expected
    assert set(pairs.column("rule").to_pylist()) == {f"ranking_{rule}"}


def test_ranking_never_pairs_responses_tied_in_one_group(ranked):
    got = set(rows(ranked.derive(ranking_rule="all").pairs, "chosen", "rejected"))
    assert not {("second-a", "second-b"), ("second-b", "second-a")} & got


def test_ranking_margin_is_group_distance_over_span(ranked):
    pairs = ranked.derive(ranking_rule="all").pairs
    margins = dict(zip(rows(pairs, "chosen", "rejected"), pairs.column("margin").to_pylist(), strict=True))
    assert (margins[("first", "third")], margins[("first", "second-a")]) == (1.0, 0.5)


# --- ratings -----------------------------------------------------------------------------


def test_best_vs_worst_pairs_highest_with_lowest(tables):
    p = tables.prompt("Q")
    rs = [(tables.response(p, f"score {s}"), s) for s in (1, 4, 2, 3)]
    tables.rating(p, rs)
    pairs = tables.derive(rating_rule="best_vs_worst").pairs
    assert rows(pairs, "chosen", "rejected", "margin") == [("score 4", "score 1", 3.0)]


def test_best_vs_random_lower_picks_a_strictly_lower_response_reproducibly(tables):
    p = tables.prompt("Q")
    rs = [(tables.response(p, f"score {s}"), s) for s in (5, 3, 2, 5.0001)]
    tables.rating(p, rs)
    first = rows(tables.derive(rating_rule="best_vs_random_lower", seed=3).pairs, "chosen", "rejected")
    again = rows(tables.derive(rating_rule="best_vs_random_lower", seed=3).pairs, "chosen", "rejected")
    assert first == again
    assert first[0][0] == "score 5.0001" and first[0][1] in {"score 5", "score 3", "score 2"}


def test_best_vs_random_lower_draws_every_lower_response_across_seeds(tables):
    p = tables.prompt("Q")
    tables.rating(p, [(tables.response(p, f"score {s}"), s) for s in (4, 3, 2, 1)])
    seen = {rows(tables.derive(seed=s).pairs, "rejected")[0][0] for s in range(40)}
    assert seen == {"score 3", "score 2", "score 1"}


def test_equal_ratings_never_make_a_pair(tables):
    p = tables.prompt("Q")
    tables.rating(p, [(tables.response(p, "a"), 3), (tables.response(p, "b"), 3)])
    for rule in ("best_vs_random_lower", "best_vs_worst", "all_above_margin"):
        assert tables.derive(rating_rule=rule).pairs.num_rows == 0


def test_all_above_margin_keeps_pairs_at_or_over_the_margin(tables):
    p = tables.prompt("Q")
    tables.rating(p, [(tables.response(p, f"s{s}"), s) for s in (1, 2, 4)])
    pairs = tables.derive(rating_rule="all_above_margin", min_margin=2).pairs
    assert set(rows(pairs, "chosen", "rejected")) == {("s4", "s2"), ("s4", "s1")}


def test_weighted_attributes_can_reverse_the_unweighted_order(tables):
    p = tables.prompt("Q")
    long = tables.response(p, "long and vague")
    short = tables.response(p, "short and right")
    tables.rating(p, [
        (long, {"helpfulness": 3, "correctness": 2, "coherence": 3, "complexity": 2, "verbosity": 4}),
        (short, {"helpfulness": 3, "correctness": 3, "coherence": 3, "complexity": 2, "verbosity": 1}),
    ])
    weighted = tables.derive(rating_rule="best_vs_worst", attribute_weights=HELPSTEER2_WEIGHTS).pairs
    assert rows(weighted, "chosen") == [("short and right",)]
    # 0.74 * (3 - 2) - 0.33 * (1 - 4) = 1.73
    assert weighted.column("margin")[0].as_py() == pytest.approx(1.73)
    only_verbosity = tables.derive(rating_rule="best_vs_worst", attribute_weights={"verbosity": 1.0}).pairs
    assert rows(only_verbosity, "chosen") == [("long and vague",)]


def test_unweighted_score_is_the_mean_of_attributes(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "a"), tables.response(p, "b")
    tables.rating(p, [(a, {"x": 4, "y": 0}), (b, {"x": 1, "y": 2})])
    assert rows(tables.derive(rating_rule="best_vs_worst").pairs, "chosen", "margin") == [("a", 0.5)]


# --- edit, binary ------------------------------------------------------------------------


def test_edit_puts_edited_over_original(tables):
    p = tables.prompt("Fix my sentence")
    orig, fixed = tables.response(p, "Their going home."), tables.response(p, "They're going home.")
    tables.edit(p, orig, fixed)
    assert rows(tables.derive().pairs, "chosen", "rejected", "margin", "rule") == [
        ("They're going home.", "Their going home.", None, "edit_over_original")]


def test_binary_thumbs_become_unpaired_rows_not_pairs(tables):
    p = tables.prompt("Q")
    up, down = tables.response(p, "nice"), tables.response(p, "rude")
    tables.binary(p, up, True)
    tables.binary(p, down, False)
    result = tables.derive()
    assert result.pairs.num_rows == 0
    assert sorted(rows(result.unpaired, "completion", "label", "rule")) == [
        ("nice", True, "binary_thumbs"), ("rude", False, "binary_thumbs")]


def test_derive_pairs_on_empty_tables_gives_an_empty_pair_table(tables):
    assert derive_pairs(*tables.tables()).schema.equals(PAIR_SCHEMA)


@pytest.mark.parametrize(("one", "two"), [("line\r\nbreak", "line\nbreak"), ("caf\u00e9", "cafe\u0301"),
                                          ("same", "same  ")])
def test_texts_equal_after_normalization_never_pair(tables, one, two):
    p = tables.prompt("Q")
    a, b = tables.response(p, one, model="m1"), tables.response(p, two, model="m2")
    tables.pairwise(p, a, b, preferred=a)
    assert tables.derive().pairs.num_rows == 0


def test_helpsteer2_weights_match_the_published_model_card():
    reference = json.loads((Path(__file__).parents[1] / "reference" / "helpsteer2_weights.json").read_text())
    assert dict(zip(reference["attributes"], reference["weights"], strict=True)) == dict(HELPSTEER2_WEIGHTS)


def test_helpsteer2_rows_of_one_prompt_make_a_pair_without_aggregation(tmp_path):
    """HelpSteer2 stores one ratings row per response; one judge's rows of a prompt are compared."""
    from preflab.derive import derive
    from preflab.formats.registry import read

    rows = [
        {"prompt": "Name a prime.", "response": "4.", "helpfulness": 1, "correctness": 0,
         "coherence": 4, "complexity": 0, "verbosity": 0},
        {"prompt": "Name a prime.", "response": "5.", "helpfulness": 4, "correctness": 4,
         "coherence": 4, "complexity": 0, "verbosity": 0},
        {"prompt": "Name a colour.", "response": "Blue.", "helpfulness": 3, "correctness": 3,
         "coherence": 4, "complexity": 0, "verbosity": 0},
    ]
    path = tmp_path / "helpsteer2.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    chunk = read("helpsteer2", path)
    result = derive(chunk.prompts, chunk.responses, chunk.judgments)
    pairs = result.pairs.to_pylist()
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("5.", "4.")]
    assert result.counts["rating_too_few_scored"] == 1  # the single-response prompt
