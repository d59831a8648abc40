"""Bulk reads give back exactly the records that were written, in the record schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, bindparam, select

from preflab.collect import list_projects as collect_list_projects
from preflab.formats.base import ImportChunk
from preflab.records import (
    JUDGE_SCHEMA,
    JUDGMENT_SCHEMA,
    PROMPT_SCHEMA,
    RESPONSE_SCHEMA,
    BinaryValue,
    EditValue,
    Judge,
    JudgeKind,
    Judgment,
    JudgmentKind,
    Message,
    PairwiseValue,
    Prompt,
    RatingValue,
    Response,
    Span,
    records_to_table,
    table_to_records,
)
from preflab.store.engine import make_engine
from preflab.store.imports import import_chunks
from preflab.store.migrate import upgrade_to_head
from preflab.store.queries import (
    count_rows,
    read_judges,
    read_judgments,
    read_prompts,
    read_responses,
    write_parquet_snapshot,
)
from preflab.store.tables import JudgmentRow
from preflab.store.unit_of_work import read_scope

from .conftest import make_chunk

PROMPT = Prompt(
    messages=(
        Message(role="system", content="Be brief."),
        Message(role="user", content="Name a prime — in Ελληνικά?"),
        Message(role="assistant", content="Δύο."),
        Message(role="user", content="Another?"),
    ),
    source="mixed.jsonl",
    tags=("math", "multi-turn"),
    constraints=("answer in one word",),
    reference="Three",
)
R = [
    Response(
        prompt_id=PROMPT.prompt_id,
        content=text,
        model=model,
        params={"temperature": 0.7, "seed": 3},
    )
    for text, model in [
        ("Three.", "m1"),
        ("Five.", "m2"),
        ("Seven, I think.", None),
        ("Τρία.", "m1"),
    ]
]
IDS = tuple(r.response_id for r in R)
WHEN = datetime(2026, 11, 26, 3, 30, 15, 123456, tzinfo=UTC)
SPANS = (
    Span(response_id=IDS[1], start=0, end=4, label="irrelevant", text="Five"),
    Span(response_id=IDS[3], start=0, end=4, label="factual error", text="Τρία"),
)


def _judgments() -> list[Judgment]:
    common = {"prompt_id": PROMPT.prompt_id, "source": "mixed.jsonl", "guideline_version": 2}
    return [
        Judgment(
            judgment_id="j_rank",
            kind=JudgmentKind.RANKING,
            judge_id="oasst:alice",
            response_ids=IDS,
            ranking=((IDS[0],), (IDS[1], IDS[3]), (IDS[2],)),
            started_at=WHEN,
            submitted_at=WHEN,
            comment="close call",
            flags=("slow",),
            **common,
        ),
        Judgment(
            judgment_id="j_rate",
            kind=JudgmentKind.RATING,
            judge_id="gpt-judge",
            response_ids=IDS[:2],
            rating=RatingValue(
                scores={IDS[0]: {"helpfulness": 4, "verbosity": 1.5}, IDS[1]: {"helpfulness": 2}}
            ),
            batch_id="vendor-w48",
            idempotency_key="k-1",
            source_line=7,
            **common,
        ),
        Judgment(
            judgment_id="j_bin",
            kind=JudgmentKind.BINARY,
            judge_id="user:42",
            response_ids=IDS[2:3],
            binary=BinaryValue(response_id=IDS[2], label=False, reasons=("wrong", "hedges")),
            **common,
        ),
        Judgment(
            judgment_id="j_spans",
            kind=JudgmentKind.PAIRWISE,
            judge_id="user:42",
            response_ids=(IDS[3], IDS[1]),
            pairwise=PairwiseValue(scale=7, preferred=IDS[3], strength=2),
            spans=SPANS,
            critique="Ελληνικά was asked for — «Five» is not 👍",
            idempotency_key="k-spans",
            **common,
        ),
        Judgment(
            judgment_id="j_edit",
            kind=JudgmentKind.EDIT,
            judge_id="user:42",
            response_ids=(IDS[2], IDS[0]),
            edit=EditValue(original_id=IDS[2], edited_id=IDS[0]),
            **common,
        ),
    ]


JUDGES = [
    Judge(
        judge_id="gpt-judge",
        kind=JudgeKind.AI,
        model="gpt-x",
        template="Which is better?",
        template_version="3",
    ),
    Judge(judge_id="oasst:alice", kind=JudgeKind.HUMAN, name="alice", vendor="v", team="t"),
]


@pytest.fixture
def stored(engine: Engine, tmp_path: Path) -> Engine:
    source = tmp_path / "mixed.jsonl"
    source.write_text("mixed")
    chunk = ImportChunk(
        prompts=records_to_table([PROMPT], Prompt),
        responses=records_to_table(R, Response),
        judgments=records_to_table(_judgments(), Judgment),
        judges=records_to_table(JUDGES, Judge),
    )
    import_chunks(engine, [chunk], format="test", path=source)
    return engine


def test_read_tables_have_the_record_schemas(stored: Engine) -> None:
    assert PROMPT_SCHEMA == read_prompts(stored).schema
    assert RESPONSE_SCHEMA == read_responses(stored).schema
    assert JUDGMENT_SCHEMA == read_judgments(stored).schema
    assert JUDGE_SCHEMA == read_judges(stored).schema


def test_every_judgment_kind_round_trips_through_the_store(stored: Engine) -> None:
    back = table_to_records(read_judgments(stored), Judgment)
    assert sorted(_judgments(), key=lambda j: j.judgment_id) == back


def test_prompts_responses_and_judges_round_trip(stored: Engine) -> None:
    assert [PROMPT] == table_to_records(read_prompts(stored), Prompt)
    assert sorted(R, key=lambda r: r.response_id) == table_to_records(
        read_responses(stored), Response
    )
    assert sorted(JUDGES, key=lambda j: j.judge_id) == table_to_records(read_judges(stored), Judge)


def test_project_filter_reads_only_that_projects_records(engine: Engine, tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("a")
    b.write_text("b")
    one = import_chunks(
        engine,
        [make_chunk(0, 3, source="a")],
        format="t",
        path=a,
        project_id="one",
        create_project=True,
    )
    import_chunks(
        engine,
        [make_chunk(3, 8, source="b")],
        format="t",
        path=b,
        project_id="two",
        create_project=True,
    )
    assert one.project_id is not None
    assert 3 == read_prompts(engine, one.project_id).num_rows
    assert 6 == read_responses(engine, one.project_id).num_rows
    assert 3 == read_judgments(engine, one.project_id).num_rows
    assert {"prompts": 3, "responses": 6, "judges": 1, "judgments": 3, "items": 3} == count_rows(
        engine, one.project_id
    )
    with read_scope(engine) as conn:
        assert ["one", "two"] == sorted(p.name for p in collect_list_projects(conn))


def test_parquet_snapshot_holds_the_same_tables(stored: Engine, tmp_path: Path) -> None:
    paths = write_parquet_snapshot(stored, tmp_path / "snap")
    assert {"prompts", "responses", "judges", "judgments"} == set(paths)
    assert read_judgments(stored).equals(pq.read_table(paths["judgments"]))
    assert read_prompts(stored).equals(pq.read_table(paths["prompts"]))
    assert [] == [p.name for p in (tmp_path / "snap").iterdir() if p.name.startswith(".")]


def test_reads_of_an_empty_store_are_empty_tables_with_schemas(engine: Engine) -> None:
    table = read_judgments(engine)
    assert (0, JUDGMENT_SCHEMA) == (table.num_rows, table.schema)


def test_spans_and_critique_are_stored_under_the_apps_value_keys(stored: Engine) -> None:
    with stored.connect() as conn:
        values = dict(conn.execute(select(JudgmentRow.judgment_id, JudgmentRow.value)).all())
    assert [s.model_dump() for s in SPANS] == values["j_spans"]["spans"]
    assert "Ελληνικά was asked for — «Five» is not 👍" == values["j_spans"]["critique"]
    assert 2 == values["j_spans"]["strength"]  # the kind's value beside them is unchanged
    assert [] == [j for j, v in values.items() if j != "j_spans" and {"spans", "critique"} & set(v)]


def test_read_judgments_gives_spans_and_critique_columns(stored: Engine) -> None:
    table = read_judgments(stored)
    by_id = dict(zip(table.column("judgment_id").to_pylist(), table.to_pylist(), strict=True))
    assert [s.model_dump() for s in SPANS] == by_id["j_spans"]["spans"]
    assert "Ελληνικά was asked for — «Five» is not 👍" == by_id["j_spans"]["critique"]
    assert ([], None) == (by_id["j_rank"]["spans"], by_id["j_rank"]["critique"])


def test_workspace_snapshot_reimported_into_a_fresh_workspace_keeps_spans_and_critique(
    stored: Engine, other_db_url: str, tmp_path: Path
) -> None:
    paths = write_parquet_snapshot(stored, tmp_path / "snap")
    chunk = ImportChunk(**{name: pq.read_table(path) for name, path in paths.items()})
    fresh = make_engine(other_db_url)
    try:
        upgrade_to_head(fresh)
        import_chunks(fresh, [chunk], format="snapshot", path=tmp_path / "snap")
        back = {j.judgment_id: j for j in table_to_records(read_judgments(fresh), Judgment)}
        assert read_judgments(stored).equals(read_judgments(fresh))
    finally:
        fresh.dispose()
    assert (SPANS, "Ελληνικά was asked for — «Five» is not 👍") == (
        back["j_spans"].spans, back["j_spans"].critique)


def test_reading_judgments_leaves_the_connection_fit_for_bulk_writes(stored: Engine) -> None:
    # the batched read's streaming option is the statement's, not the connection's: on
    # PostgreSQL a connection left on server-side cursors refuses the executemany that follows
    with stored.begin() as conn:
        before = read_judgments(conn).num_rows
        conn.execute(
            JudgmentRow.__table__.update().where(JudgmentRow.judgment_id == bindparam("b_id")),
            [{"b_id": jid, "comment": "seen"} for jid in read_judgments(conn)["judgment_id"].to_pylist()],
        )
        comments = {c for (c,) in conn.execute(select(JudgmentRow.comment))}
    assert before > 0
    assert comments == {"seen"}
