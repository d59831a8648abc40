"""Admin pages: import and export from the browser, items and why served, guidelines, users."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from fastapi.testclient import TestClient

from preflab import collect
from preflab.collect import ProjectCreate

from .conftest import Seeded, api_token, login, make_client, seed_project


class _Rows(HTMLParser):
    """Collect the text of each <tr> of the table with a given id."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.rows, self.depth = table_id, False, [], 0

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        if self.inside and tag == "tr":
            self.rows.append("")

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag == "table":
            self.inside = False

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if self.inside and self.rows:
            self.rows[-1] += data.strip() + " "


def _rows(html: str, table_id: str) -> list[str]:
    p = _Rows(table_id)
    p.feed(html)
    return [r.strip() for r in p.rows[1:]]  # without the header row


def test_import_from_the_browser_makes_items(seeded: Seeded, hh_sample: Path) -> None:
    pid = seed_project(seeded.db, ProjectCreate(name="HH upload", overlap=2), [])
    with make_client(seeded) as c:
        csrf = login(c, "admin")
        r = c.post(f"/admin/projects/{pid}/import",
                   data={"csrf_token": csrf, "format": "hh-rlhf"},
                   files={"file": ("hh.jsonl.gz", hh_sample.read_bytes(), "application/gzip")})
        assert r.status_code == 200, r.text[:500]
        assert "hh.jsonl.gz" in r.text and "tmp" not in r.text.split("import-summary")[1][:200]
    with seeded.db.read() as s:
        items, total = collect.list_items(s, pid, limit=5)
    assert total >= 390 and all(i.target == 2 for i in items)


def test_bad_upload_names_the_file_and_line(seeded: Seeded, tmp_path: Path) -> None:
    pid = seed_project(seeded.db, ProjectCreate(name="Bad upload"), [])
    with make_client(seeded) as c:
        csrf = login(c, "admin")
        r = c.post(f"/admin/projects/{pid}/import",
                   data={"csrf_token": csrf, "format": "hh-rlhf"},
                   files={"file": ("broken.jsonl", b'{"chosen": "x"}\n{not json\n',
                                   "application/json")})
        assert r.status_code == 422
        assert "broken.jsonl" in r.text and "line" in r.text
    with seeded.db.read() as s:
        assert collect.list_items(s, pid, limit=1)[1] == 0


def test_export_judgments_and_item_explanation(seeded: Seeded) -> None:
    with make_client(seeded) as c:
        alice = api_token(c, "alice")
        task = c.post(f"/api/v1/projects/{seeded.project_id}/tasks/next",
                      headers=alice).json()["task"]
        c.post(f"/api/v1/tasks/{task['assignment_id']}/judgments", headers=alice,
               json={"submission_id": "export-me-1", "choice": "5", "comment": "clear"})
        login(c, "admin")
        lines = c.get(f"/admin/projects/{seeded.project_id}/export/judgments.jsonl").text
        rows = [json.loads(x) for x in lines.splitlines()]
        assert [(r["judge_id"], r["comment"]) for r in rows] == [("human:alice", "clear")]
        page = c.get(f"/admin/projects/{seeded.project_id}/items/{task['item_id']}").text
        why = _rows(page, "assignments")
        assert len(why) == 1 and "human:alice" in why[0] and "priority" in why[0]
        pairs = c.get(f"/admin/projects/{seeded.project_id}/export/pairs.jsonl")
        assert pairs.status_code == 200
        assert [json.loads(x)["rule"] for x in pairs.text.splitlines()] == ["pairwise_likert"]


def test_items_are_paginated(seeded: Seeded) -> None:
    with make_client(seeded) as c:
        login(c, "admin")
        page = c.get(f"/admin/projects/{seeded.project_id}/items").text
        assert len(_rows(page, "items")) == 6 and "page 1 of 1" in page


def test_guidelines_edit_makes_a_new_version_only_on_change(seeded: Seeded) -> None:
    with make_client(seeded) as c:
        csrf = login(c, "admin")
        url = f"/admin/projects/{seeded.project_id}/guidelines"
        for text in ("# Rules\n\nBe kind.", "# Rules\n\nBe kind and brief."):
            assert c.post(url, data={"csrf_token": csrf, "text": text},
                          follow_redirects=False).status_code == 303
    with seeded.db.read() as s:
        assert collect.current_guideline(s, seeded.project_id).version == 2


def test_users_page_adds_and_disables(client: TestClient) -> None:
    csrf = login(client, "admin")
    r = client.post("/admin/users", data={"csrf_token": csrf, "username": "erin",
                                          "password": "erin-pass-1"}, follow_redirects=False)
    assert r.status_code == 303
    client.post("/admin/users/erin/disable", data={"csrf_token": csrf})
    rows = _rows(client.get("/admin/users").text, "users")
    assert any(r.startswith("erin annotator no") for r in rows), rows
    r = client.post("/admin/users/erin/token", data={"csrf_token": csrf})
    assert "pfl_" in r.text


def test_batches_table_counts_items_per_batch(seeded: Seeded) -> None:
    # a batch row is a mapping with an "items" key: attribute lookup gave dict.items itself
    with make_client(seeded) as c:
        login(c, "admin")
        page = c.get(f"/admin/projects/{seeded.project_id}").text
    with seeded.db.read() as s:
        total = collect.list_items(s, seeded.project_id, limit=1)[1]
    rows = _rows(page, "batches")
    assert rows and all("built-in method" not in r for r in rows)
    assert sum(int(r.split()[-4]) for r in rows) == total


def _key_help(html: str) -> dict[str, str]:
    """Return the key → meaning rows of the task page's keyboard help."""

    class _Help(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.inside, self.rows, self.cell = False, [], 0

        def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
            if tag == "dialog" and dict(attrs).get("id") == "help-dialog":
                self.inside = True
            if self.inside and tag == "tr":
                self.rows.append(["", ""])
                self.cell = -1
            if self.inside and tag == "td":
                self.cell += 1

        def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
            if tag == "dialog":
                self.inside = False

        def handle_data(self, data):  # type: ignore[no-untyped-def]
            if self.inside and self.rows and self.cell >= 0:
                self.rows[-1][self.cell] += data

    p = _Help()
    p.feed(html)
    return {k.strip(): v.strip() for k, v in p.rows}


def test_key_help_says_what_t_does_on_an_odd_scale(seeded: Seeded) -> None:
    # the seeded project is a 5-point scale: `t` picks the middle point there, not a tie option
    with make_client(seeded) as c:
        login(c, "alice")
        page = c.get(f"/projects/{seeded.project_id}/work", follow_redirects=True)
    assert page.status_code == 200
    keys = _key_help(page.text)
    assert keys["t"] == "tie: the middle point, 3, on this scale"
