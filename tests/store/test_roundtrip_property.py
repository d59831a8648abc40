"""Property: any valid records written in bulk read back equal (texts with any characters)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from tests.strategies import judgments

from preflab.records import Judgment, Prompt, Response, records_to_table, table_to_records
from preflab.store.bulk import write_judgments, write_prompts, write_responses
from preflab.store.queries import read_judgments, read_prompts, read_responses
from preflab.store.unit_of_work import write_scope

CASES = st.lists(judgments(), min_size=1, max_size=4, unique_by=lambda case: case[2].judgment_id)


def _clear(engine: Engine) -> None:
    with write_scope(engine) as conn:
        for table in ("items", "judgments", "responses", "prompts", "judges"):
            conn.execute(text(f"DELETE FROM {table}"))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cases=CASES)
def test_bulk_written_records_read_back_equal(
    engine: Engine, cases: list[tuple[Prompt, list[Response], Judgment]]
) -> None:
    _clear(engine)
    prompts = {p.prompt_id: p for p, _, _ in cases}
    responses = {r.response_id: r for _, rs, _ in cases for r in rs if r.prompt_id in prompts}
    # the same messages drawn twice with other tags keep the first record (ids are content hashes)
    firsts: dict[str, Prompt] = {}
    for p, _, _ in cases:
        firsts.setdefault(p.prompt_id, p)
    with write_scope(engine) as conn:
        write_prompts(conn, records_to_table(list(firsts.values()), Prompt))
        write_responses(conn, records_to_table(list(responses.values()), Response))
        write_judgments(conn, records_to_table([j for _, _, j in cases], Judgment))
    assert sorted(firsts.values(), key=lambda p: p.prompt_id) == table_to_records(
        read_prompts(engine), Prompt
    )
    assert sorted(responses.values(), key=lambda r: r.response_id) == table_to_records(
        read_responses(engine), Response
    )
    assert sorted((j for _, _, j in cases), key=lambda j: j.judgment_id) == table_to_records(
        read_judgments(engine), Judgment
    )
