"""Clean 4xx at the door (server/limits.py, server/errors.py): bodies that cannot be read, text a
database cannot store, out-of-range times and numbers, size caps before and after decompression.

Each check runs on SQLite and PostgreSQL (the ``seeded`` fixture): the point of refusing NUL at
the door is that both answer the same 422 where SQLite used to store it and PostgreSQL failed.
"""

from __future__ import annotations

import gzip
import json
import os
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.server.conftest import Seeded, api_token

from preflab.server.app import create_app
from preflab.server.errors import UploadTooLargeError
from preflab.server.transfer import check_expanded_size, import_upload
from preflab.settings import Settings

GB_OF_ZEROS = 10**9


@pytest.fixture
def api(seeded: Seeded) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    """A client, alice's token and one task reserved for her."""
    settings = Settings(workspace=seeded.workspace, database_url=seeded.url)
    with TestClient(create_app(settings, db=seeded.db), raise_server_exceptions=False) as c:
        auth = api_token(c, "alice")
        r = c.post(f"/api/v1/projects/{seeded.project_id}/tasks/next", headers=auth)
        assert r.status_code == 200, r.text
        yield c, auth, r.json()["task"]["assignment_id"]


def _error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) == {"code", "message", "field"}
    return dict(error)


def _submit(c: TestClient, auth: dict[str, str], aid: str, **body: Any) -> Any:
    return c.post(f"/api/v1/tasks/{aid}/judgments", headers=auth,
                  json={"submission_id": "sub-limits-1", "choice": "1", **body})


@pytest.mark.parametrize("ms", [10**20, -1, 2**63])
def test_started_at_ms_out_of_range_names_the_field(api: Any, ms: int) -> None:
    c, auth, aid = api
    error = _error(_submit(c, auth, aid, started_at_ms=ms), 422)
    assert error["field"] == "body.started_at_ms" and str(ms) in error["message"]
    assert _submit(c, auth, aid, started_at_ms=1_700_000_000_000).status_code == 201


@pytest.mark.parametrize("field,value", [("comment", "a\x00b"), ("critique", "\x00"),
                                          ("flags", ["ok", "bad\x00"]), ("comment", "\ud800x")])
def test_unstorable_text_is_refused_naming_the_field(api: Any, field: str, value: Any) -> None:
    c, auth, aid = api
    raw = json.dumps({"submission_id": "sub-limits-2", "choice": "1", field: value}).encode()
    r = c.post(f"/api/v1/tasks/{aid}/judgments", content=raw,
               headers={**auth, "content-type": "application/json"})
    error = _error(r, 422)
    expected = f"body.{field}" + ("[1]" if isinstance(value, list) else "")
    assert error["field"] == expected and error["code"] == "invalid_field"
    assert "NUL" in error["message"] or "surrogate" in error["message"]
    # nothing was stored: the same submission, cleaned, is the first one
    assert _submit(c, auth, aid, comment="fine \U0001f600").status_code == 201


