"""The third-party data lookup (tests/data_catalog.py): folder, download-once cache, skip or fail."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.data_catalog import (
    CATALOG,
    DataFile,
    content_sha256,
    data_file,
    find_data_file,
    locate,
    missing_message,
)

SHARED = "hh-rlhf/harmless-base-test-first400.jsonl.gz"
ASKED = "oasst/en_100_tree.jsonl"


@pytest.fixture
def no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data folder and an empty cache; returns the cache folder."""
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("PREFLAB_TEST_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PREFLAB_TEST_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PREFLAB_REQUIRE_TEST_DATA", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving the folder it returns (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


def test_every_entry_names_its_source_license_and_content() -> None:
    for key, entry in CATALOG.items():
        assert key == entry.path and not Path(key).is_absolute()
        assert entry.source and entry.license and entry.holds
        if entry.sha256 is not None or entry.in_shared:  # pinned: every file we have had
            assert entry.rows and entry.rows > 0
            assert len(entry.sha256 or "") == 64 and int(entry.sha256 or "x", 16) >= 0
        if entry.in_shared:
            assert entry.hub is not None or entry.url is not None, f"{key}: no way to download it"
    assert {k for k, e in CATALOG.items() if e.in_shared} == {
        "hh-rlhf/harmless-base-test-first400.jsonl.gz", "hh-rlhf/helpful-online-test.jsonl.gz"}


def test_missing_file_skips_with_one_line_saying_how_to_get_it(no_data: Path) -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        data_file(SHARED, offline=True)
    message = str(skipped.value)
    assert "\n" not in message
    assert message.startswith(f"third-party test file {SHARED} not found: set PREFLAB_TEST_DATA")
    assert "Anthropic/hh-rlhf" in message and str(no_data) in message


def test_ci_flag_fails_for_shared_files_and_still_skips_asked_for_ones(
    no_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFLAB_REQUIRE_TEST_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="PREFLAB_REQUIRE_TEST_DATA is set"):
        data_file(SHARED, offline=True)
    with pytest.raises(pytest.skip.Exception):
        data_file(ASKED, offline=True)


def test_file_in_the_data_folder_is_used_as_it_is(no_data: Path, tmp_path: Path) -> None:
    target = tmp_path / "data" / ASKED
    target.parent.mkdir(parents=True)
    target.write_text("{}\n")
    assert data_file(ASKED, offline=True) == target


def test_download_once_into_the_cache_over_http(no_data: Path, loopback: tuple[str, Path]) -> None:
    base, served = loopback
    lines = [json.dumps({"chosen": f"c{k}", "rejected": f"r{k}"}) + "\n" for k in range(5)]
    (served / "full.jsonl.gz").write_bytes(gzip.compress("".join(lines).encode()))
    probe = Path(no_data.parent / "probe.jsonl")
    probe.write_text("".join(lines[:3]))
    entry = DataFile(path="x/first3.jsonl.gz", holds="test rows", source="loopback", license="MIT",
                     rows=3, sha256=content_sha256(probe), in_shared=False,
                     url=f"{base}/full.jsonl.gz", first_lines=3)

    got = locate(entry)
    assert got == no_data / "x" / "first3.jsonl.gz"
    assert gzip.decompress(got.read_bytes()).decode() == "".join(lines[:3])
    (served / "full.jsonl.gz").unlink()  # the second lookup reads the cache, not the server
    assert locate(entry) == got


def test_download_with_other_content_is_not_kept(no_data: Path, loopback: tuple[str, Path]) -> None:
    base, served = loopback
    (served / "f.jsonl").write_text('{"other": "revision"}\n')
    entry = DataFile(path="x/f.jsonl", holds="test rows", source="loopback", license="MIT", rows=1,
                     sha256="0" * 64, in_shared=False, url=f"{base}/f.jsonl")
    assert locate(entry) is None
    assert not (no_data / "x").exists() or not any((no_data / "x").iterdir())


def test_offline_lookup_never_downloads(no_data: Path, loopback: tuple[str, Path]) -> None:
    base, served = loopback
    (served / "f.jsonl").write_text("{}\n")
    entry = DataFile(path="x/f.jsonl", holds="test rows", source="loopback", license="MIT", rows=1,
                     sha256=content_sha256(served / "f.jsonl"), in_shared=False,
                     url=f"{base}/f.jsonl")
    assert locate(entry, offline=True) is None
    assert locate(replace(entry, url="http://127.0.0.1:9/nothing-listens-here")) is None


@pytest.mark.parametrize("relative", sorted(CATALOG))
def test_local_copies_are_the_published_files(relative: str) -> None:
    """Whatever copy is found (shared folder or cache) has the catalog's content and rows."""
    path = find_data_file(relative, offline=True)
    if path is None:
        pytest.skip(missing_message(relative))
    entry = CATALOG[relative]
    if entry.sha256 is None:
        pytest.skip(f"{relative}: no digest pinned yet (not in the shared data folder)")
    assert content_sha256(path) == entry.sha256
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        assert sum(1 for line in f if line.strip()) == entry.rows
