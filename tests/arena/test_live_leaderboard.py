"""The app's leaderboard (page and API) from a project's live arena votes, and the CLI on the
same votes: `preflab leaderboard --project … --json` and the file it writes with
`--battles-out` give exactly the numbers the app shows (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import lxml.html
import pytest
from fastapi.testclient import TestClient
from tests.arena.live_votes import Side, store_random_votes, store_vote
from tests.cli_process import run_cli
from tests.server.conftest import Seeded, api_token, login, make_client

from preflab import collect
from preflab.arena import read_battles
from preflab.collect.live_config import LiveConfig, set_live_config

SIDES = [
    Side("ep-small", "small-1b", "ckpt-10"),
    Side("ep-mid", "mid-7b", "ckpt-20"),
    Side("ep-big", "big-70b", None),
]


def _uid(seeded: Seeded, name: str) -> str:
    with seeded.db.read() as s:
        user = collect.get_user_by_username(s, name)
    assert user is not None
    return user.user_id


def _store_votes(seeded: Seeded, count: int = 90) -> None:
    users = [_uid(seeded, "alice"), _uid(seeded, "bob")]
    store_random_votes(seeded.db, seeded.project_id, users, SIDES, count, seed=3)
    # kept but excluded, with their reasons: they must not count anywhere
    store_vote(seeded.db, seeded.project_id, users[0], SIDES[0], SIDES[2], "a", n=1000,
               anonymous=False, excluded_reason="names_seen_before_vote")
    store_vote(seeded.db, seeded.project_id, users[1], SIDES[0], SIDES[1], "a", n=1001,
               answer_a="As small-1b I say yes.", excluded_reason="answer_names_model")


def _target(seeded: Seeded) -> list[str]:
    """--workspace for the SQLite file (the workspace's own database), --db for PostgreSQL."""
    if seeded.url.startswith("sqlite"):
        assert Path(seeded.url.removeprefix("sqlite:///")) == seeded.workspace / "preflab.sqlite"
        return ["--workspace", str(seeded.workspace)]
    return ["--db", seeded.url]


@pytest.fixture
def client(seeded: Seeded):  # type: ignore[no-untyped-def]
    with make_client(seeded) as c:
        yield c


def test_app_leaderboard_equals_the_cli_on_the_project_and_on_its_battle_file(
    seeded: Seeded, client: TestClient, tmp_path: Path
) -> None:
    _store_votes(seeded)
    headers = api_token(client, "admin")
    r = client.get(f"/api/v1/projects/{seeded.project_id}/leaderboard",
                   params={"rounds": 40, "seed": 5}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    app_board = body["leaderboard"]
    assert body["votes"] == 92
    assert body["excluded"] == {"names_seen_before_vote": 1, "answer_names_model": 1}
    assert app_board["settings"]["battles"] == 90
    assert {row["model"] for row in app_board["ratings"]} == {"small-1b", "mid-7b", "big-70b"}

    out = tmp_path / "battles.jsonl"
    cli = run_cli("leaderboard", *_target(seeded), "--project", "Pairs", "--rounds", "40",
                  "--seed", "5", "--json", "--battles-out", str(out))
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == app_board

    assert len(out.read_text().splitlines()) == 92
    from_file = run_cli("leaderboard", str(out), "--rounds", "40", "--seed", "5", "--json")
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout) == app_board


def test_battle_file_keeps_models_revisions_endpoints_and_reasons(
    seeded: Seeded, tmp_path: Path
) -> None:
    _store_votes(seeded, count=10)
    out = tmp_path / "b.jsonl"
    cli = run_cli("leaderboard", *_target(seeded), "--project", seeded.project_id, "--rounds",
                  "10", "--battles-out", str(out))
    assert cli.returncode == 0, cli.stderr
    assert "wrote 12 battles" in cli.stdout
    df = read_battles(out)
    with seeded.db.connect() as conn:
        stored = collect.project_battles(conn, seeded.project_id)
    assert df.select("judgment_id", "model_a", "revision_a", "endpoint_b", "outcome",
                     "excluded_reason").rows() == stored.select(
        "judgment_id", "model_a", "revision_a", "endpoint_b", "outcome", "excluded_reason"
    ).rows()


def test_api_battles_download_is_the_same_battle_file(
    seeded: Seeded, client: TestClient, tmp_path: Path
) -> None:
    _store_votes(seeded, count=30)
    headers = api_token(client, "admin")
    r = client.get(f"/api/v1/projects/{seeded.project_id}/battles", headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    path = tmp_path / "download.jsonl"
    path.write_bytes(r.content)
    board = client.get(f"/api/v1/projects/{seeded.project_id}/leaderboard",
                       params={"rounds": 20}, headers=headers).json()["leaderboard"]
    cli = run_cli("leaderboard", str(path), "--rounds", "20", "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == board
    annotator = api_token(client, "alice")
    denied = client.get(f"/api/v1/projects/{seeded.project_id}/battles", headers=annotator)
    assert denied.status_code == 403


def test_page_shows_ratings_with_intervals_plot_models_and_excluded_reasons(
    seeded: Seeded, client: TestClient
) -> None:
    _store_votes(seeded)
    login(client, "admin")
    page = client.get(f"/projects/{seeded.project_id}/leaderboard?rounds=30")
    assert page.status_code == 200
    doc = lxml.html.fromstring(page.text)
    api = client.get(f"/api/v1/projects/{seeded.project_id}/leaderboard",
                     params={"rounds": 30}).json()["leaderboard"]
    rows = doc.cssselect("#ratings-table tbody tr")
    assert [r.cssselect("td.model")[0].text_content() for r in rows] == [
        x["model"] for x in api["ratings"]
    ]
    first = api["ratings"][0]
    assert rows[0].cssselect("td.rating")[0].text_content() == f"{first['rating']:.1f}"
    assert rows[0].cssselect("td.interval")[0].text_content() == (
        f"{first['ci_low']:.1f} – {first['ci_high']:.1f}"
    )
    assert rows[0].cssselect("td.battles")[0].text_content() == str(first["battles"])
    assert len(doc.cssselect("#ratings-plot svg g.rating")) == 3
    assert doc.cssselect("#vote-count")[0].text_content() == "92"
    assert doc.cssselect("#counted-count")[0].text_content() == "90"
    reasons = {tr.cssselect("td.reason")[0].text_content(): tr.cssselect("td.num")[0]
               .text_content() for tr in doc.cssselect("#excluded-table tbody tr")}
    assert reasons == {"names_seen_before_vote": "1", "answer_names_model": "1"}
    models = {tr.cssselect("td.model")[0].text_content(): tr.cssselect("td")[1].text_content()
              for tr in doc.cssselect("#models-table tbody tr")}
    assert models == {"big-70b": "—", "mid-7b": "ckpt-20", "small-1b": "ckpt-10"}
    hygiene = {tr.cssselect("td")[0].text_content(): tr.cssselect("td")[2].text_content()
               for tr in doc.cssselect("#hygiene-table tbody tr")}
    assert hygiene["excluded"] == "2"


def test_annotators_see_the_leaderboard_only_when_the_project_allows(
    seeded: Seeded, client: TestClient
) -> None:
    _store_votes(seeded, count=30)
    path = f"/projects/{seeded.project_id}/leaderboard"
    api = f"/api/v1{path}"
    alice = api_token(client, "alice")
    assert client.get(api, headers=alice).status_code == 403
    error = client.get(api, headers=alice).json()["error"]
    assert error["code"] == "forbidden" and "admins" in error["message"]
    login(client, "alice")
    denied = client.get(path)
    assert denied.status_code == 403
    assert lxml.html.fromstring(denied.text).cssselect("[role=alert]")
    with seeded.db.transaction() as conn:
        set_live_config(conn, seeded.project_id,
                        LiveConfig(modes=["arena"], leaderboard_for_annotators=True))
    assert client.get(path).status_code == 200
    assert client.get(api, headers=alice).json()["leaderboard"]["settings"]["battles"] == 30
    # a non-member never learns the project exists
    mallory = api_token(client, "mallory")
    assert client.get(api, headers=mallory).status_code == 404


def test_no_votes_yet_is_an_empty_leaderboard_not_an_error(
    seeded: Seeded, client: TestClient
) -> None:
    headers = api_token(client, "admin")
    r = client.get(f"/api/v1/projects/{seeded.project_id}/leaderboard", headers=headers)
    assert r.status_code == 200
    assert r.json() == {"project_id": seeded.project_id, "votes": 0, "excluded": {},
                        "leaderboard": None, "message": r.json()["message"]}
    assert "no arena votes yet" in r.json()["message"]
    login(client, "admin")
    doc = lxml.html.fromstring(client.get(f"/projects/{seeded.project_id}/leaderboard").text)
    assert "no arena votes yet" in doc.cssselect("#no-board")[0].text_content()
    assert not doc.cssselect("#ratings-table")


def test_only_excluded_votes_explain_why_nothing_is_rated(
    seeded: Seeded, client: TestClient
) -> None:
    alice = _uid(seeded, "alice")
    store_vote(seeded.db, seeded.project_id, alice, SIDES[0], SIDES[1], "a", n=1,
               anonymous=False, excluded_reason="names_seen_before_vote")
    body = client.get(f"/api/v1/projects/{seeded.project_id}/leaderboard",
                      headers=api_token(client, "admin")).json()
    assert body["leaderboard"] is None
    assert "excluded dropped 1" in body["message"]


def test_bad_options_are_422_with_the_field(seeded: Seeded, client: TestClient) -> None:
    _store_votes(seeded, count=20)
    headers = api_token(client, "admin")
    base = f"/api/v1/projects/{seeded.project_id}/leaderboard"
    r = client.get(base, params={"rounds": 1}, headers=headers)
    assert r.status_code == 422
    assert "rounds" in r.json()["error"]["field"]
    r = client.get(base, params={"anchor": "nobody"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "anchor"
    r = client.get(base, params={"anchor": "mid-7b", "rounds": 10}, headers=headers)
    mid = next(x for x in r.json()["leaderboard"]["ratings"] if x["model"] == "mid-7b")
    assert mid["rating"] == pytest.approx(1000.0)


def test_cli_project_errors_name_the_problem(seeded: Seeded, tmp_path: Path) -> None:
    both = run_cli("leaderboard", str(tmp_path / "x.jsonl"), "--project", "Pairs",
                   *_target(seeded))
    assert both.returncode == 2
    assert "either" in both.stderr + both.stdout
    missing = run_cli("leaderboard", *_target(seeded), "--project", "No such")
    assert missing.returncode == 1
    assert "no project 'No such'" in missing.stderr + missing.stdout
    empty = run_cli("leaderboard", *_target(seeded), "--project", "Pairs")
    assert empty.returncode == 2
    assert "no arena votes yet" in empty.stderr + empty.stdout


def _arena_through_live(seeded: Seeded, battles: int, seed: int = 0) -> dict[str, int]:
    """Run ``battles`` arena conversations through preflab.collect.live (start, generate,
    vote) against three endpoints; return the votes per unordered endpoint pair."""
    import random

    rng = random.Random(seed)
    strengths = {"m-small": 0.0, "m-mid": 0.8, "m-big": 1.6}
    with seeded.db.transaction() as conn:
        for name, model in (("small", "m-small"), ("mid", "m-mid"), ("big", "m-big")):
            collect.add_endpoint(conn, seeded.project_id, collect.EndpointCreate(
                name=name, base_url="http://127.0.0.1:9/v1", model=model, revision=f"r-{name}"))
        set_live_config(conn, seeded.project_id,
                        LiveConfig(modes=["arena"], arena_policy="fewest_battles"))
    pairs: dict[str, int] = {}
    users = ["alice", "bob"]
    for n in range(battles):
        with seeded.db.transaction() as conn:
            user = collect.get_user_by_username(conn, users[n % 2])
            assert user is not None
            view = collect.start_conversation(conn, seeded.project_id, user, mode="arena",
                                              message=f"Arena question {n}?", rng=rng)
            cid = view.conversation.conversation_id
            claimed = collect.claim_candidates(conn, cid, "test-owner")
            models = {}
            for c in claimed:
                models[c.slot] = c.model
                # every 10th battle: side A names its own model (kept, excluded)
                text = (f"As {c.model}, here is answer {n}." if n % 10 == 9 and c.slot == 0
                        else f"Answer {n} of slot {c.slot}.\n\n- reason one")
                collect.complete_candidate(conn, c.candidate_id, "test-owner", text=text,
                                           finish_reason="stop", ttft_ms=5.0, latency_ms=20.0,
                                           prompt_tokens=5, completion_tokens=9)
            if n % 10 == 4:  # names seen first: kept, excluded
                collect.reveal(conn, cid, user)
            d = strengths[models[0]] - strengths[models[1]]
            outcome = "tie" if rng.random() < 0.1 else (
                "a" if rng.random() < 1 / (1 + 2.718281828 ** -d) else "b")
            collect.arena_vote(conn, cid, user,
                               collect.ArenaVote(submission_id=f"vote-{n:04d}", outcome=outcome))
            key = "/".join(sorted(view.conversation.endpoints or []))
            pairs[key] = pairs.get(key, 0) + 1
    return pairs


def test_votes_cast_through_the_live_arena_give_the_same_leaderboard_in_app_and_cli(
    seeded: Seeded, client: TestClient, tmp_path: Path
) -> None:
    pairs = _arena_through_live(seeded, 30)
    # fewest_battles keeps the three pairs level
    assert sorted(pairs) == ["big/mid", "big/small", "mid/small"]
    assert max(pairs.values()) - min(pairs.values()) <= 3
    headers = api_token(client, "admin")
    body = client.get(f"/api/v1/projects/{seeded.project_id}/leaderboard",
                      params={"rounds": 25}, headers=headers).json()
    assert body["votes"] == 30
    assert body["excluded"] == {"names_seen_before_vote": 3, "answer_names_model": 3}
    board = body["leaderboard"]
    assert board["settings"]["battles"] == 24
    with seeded.db.connect() as conn:
        battles = collect.project_battles(conn, seeded.project_id)
    assert set(battles.get_column("revision_a").to_list()) <= {"r-small", "r-mid", "r-big"}
    assert battles.get_column("is_anonymous").to_list().count(False) == 3
    out = tmp_path / "live.jsonl"
    cli = run_cli("leaderboard", *_target(seeded), "--project", "Pairs", "--rounds", "25",
                  "--json", "--battles-out", str(out))
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == board
    again = run_cli("leaderboard", str(out), "--rounds", "25", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == board


def test_project_page_links_the_leaderboard_for_whom_may_see_it(
    seeded: Seeded, client: TestClient
) -> None:
    path = f"/projects/{seeded.project_id}"

    def link() -> list[str]:
        doc = lxml.html.fromstring(client.get(path).text)
        return [a.get("href") for a in doc.cssselect("#leaderboard-link")]

    with seeded.db.transaction() as conn:
        set_live_config(conn, seeded.project_id, LiveConfig(modes=["arena"]))
    login(client, "admin")
    assert link() == [f"{path}/leaderboard"]
    client.cookies.clear()
    login(client, "alice")
    assert link() == []
    with seeded.db.transaction() as conn:
        set_live_config(conn, seeded.project_id,
                        LiveConfig(modes=["arena"], leaderboard_for_annotators=True))
    assert link() == [f"{path}/leaderboard"]