def test_an_emoji_as_a_surrogate_pair_escape_is_accepted(api: Any) -> None:
    c, auth, aid = api
    raw = b'{"submission_id": "sub-limits-3", "choice": "1", "comment": "\\ud83d\\ude00"}'
    r = c.post(f"/api/v1/tasks/{aid}/judgments", content=raw,
               headers={**auth, "content-type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["comment"] == "\U0001f600"


def test_nul_in_query_and_path_names_the_parameter(api: Any, seeded: Seeded) -> None:
    c, auth, _ = api
    admin = api_token(c, "admin")
    error = _error(c.get("/api/v1/projects/a%00b", headers=auth), 422)
    assert error["field"] == "path.project_id"
    r = c.get(f"/api/v1/projects/{seeded.project_id}/judgments?judge_id=x%00", headers=admin)
    assert _error(r, 422)["field"] == "query.judge_id"


@pytest.mark.parametrize("body,ctype,says", [
    (b"[" * 50_000 + b"]" * 50_000, "application/json", "nested too deeply"),
    (b'{"submission_id": "\xff\xfe\xfd"}', "application/json", "UTF-8"),
    (b'{"submission_id": ', "application/json", "not valid JSON"),
    (b'{"started_at_ms": ' + b"9" * 5000 + b"}", "application/json", "digits"),
    (b'{"submission_id": "abcdefghij", "choice": "1"}', "text/plain", "Content-Type"),
    (b"submission_id=abcdefghij&choice=1", "application/x-www-form-urlencoded", "Content-Type"),
])
def test_unreadable_bodies_answer_400_naming_the_body(api: Any, body: bytes, ctype: str,
                                                      says: str) -> None:
    c, auth, aid = api
    r = c.post(f"/api/v1/tasks/{aid}/judgments", content=body,
               headers={**auth, "content-type": ctype})
    error = _error(r, 400)
    assert error["field"] == "body" and error["code"] == "bad_request"
    assert says in error["message"]


def test_huge_integers_in_queries_name_the_parameter(api: Any, seeded: Seeded) -> None:
    c, _, _ = api
    admin = api_token(c, "admin")
    for version in (10**24, "9" * 5000):
        r = c.get(f"/api/v1/projects/{seeded.project_id}/guidelines?version={version}",
                  headers=admin)
        assert _error(r, 422)["field"] == "query.version"


def _small_caps_client(seeded: Seeded) -> TestClient:
    settings = Settings(workspace=seeded.workspace, database_url=seeded.url,
                        max_body_bytes=4096, max_upload_bytes=8192,
                        max_upload_expanded_bytes=16384)
    return TestClient(create_app(settings, db=seeded.db), raise_server_exceptions=False)


def test_bodies_over_the_cap_answer_413_by_length_and_by_stream(seeded: Seeded) -> None:
    with _small_caps_client(seeded) as c:
        auth = api_token(c, "alice")
        url = f"/api/v1/projects/{seeded.project_id}/feedback"
        big = json.dumps({"events": [], "pad": "x" * 5000}).encode()
        error = _error(c.post(url, content=big,
                              headers={**auth, "content-type": "application/json"}), 413)
        assert error["field"] == "body" and "4096 bytes" in error["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams in
            yield b'{"events": [], "pad": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}'

        r = c.post(url, content=chunks(), headers={**auth, "content-type": "application/json"})
        assert _error(r, 413)["field"] == "body"


def test_gzip_request_bodies_are_inflated_and_capped(seeded: Seeded) -> None:
    with _small_caps_client(seeded) as c:
        auth = api_token(c, "alice")
        r = c.post(f"/api/v1/projects/{seeded.project_id}/tasks/next", headers=auth)
        aid = r.json()["task"]["assignment_id"]
        ok = gzip.compress(b'{"submission_id": "sub-gzip-1", "choice": "2"}')
        headers = {**auth, "content-type": "application/json", "content-encoding": "gzip"}
        r = c.post(f"/api/v1/tasks/{aid}/judgments", content=ok, headers=headers)
        assert r.status_code == 201, r.text
        bomb = gzip.compress(b'{"pad": "' + b" " * 100_000 + b'"}')
        assert len(bomb) < 4096
        error = _error(c.post(f"/api/v1/tasks/{aid}/judgments", content=bomb, headers=headers),
                       413)
        assert "once decompressed" in error["message"] and error["field"] == "body"
        for broken in (b"not gzip", ok[:-12], ok + ok):  # garbage, cut off, two members
            error = _error(c.post(f"/api/v1/tasks/{aid}/judgments", content=broken,
                                  headers=headers), 400)
            assert error["field"] == "body"
        r = c.post(f"/api/v1/tasks/{aid}/judgments", content=ok,
                   headers={**headers, "content-encoding": "br"})
        assert _error(r, 415)["field"] == "body"


@pytest.fixture(scope="module")
def gzip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 GB of zeros gzipped (about 1 MB), written in steps: never whole in memory."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.jsonl.gz"
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    step = b"\0" * (1 << 24)
    with path.open("wb") as out:
        for _ in range(GB_OF_ZEROS // len(step)):
            out.write(packer.compress(step))
        out.write(packer.compress(b"\0" * (GB_OF_ZEROS % len(step))) + packer.flush())
    return path


def test_gzip_bomb_json_body_is_refused_without_inflating_it(seeded: Seeded,
                                                             gzip_bomb: Path) -> None:
    data = gzip_bomb.read_bytes()
    assert len(data) < 8 << 20
    settings = Settings(workspace=seeded.workspace, database_url=seeded.url)
    with TestClient(create_app(settings, db=seeded.db), raise_server_exceptions=False) as c:
        auth = api_token(c, "alice")
        tracemalloc.start()
        try:
            r = c.post(f"/api/v1/projects/{seeded.project_id}/feedback", content=data,
                       headers={**auth, "content-type": "application/json",
                                "content-encoding": "gzip"})
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    error = _error(r, 413)
    assert "8 MiB once decompressed" in error["message"]
    print(f"JSON gzip bomb ({len(data)} bytes, 1 GB inflated) refused; peak {peak / 2**20:.1f} MiB")
    assert peak < 64 << 20, f"peak {peak >> 20} MiB while refusing a 1 GB bomb"


def test_gzip_bomb_upload_is_refused_by_its_expanded_size(seeded: Seeded,
                                                          gzip_bomb: Path) -> None:
    from preflab import collect

    with seeded.db.connect() as conn:
        project = collect.get_project(conn, seeded.project_id)
    tracemalloc.start()
    try:
        with gzip_bomb.open("rb") as fh, pytest.raises(UploadTooLargeError) as caught:
            import_upload(seeded.db, project, "hh-rlhf", "bomb.jsonl.gz", fh,
                          Settings(workspace=seeded.workspace))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.http_status == 413 and caught.value.field == "file"
    print(f"upload gzip bomb refused; peak {peak / 2**20:.1f} MiB")
    assert "512 MiB once decompressed" in caught.value.message
    assert peak < 64 << 20, f"peak {peak >> 20} MiB while refusing a 1 GB bomb"
    with seeded.db.connect() as conn:
        assert collect.project_progress(conn, seeded.project_id).items == len(seeded.item_ids)


@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2", ".zst"])
def test_expanded_size_of_plain_and_compressed_files(tmp_path: Path, suffix: str) -> None:
    import bz2

    import zstandard

    text = b'{"x": 1}\n' * 625
    pack = {"": bytes, ".gz": gzip.compress, ".bz2": bz2.compress,
            ".zst": zstandard.ZstdCompressor().compress}[suffix]
    path = tmp_path / f"a.jsonl{suffix}"
    path.write_bytes(pack(text))
    assert check_expanded_size(path, path.name, len(text)) == len(text)
    with pytest.raises(UploadTooLargeError) as caught:
        check_expanded_size(path, path.name, len(text) - 1)
    assert caught.value.field == "file" and path.name in caught.value.message


def test_broken_compressed_upload_is_an_input_error(tmp_path: Path) -> None:
    from preflab.errors import InputError

    path = tmp_path / "cut.jsonl.gz"
    packed = gzip.compress(os.urandom(100_000))
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(InputError) as caught:
        check_expanded_size(path, "cut.jsonl.gz", 1 << 20)
    assert caught.value.http_status == 422 and caught.value.field == "file"


def test_nul_in_a_page_form_names_the_form_field(seeded: Seeded) -> None:
    settings = Settings(workspace=seeded.workspace, database_url=seeded.url)
    with TestClient(create_app(settings, db=seeded.db), raise_server_exceptions=False) as c:
        r = c.post("/login", data={"username": "ali\x00ce", "password": "x", "csrf_token": "t"})
    assert r.status_code == 422 and 'data-field="username"' in r.text


def test_import_page_refuses_a_bomb_and_an_oversized_upload(seeded: Seeded) -> None:
    from tests.server.conftest import login

    bomb = gzip.compress(b"\0" * 100_000)
    with _small_caps_client(seeded) as c:
        csrf = login(c, "admin")
        url = f"/admin/projects/{seeded.project_id}/import"
        r = c.post(url, data={"csrf_token": csrf, "format": "hh-rlhf"},
                   files={"file": ("bomb.jsonl.gz", bomb, "application/gzip")})
        assert r.status_code == 413, r.text[:300]
        assert "once decompressed" in r.text and 'data-field="file"' in r.text
        r = c.post(url, data={"csrf_token": csrf, "format": "hh-rlhf"},
                   files={"file": ("big.jsonl", b"x" * 10_000, "application/json")})
        assert r.status_code == 413, r.text[:300]
        assert 'data-field="body"' in r.text
