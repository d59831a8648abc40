"""Records: validation names the field and the value; ids are stable; Arrow round-trips."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from preflab.errors import InputError
from preflab.records import (
    JUDGMENT_SCHEMA,
    PAIR_SCHEMA,
    SCHEMAS,
    SPAN_TYPE,
    BinaryValue,
    EditValue,
    Judgment,
    Message,
    PairwiseValue,
    Pair,
    Prompt,
    RatingValue,
    Response,
    Span,
    make_prompt_id,
    records_to_table,
    table_to_records,
    validate_record,
)


def _prompt() -> Prompt:
    return Prompt(messages=[Message(role="user", content="How do I boil an egg?")])


def _responses(prompt: Prompt) -> tuple[Response, Response]:
    a = Response(prompt_id=prompt.prompt_id, content="Boil it 8 minutes.", model="m1")
    b = Response(prompt_id=prompt.prompt_id, content="Microwave it.", model="m2")
    return a, b


def test_prompt_id_ignores_outer_whitespace_and_line_endings() -> None:
    a = make_prompt_id([{"role": "user", "content": "a\r\nb "}])
    b = make_prompt_id([{"role": "user", "content": "a\nb"}])
    assert a == b


def test_prompt_id_depends_on_role() -> None:
    a = make_prompt_id([{"role": "user", "content": "x"}])
    b = make_prompt_id([{"role": "system", "content": "x"}, {"role": "user", "content": "x"}])
    assert a != b


def test_prompt_must_end_with_user_turn() -> None:
    with pytest.raises(InputError) as err:
        validate_record(
            Prompt,
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
            path="p.jsonl",
            line=3,
        )
    assert err.value.field == "messages"
    assert err.value.line == 3
    assert "p.jsonl, line 3" in str(err.value)
    assert "user turn" in str(err.value)


def test_bad_role_names_field_and_value() -> None:
    with pytest.raises(InputError) as err:
        validate_record(Message, {"role": "robot", "content": "x"})
    assert err.value.field == "role"
    assert err.value.value == "robot"


def test_response_ids_are_stable_and_model_aware() -> None:
    p = _prompt()
    a1 = Response(prompt_id=p.prompt_id, content="same", model="m1")
    a2 = Response(prompt_id=p.prompt_id, content="same ", model="m1")
    b = Response(prompt_id=p.prompt_id, content="same", model="m2")
    assert a1.response_id == a2.response_id
    assert a1.response_id != b.response_id


def test_empty_response_is_rejected() -> None:
    with pytest.raises(InputError) as err:
        validate_record(Response, {"prompt_id": "p_x", "content": "  "})
    assert err.value.field == "content"


@pytest.mark.parametrize("scale", [3, 4, 9])
def test_pairwise_scale_must_be_supported(scale: int) -> None:
    with pytest.raises(ValueError, match="scale must be one of"):
        PairwiseValue(scale=scale, preferred="r_a")


def test_pairwise_strength_bounded_by_scale() -> None:
    PairwiseValue(scale=8, preferred="r_a", strength=4)
    with pytest.raises(ValueError, match="strength must be within 1..2"):
        PairwiseValue(scale=5, preferred="r_a", strength=3)


def test_tie_has_no_preferred() -> None:
    with pytest.raises(ValueError, match="tie has no preferred"):
        PairwiseValue(scale=5, preferred="r_a", tie=True)


def test_pairwise_preferred_must_be_shown() -> None:
    p = _prompt()
    a, b = _responses(p)
    with pytest.raises(ValueError, match="not among response_ids"):
        Judgment(
            judgment_id="j",
            prompt_id=p.prompt_id,
            response_ids=(a.response_id, b.response_id),
            kind="pairwise",
            judge_id="ann1",
            pairwise=PairwiseValue(scale=2, preferred="r_other"),
        )


def test_judgment_needs_value_of_its_kind() -> None:
    p = _prompt()
    a, b = _responses(p)
    with pytest.raises(ValueError, match="a ranking judgment needs its ranking value"):
        Judgment(
            judgment_id="j",
            prompt_id=p.prompt_id,
            response_ids=(a.response_id, b.response_id),
            kind="ranking",
            judge_id="ann1",
        )


def test_pair_chosen_must_differ_from_rejected() -> None:
    p = _prompt()
    with pytest.raises(ValueError, match="chosen must differ"):
        Pair(
            prompt_id=p.prompt_id,
            prompt=p.messages,
            chosen="same",
            rejected="same ",
            chosen_id="r_1",
            rejected_id="r_2",
        )


def _all_kinds() -> list[Judgment]:
    p = _prompt()
    a, b = _responses(p)
    ids = (a.response_id, b.response_id)
    common = {"prompt_id": p.prompt_id, "response_ids": ids, "judge_id": "ann1"}
    return [
        Judgment(judgment_id="j1", kind="pairwise",
                 pairwise=PairwiseValue(scale=8, preferred=ids[1], strength=3), **common),
        Judgment(judgment_id="j2", kind="ranking", ranking=((ids[1],), (ids[0],)), **common),
        Judgment(judgment_id="j3", kind="rating",
                 rating=RatingValue(scores={ids[0]: {"helpfulness": 3.0, "verbosity": 1.0}}),
                 **common),
        Judgment(judgment_id="j4", kind="binary",
                 binary=BinaryValue(response_id=ids[0], label=False, reasons=("wrong",)), **common),
        Judgment(judgment_id="j5", kind="edit",
                 edit=EditValue(original_id=ids[0], edited_id=ids[1]), **common),
    ]


def test_judgments_of_every_kind_round_trip_through_arrow() -> None:
    judgments = _all_kinds()
    table = records_to_table(judgments)
    assert table.schema == JUDGMENT_SCHEMA
    assert table_to_records(table, Judgment) == judgments


def test_pair_table_has_pair_schema_and_round_trips() -> None:
    p = _prompt()
    pair = Pair(prompt_id=p.prompt_id, prompt=p.messages, chosen="x", rejected="y",
                chosen_id="r_1", rejected_id="r_2", margin=0.5, rule="likert",
                rule_params={"tie_policy": "drop"})
    table = records_to_table([pair])
    assert table.schema == PAIR_SCHEMA
    assert table_to_records(table, Pair) == [pair]


def test_every_record_type_has_a_schema() -> None:
    for cls, schema in SCHEMAS.items():
        assert isinstance(schema, pa.Schema)
        record_fields = set(cls.model_fields)
        assert set(schema.names) <= record_fields, cls.__name__


def test_response_id_keeps_checkpoints_apart() -> None:
    p = _prompt()
    a = Response(prompt_id=p.prompt_id, content="same", model="m", model_revision="step-100")
    b = Response(prompt_id=p.prompt_id, content="same", model="m", model_revision="step-200")
    c = Response(prompt_id=p.prompt_id, content="same", model="m")
    assert len({a.response_id, b.response_id, c.response_id}) == 3


# --- spans and critique ------------------------------------------------------------------


def _judgment_data(**extra: object) -> dict[str, object]:
    p = _prompt()
    a, b = _responses(p)
    return {"judgment_id": "j", "prompt_id": p.prompt_id,
            "response_ids": [a.response_id, b.response_id], "kind": "pairwise",
            "judge_id": "ann1", "pairwise": {"scale": 2, "preferred": a.response_id}, **extra}


def _span(response_id: str, start: int = 0, end: int = 4, label: str = "factual error",
          text: str = "Boil") -> dict[str, object]:
    return {"response_id": response_id, "start": start, "end": end, "label": label, "text": text}


def _with_feedback() -> Judgment:
    p = _prompt()
    a, b = _responses(p)
    return Judgment(
        judgment_id="j_fb", prompt_id=p.prompt_id, response_ids=(a.response_id, b.response_id),
        kind="pairwise", judge_id="ann1",
        pairwise=PairwiseValue(scale=2, preferred=a.response_id),
        spans=(Span(response_id=b.response_id, start=0, end=9, label="unsafe",
                    text="Microwave"),
               Span(response_id=a.response_id, start=8, end=17, label="factual error",
                    text="8 minutes")),
        critique="Eggs can burst in a microwave 👋.",
    )


def test_span_on_a_response_not_shown_names_the_spans_index() -> None:
    data = _judgment_data()
    shown = data["response_ids"]
    assert isinstance(shown, list)
    spans = [_span(shown[0]), _span(shown[1]), _span("r_other")]
    with pytest.raises(InputError) as err:
        validate_record(Judgment, {**data, "spans": spans})
    assert (err.value.field, err.value.value) == ("spans[2].response_id", "r_other")
    assert "not among response_ids" in str(err.value)


def test_span_on_a_response_not_shown_is_refused_by_the_record_itself() -> None:
    data = _judgment_data(spans=[_span("r_other")])
    with pytest.raises(ValueError, match=r"spans\[0\]\.response_id: 'r_other' is not among"):
        Judgment.model_validate(data)


@pytest.mark.parametrize(("start", "end", "field"), [
    (4, 4, "spans[1].end"),
    (5, 2, "spans[1].end"),
    (-1, 3, "spans[1].start"),
])
def test_span_must_end_after_a_start_of_zero_or_more(start: int, end: int, field: str) -> None:
    data = _judgment_data()
    shown = data["response_ids"]
    assert isinstance(shown, list)
    spans = [_span(shown[0]), _span(shown[0], start=start, end=end)]
    with pytest.raises(InputError) as err:
        validate_record(Judgment, {**data, "spans": spans})
    assert err.value.field == field


def test_span_needs_a_label() -> None:
    with pytest.raises(InputError) as err:
        validate_record(Span, _span("r_1", label=" "))
    assert err.value.field == "label"


def test_span_offsets_must_be_integers_named_by_index() -> None:
    data = _judgment_data()
    shown = data["response_ids"]
    assert isinstance(shown, list)
    with pytest.raises(InputError) as err:
        validate_record(Judgment, {**data, "spans": [_span(shown[0], start="one")]})  # type: ignore[arg-type]
    assert (err.value.field, err.value.value) == ("spans[0].start", "one")


def test_judgment_schema_has_spans_and_critique_after_flags() -> None:
    names = JUDGMENT_SCHEMA.names
    at = names.index("flags")
    assert ["spans", "critique"] == names[at + 1 : at + 3]
    assert pa.list_(SPAN_TYPE) == JUDGMENT_SCHEMA.field("spans").type
    assert ["response_id", "start", "end", "label", "text"] == [f.name for f in SPAN_TYPE]


def test_judgment_without_feedback_has_empty_spans_and_no_critique() -> None:
    table = records_to_table(_all_kinds())
    assert [[]] * 5 == table.column("spans").to_pylist()
    assert [None] * 5 == table.column("critique").to_pylist()


def test_spans_and_critique_round_trip_through_parquet(tmp_path) -> None:
    judgments = [_with_feedback(), *_all_kinds()]
    pq.write_table(records_to_table(judgments), tmp_path / "judgments.parquet")
    back = pq.read_table(tmp_path / "judgments.parquet")
    assert back.schema == JUDGMENT_SCHEMA
    assert table_to_records(back, Judgment) == judgments
    assert back.column("spans")[0].as_py()[0] == {
        "response_id": judgments[0].response_ids[1], "start": 0, "end": 9, "label": "unsafe",
        "text": "Microwave"}
