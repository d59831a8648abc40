"""Verifiers: IFEval constraints checked by lm-eval (known verdicts), math answers by symbolic equivalence."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from preflab.errors import InputError, UsageError
from preflab.generate.cache import open_engine
from preflab.generate.verifiers import (
    Constraint,
    check_constraints,
    constrain_prompt,
    describe_constraint,
    extract_final_answer,
    generate_constraint_pairs,
    generate_math_pairs,
    is_correct,
    pair_by_answer,
    pair_by_constraints,
)
from preflab.records import Message, Prompt, Response
from preflab.store.tables import JudgmentRow, PromptRow

# Prompts in the form of the IFEval release (Zhou et al. 2023, google/IFEval): prompt text,
# instruction ids and kwargs; each with one response that follows and one that does not.
IFEVAL_CASES = [
    (
        (
            "I am planning a trip to Japan, and I would like thee to write an itinerary for my journey in a "
            "Shakespearean style. You are not allowed to use any commas in your response."
        ),
        [Constraint("punctuation:no_comma")],
        "Day one: hark to Tokyo where lanterns glow. Day two: to Kyoto thou shalt go.",
        "Day one: hark, to Tokyo, where lanterns glow.",
        [False],
    ),
    (
        (
            "Write a resume for a fresh high school graduate who is seeking their first job. Make sure to include "
            "at least 12 placeholder represented by square brackets, such as [address], [name]."
        ),
        [Constraint("detectable_content:number_placeholders", {"num_placeholders": 12})],
        " ".join(f"[field{i}]" for i in range(12)) + " Eager learner seeking a first job.",
        "[name] [address] [phone] Eager learner seeking a first job.",
        [False],
    ),
    (
        (
            "Write a poem about a lonely Hue. The poem should be written for teenagers. In your poem, italicize at "
            'least one section in markdown, i.e *this is an italic text*, and include the word "singles" at least twice.'
        ),
        [
            Constraint("detectable_format:number_highlighted_sections", {"num_highlights": 1}),
            Constraint(
                "keywords:frequency", {"relation": "at least", "keyword": "singles", "frequency": 2}
            ),
        ],
        "In Hue the *river hums alone*,\nsingles on bridges, singles on stone.",
        "In Hue the *river hums alone*,\na single soul on bridges of stone.",
        [True, False],
    ),
    (
        (
            "Write a short blog post about a trip to Japan using less than 300 words. Your entire response should be "
            "in English, and in all lowercase letters. No capital letters are allowed."
        ),
        [
            Constraint("change_case:english_lowercase"),
            Constraint(
                "length_constraints:number_words", {"relation": "less than", "num_words": 300}
            ),
        ],
        "we landed in osaka at dawn and ate our way through dotonbori before the trains even woke up.",
        "We landed in Osaka at dawn and ate our way through Dotonbori.",
        [False, True],
    ),
    (
        (
            "Write a letter to a friend in all lowercase letters ask them to go and vote. At the end of your "
            "response, please explicitly add a postscript starting with P.S."
        ),
        [Constraint("detectable_content:postscript", {"postscript_marker": "P.S."})],
        "hey sam, please go vote on tuesday.\n\nP.S. bring your id.",
        "hey sam, please go vote on tuesday. see you soon.",
        [False],
    ),
    (
        "List the pros and cons of using Java. Wrap your entire output in JSON format.",
        [Constraint("detectable_format:json_format")],
        '```json\n{"pros": ["portable"], "cons": ["verbose"]}\n```',
        "Pros: portable. Cons: verbose.",
        [False],
    ),
]


@pytest.mark.parametrize(("prompt", "constraints", "follows", "violates", "expected"), IFEVAL_CASES)
def test_ifeval_verdicts_are_known(prompt, constraints, follows, violates, expected) -> None:
    assert check_constraints(follows, constraints, prompt) == [True] * len(constraints)
    assert check_constraints(violates, constraints, prompt) == expected


def test_repeat_prompt_constraint_uses_the_prompt_argument() -> None:
    request = "Write an email to my boss telling him that I am quitting."
    c = [Constraint("combination:repeat_prompt", {"prompt_to_repeat": request})]
    assert check_constraints(request + "\n\nDear boss, I quit.", c) == [True]
    assert check_constraints("Dear boss, I quit.", c) == [False]


def test_unknown_instruction_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown IFEval instruction"):
        check_constraints("x", [Constraint("punctuation:no_semicolons")])


def test_constrained_prompt_includes_the_instruction_text_and_the_constraint() -> None:
    base = Prompt(messages=(Message(role="user", content="Describe Kyoto."),))
    c = Constraint("punctuation:no_comma")
    constrained = constrain_prompt(base, [c])
    assert constrained.messages[-1].content == "Describe Kyoto.\n\n" + describe_constraint(c)
    assert constrained.constraints == (c.to_json(),)
    assert constrained.prompt_id != base.prompt_id


def test_pair_by_constraints_prefers_the_satisfying_response() -> None:
    prompt = constrain_prompt(
        Prompt(messages=(Message(role="user", content="Describe Kyoto."),)),
        [Constraint("punctuation:no_comma")],
    )
    ok = Response(
        prompt_id=prompt.prompt_id, content="Kyoto has temples and quiet gardens.", model="m"
    )
    bad = Response(
        prompt_id=prompt.prompt_id, content="Kyoto has temples, shrines, and gardens.", model="m"
    )
    judgments, checks = pair_by_constraints(prompt, [bad, ok])
    assert checks == {ok.response_id: [True], bad.response_id: [False]}
    (j,) = judgments
    assert j.pairwise.preferred == ok.response_id and j.response_ids == (
        ok.response_id,
        bad.response_id,
    )
    assert j.judge_id.startswith("verifier:ifeval@lm-eval-")


def test_generate_constraint_pairs_end_to_end(fake, db_url) -> None:
    fake.script(
        [
            {
                "pattern": "refrain from the use of any commas",
                "reply": "Kyoto is calm and green and old.",
            },
            {"pattern": "Kyoto", "reply": "Kyoto is calm, green, and old."},
            {"pattern": "Osaka", "reply": "Osaka is loud and fun."},
        ]
    )
    eps = {"ckpt": fake.endpoint("ckpt", model="ckpt", revision="r1")}
    engine = open_engine(db_url)
    c = [Constraint("punctuation:no_comma")]
    items = [
        (Prompt(messages=(Message(role="user", content="Describe Kyoto."),)), c),
        (Prompt(messages=(Message(role="user", content="Describe Osaka."),)), c),
    ]
    res = generate_constraint_pairs(engine, eps, items, "ckpt")
    (j,) = res.judgments
    chosen = next(r for r in res.responses if r.response_id == j.pairwise.preferred)
    assert (
        chosen.content == "Kyoto is calm and green and old."
        and chosen.params["constraint_shown"] is True
    )
    assert list(res.skipped.values()) == ["both responses satisfy the constraints"]
    with engine.connect() as conn:
        stored = conn.execute(select(PromptRow).where(PromptRow.prompt_id == j.prompt_id)).one()
        n_judgments = len(conn.execute(select(JudgmentRow)).all())
    assert describe_constraint(c[0]) in stored.messages[-1]["content"]
    assert [json.loads(x)["id"] for x in stored.constraints] == ["punctuation:no_comma"]
    assert n_judgments == 1
    engine.dispose()


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [
        ("So the answer is $\\boxed{0.5}$.", "\\frac{1}{2}", True),
        ("The final answer is $2\\sqrt{2}$", "\\sqrt{8}", True),
        ("Expanding gives $\\boxed{(x+1)^2}$", "x^2+2x+1", True),
        ("Janet makes 9 * 2 = $18 every day.\n#### 18", "18", True),
        ("#### 19", "18", False),
        ("The answer is $\\boxed{\\frac{3}{4}}$", "0.75", True),
        ("The answer is $\\boxed{\\frac{3}{5}}$", "0.75", False),
        ("I don't know.", "4", None),
    ],
)
def test_math_answers_compare_symbolically(
    response: str, reference: str, expected: bool | None
) -> None:
    assert is_correct(response, reference) is expected


def test_extract_final_answer_prefers_the_gsm8k_mark() -> None:
    assert extract_final_answer("16 - 3 - 4 = 9 eggs; 9 * 2 = 18.\n#### 18") == "18"


def test_pair_by_answer_needs_a_reference() -> None:
    with pytest.raises(UsageError, match="no reference"):
        pair_by_answer(Prompt(messages=(Message(role="user", content="1+1?"),)), [])


def test_generate_math_pairs_prefers_correct_answers(fake, sqlite_url) -> None:
    # sample i is sent with seed i: seed 0 answers 10 (right), seed 1 answers 11 (wrong)
    fake.script([{"pattern": "apples", "reply": "Counting them up: $\\boxed{1{seed}}$"}])
    eps = {"ckpt": fake.endpoint("ckpt", model="ckpt")}
    prompt = Prompt(
        messages=(
            Message(role="user", content="Tom has 4 apples and buys 6 more. How many apples?"),
        ),
        reference="10",
    )
    res = generate_math_pairs(open_engine(sqlite_url), eps, [prompt], n=2, seed=0)
    (j,) = res.judgments
    chosen = next(r for r in res.responses if r.response_id == j.pairwise.preferred)
    assert chosen.content.endswith("$\\boxed{10}$")
    assert sorted(res.verdicts.values()) == [False, True]
    assert j.judge_id.startswith("verifier:math@")


def _has_punkt_tab() -> bool:
    import nltk

    try:
        nltk.data.find("tokenizers/punkt_tab")
    except LookupError:
        return False
    return True


@pytest.mark.skipif(_has_punkt_tab(), reason="NLTK's punkt_tab is installed here")
def test_checks_needing_missing_nltk_data_are_found_before_any_call(fake, sqlite_url) -> None:
    fake.script(
        [
            {"pattern": "commas", "reply": "Kyoto is calm and green."},
            {"pattern": "Kyoto", "reply": "Kyoto is calm, green, and old."},
        ]
    )
    eps = {"ckpt": fake.endpoint("ckpt", model="ckpt")}
    offline = [Constraint("punctuation:no_comma")]
    needs_nltk = [
        Constraint(
            "length_constraints:number_sentences", {"num_sentences": 3, "relation": "at least"}
        )
    ]
    items = [
        (Prompt(messages=(Message(role="user", content="Describe Kyoto."),)), offline),
        (Prompt(messages=(Message(role="user", content="Describe Nara."),)), needs_nltk),
    ]
    res = generate_constraint_pairs(open_engine(sqlite_url), eps, items, "ckpt")
    assert list(res.unavailable) == ["length_constraints:number_sentences"]
    assert "punkt_tab" in res.unavailable["length_constraints:number_sentences"]
    # only the prompt whose check runs offline was sent, with and without its constraint
    assert res.summary.total == 2 and fake.total_calls() == 2
    assert not any("Nara" in key for key in fake.calls())
    (why,) = [w for w in res.skipped.values() if w.startswith("not called")]
    assert "length_constraints:number_sentences" in why and "nltk.downloader punkt_tab" in why
    assert len(res.judgments) == 1
