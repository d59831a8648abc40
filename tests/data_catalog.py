"""Third-party data the tests read: where each file comes from, and how a test finds it.

No third-party row is committed to this repository. A test that needs a published file asks for
it by its path relative to a data folder (``data_file("hh-rlhf/…")``), which looks, in order:

1. in ``$PREFLAB_TEST_DATA`` (a folder with the layout of the catalog's paths; ``.ci/run``
   points it at ``../shared/data`` beside the checkout);
2. in the download-once cache ``$PREFLAB_TEST_DATA_CACHE`` (default
   ``~/.cache/preflab/test-data``), filled from the file's public source where a network exists:
   the Hugging Face Hub through ``huggingface_hub.hf_hub_download`` (``repo_type="dataset"``), or
   a raw file of a public repository at a pinned commit. A 2-second connection probe and
   ``HF_HUB_OFFLINE=1`` keep this step quick where there is no network; every file is checked
   against the SHA-256 of its uncompressed content before it is used;
3. else the test is skipped with one line saying how to get the file.

``PREFLAB_REQUIRE_TEST_DATA=1`` (set by CI) turns that skip into a failure for the files marked
``in_shared`` (present in the shared data folder today); files we have asked to be added there
keep skipping until they are.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import socket
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["CATALOG", "DataFile", "HubFile", "content_sha256", "data_file", "find_data_file", "locate",
           "missing_message"]

_PROBE_SECONDS = 2.0
_DOWNLOAD_SECONDS = 60.0


@dataclass(frozen=True)
class HubFile:
    """A file of a Hugging Face Hub dataset repository."""

    repo_id: str
    filename: str
    revision: str | None = None


@dataclass(frozen=True)
class DataFile:
    """One published file the tests read.

    ``sha256`` is the digest of the file's uncompressed content, so a recompressed copy passes
    and a different revision of the data does not (None, with ``rows`` None: a file we have not
    had yet; its digest is pinned when it is added to the shared data folder). ``first_lines``: the file is the first lines
    of the downloaded one (kept gzip-compressed).
    """

    path: str
    holds: str
    source: str
    license: str
    rows: int | None
    sha256: str | None
    in_shared: bool
    hub: HubFile | None = None
    url: str | None = None
    first_lines: int | None = None


_HH = "Anthropic HH-RLHF (Bai et al. 2022)"
_EASY = "https://raw.githubusercontent.com/DaehanKim/EasyRLHF/45eccb72ddb8c18aa52dc2a184516380e06582fe/data"
_OA = ("https://raw.githubusercontent.com/LAION-AI/Open-Assistant/"
       "f1e6ed9526f5817531f3ab85441a40b3671ddccb/model/model_eval/manual/data")

CATALOG: dict[str, DataFile] = {f.path: f for f in (
    DataFile(
        path="hh-rlhf/harmless-base-test-first400.jsonl.gz",
        holds=f"{_HH} harmless-base test split, its first 400 lines (400 pairs)",
        source="repository anthropics/hh-rlhf, file harmless-base/test.jsonl.gz (first 400 lines); "
               "the same file is Anthropic/hh-rlhf on the Hugging Face Hub",
        license="MIT", rows=400,
        sha256="9ca86432243e4d464fad0b71fa174231107c44639d980ac88f8d48a08ee077d4",
        in_shared=True,
        hub=HubFile("Anthropic/hh-rlhf", "harmless-base/test.jsonl.gz"), first_lines=400,
    ),
    DataFile(
        path="hh-rlhf/helpful-online-test.jsonl.gz",
        holds=f"{_HH} helpful-online test split, whole file (1,137 pairs; an earlier revision "
              "than upstream's current file)",
        source="repository DaehanKim/EasyRLHF at 45eccb72, file data/helpful-online/test.jsonl.gz",
        license="MIT", rows=1137,
        sha256="b6bd51d77d94c6223e83c29e75b12c1c089504d52797561462017c2c0e575b41",
        in_shared=True,
        url=f"{_EASY}/helpful-online/test.jsonl.gz",
    ),
    DataFile(
        path="hh-rlhf/harmless-base-test.jsonl.gz",
        holds=f"{_HH} harmless-base test split, whole file (2,312 pairs)",
        source="repository anthropics/hh-rlhf at 354e5c3c, file harmless-base/test.jsonl.gz "
               "(also Anthropic/hh-rlhf on the Hugging Face Hub)",
        license="MIT", rows=2312,
        sha256="14d765196c9f18d84f9bb3a78bac608c8f2915110ebcbd74ec95db7b7198b008",
        in_shared=False,
        hub=HubFile("Anthropic/hh-rlhf", "harmless-base/test.jsonl.gz"),
    ),
    DataFile(
        path="hh-rlhf/helpful-base-test.jsonl.gz",
        holds=f"{_HH} helpful-base test split, whole file (2,354 pairs)",
        source="repository DaehanKim/EasyRLHF at 45eccb72, file data/helpful-base/test.jsonl.gz "
               "(a copy of anthropics/hh-rlhf's helpful-base/test.jsonl.gz)",
        license="MIT", rows=2354,
        sha256="41c3a32fe45a7075f7e32b11bd29383f9fe650287354a95568f61295a8e694da",
        in_shared=False,
        url=f"{_EASY}/helpful-base/test.jsonl.gz",
    ),
    DataFile(
        path="hh-rlhf/helpful-rejection-sampled-test.jsonl.gz",
        holds=f"{_HH} helpful-rejection-sampled test split, whole file (2,749 pairs)",
        source="repository DaehanKim/EasyRLHF at 45eccb72, file "
               "data/helpful-rejection-sampled/test.jsonl.gz",
        license="MIT", rows=2749,
        sha256="90b4e2c68562123177471bad28650bd9f1fb5dccedb9e25779efa0373e3f6b85",
        in_shared=False,
        url=f"{_EASY}/helpful-rejection-sampled/test.jsonl.gz",
    ),
    DataFile(
        path="oasst/en_100_tree.jsonl",
        holds="100 English OpenAssistant conversation trees in the oasst export's trees layout "
              "(message_tree_id, tree_state, prompt with nested replies, ranks, emojis, labels)",
        source="repository LAION-AI/Open-Assistant at f1e6ed95, file "
               "model/model_eval/manual/data/en_100_tree.jsonl (sampled from the oasst export)",
        license="Apache-2.0", rows=100,
        sha256="a27639214a5098bf9e1cc62a855c85c630b64ab48ee94655e7f6046438b0aedb",
        in_shared=False,
        url=f"{_OA}/en_100_tree.jsonl",
    ),
    DataFile(
        path="oasst/en_100_message.jsonl",
        holds="the same 100 OpenAssistant trees as nested root messages (no tree wrapper)",
        source="repository LAION-AI/Open-Assistant at f1e6ed95, file "
               "model/model_eval/manual/data/en_100_message.jsonl",
        license="Apache-2.0", rows=100,
        sha256="d70f5706f746dc96925a7312bdef5b3d4da81d3438ad3bc981b53fda9a83235c",
        in_shared=False,
        url=f"{_OA}/en_100_message.jsonl",
    ),
    DataFile(
        path="pku-saferlhf/Alpaca-7B-test.jsonl",
        holds="PKU-SafeRLHF (Ji et al. 2024) test split of the Alpaca-7B answers, current layout: "
              "prompt, response_0/1, better_response_id, safer_response_id, is_response_<i>_safe, "
              "harm categories, severity levels, sources",
        source="Hugging Face Hub dataset PKU-Alignment/PKU-SafeRLHF, file data/Alpaca-7B/test.jsonl "
               "(no public repository copy found)",
        license="CC-BY-NC-4.0 (per the dataset card)", rows=None, sha256=None, in_shared=False,
        hub=HubFile("PKU-Alignment/PKU-SafeRLHF", "data/Alpaca-7B/test.jsonl"),
    ),
    DataFile(
        path="shp/askacademia-test.json",
        holds="SHP (Ethayarajh et al. 2022) askacademia test split: Reddit posts with two "
              "top-level comments, labels, scores and score ratios (JSON lines)",
        source="Hugging Face Hub dataset stanfordnlp/SHP, file askacademia/test.json (no public "
               "repository copy found; file name as on the dataset page, not checked here)",
        license="see the dataset card (Reddit content)", rows=None, sha256=None, in_shared=False,
        hub=HubFile("stanfordnlp/SHP", "askacademia/test.json"),
    ),
    DataFile(
        path="ultrafeedback/false_qa.jsonl",
        holds="UltraFeedback (Cui et al. 2023) raw rows of the false_qa source: instruction, "
              "four completions with GPT-4 aspect ratings, fine-grained and overall scores",
        source="Hugging Face Hub dataset openbmb/UltraFeedback, file false_qa.jsonl (no public "
               "repository copy found; file name as on the dataset page, not checked here)",
        license="MIT (per the dataset card)", rows=None, sha256=None, in_shared=False,
        hub=HubFile("openbmb/UltraFeedback", "false_qa.jsonl"),
    ),
    DataFile(
        path="helpsteer2/validation.jsonl.gz",
        holds="HelpSteer2 (Wang et al. 2024) validation split: prompt, response and five "
              "attribute ratings 0-4",
        source="Hugging Face Hub dataset nvidia/HelpSteer2, file validation.jsonl.gz (no public "
               "repository copy found)",
        license="CC-BY-4.0 (per the dataset card)", rows=None, sha256=None, in_shared=False,
        hub=HubFile("nvidia/HelpSteer2", "validation.jsonl.gz"),
    ),
    DataFile(
        path="helpsteer2/preference.jsonl.gz",
        holds="HelpSteer2 preference file: prompt, response_1/2, preference_strength -3..3, "
              "statement, elaboration, split",
        source="Hugging Face Hub dataset nvidia/HelpSteer2, file preference/preference.jsonl.gz "
               "(no public repository copy found)",
        license="CC-BY-4.0 (per the dataset card)", rows=None, sha256=None, in_shared=False,
        hub=HubFile("nvidia/HelpSteer2", "preference/preference.jsonl.gz"),
    ),
    DataFile(
        path="arena/chatbot_arena_conversations.parquet",
        holds="Chatbot Arena battles (Zheng et al. 2023): 33,000 votes with both conversations, "
              "winner (model_a, model_b, tie, tie (bothbad)), voter, language, timestamp",
        source="Hugging Face Hub dataset lmsys/chatbot_arena_conversations, its one Parquet file "
               "(gated: accept its terms on the Hub, then give it through PREFLAB_TEST_DATA)",
        license="CC-BY-4.0 for the prompts; model outputs under their providers' terms (per the "
                "dataset card)", rows=None, sha256=None, in_shared=False,
    ),
    DataFile(
        path="trl/ultrafeedback_binarized-test.parquet",
        holds="TRL's own preference layout (conversational, implicit prompt: chosen and rejected "
              "message lists with score_chosen/score_rejected), test split",
        source="Hugging Face Hub dataset trl-lib/ultrafeedback_binarized, test split Parquet file",
        license="MIT (per the dataset card)", rows=None, sha256=None, in_shared=False,
    ),
    DataFile(
        path="trl/kto-mix-14k-test.parquet",
        holds="TRL's unpaired layout (prompt, completion, label; conversational), test split",
        source="Hugging Face Hub dataset trl-lib/kto-mix-14k, test split Parquet file",
        license="see the dataset card (a mix of sources)", rows=None, sha256=None, in_shared=False,
    ),
    DataFile(
        path="nectar/rlaif.parquet",
        holds="Nectar (Zhu et al. 2023): prompts (HH-style transcripts) with 7 ranked answers each, "
              "ranked by GPT-4; the whole published file",
        source="Hugging Face Hub dataset berkeley-nest/Nectar, file data/rlaif.parquet "
               "(no public repository copy found)",
        license="Apache-2.0 (per the dataset card)", rows=None, sha256=None, in_shared=False,
        hub=HubFile("berkeley-nest/Nectar", "data/rlaif.parquet"),
    ),
    DataFile(
        path="ultrafeedback/ultrafeedback_binarized-test_prefs.parquet",
        holds="UltraFeedback binarized (Tunstall et al. 2023, Zephyr): prompt, prompt_id, chosen "
              "and rejected message lists, messages, score_chosen, score_rejected; test_prefs split",
        source="Hugging Face Hub dataset HuggingFaceH4/ultrafeedback_binarized, the test_prefs "
               "split's Parquet file under data/ (its name carries a content hash; no public "
               "repository copy found)",
        license="MIT (per the dataset card)", rows=None, sha256=None, in_shared=False,
    ),
    DataFile(
        path="arena/arena-human-preference-55k-train.csv",
        holds="Chatbot Arena human-preference table (Kaggle's LMSYS competition): id, model_a, "
              "model_b, prompt, response_a, response_b (JSON-encoded turn lists), winner_model_a, "
              "winner_model_b, winner_tie",
        source="Hugging Face Hub dataset lmarena-ai/arena-human-preference-55k, file train.csv "
               "(no public repository copy found; file name as on the dataset page, not checked "
               "here)",
        license="Apache-2.0 (per the dataset card); model outputs under their providers' terms",
        rows=None, sha256=None, in_shared=False,
        hub=HubFile("lmarena-ai/arena-human-preference-55k", "train.csv"),
    ),
    DataFile(
        path="hh-rlhf/red_team_attempts.jsonl.gz",
        holds=f"{_HH.replace('Bai et al.', 'Ganguli et al.')} red-team attempts, whole file: one "
              "JSON array of transcripts with the member's 0-4 attack-success rating, the "
              "preference model's harmlessness score, model type and size, task description, tags",
        source="repository anthropics/hh-rlhf at 354e5c3c, file "
               "red-team-attempts/red_team_attempts.jsonl.gz (Git LFS; also Anthropic/hh-rlhf on "
               "the Hugging Face Hub)",
        license="MIT", rows=None, sha256=None, in_shared=False,
        hub=HubFile("Anthropic/hh-rlhf", "red-team-attempts/red_team_attempts.jsonl.gz"),
        url="https://media.githubusercontent.com/media/anthropics/hh-rlhf/"
            "354e5c3cb8960630860dd5774a6ac2a58313bf4d/red-team-attempts/red_team_attempts.jsonl.gz",
    ),
)}


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def _cache_dir() -> Path:
    explicit = _env_path("PREFLAB_TEST_DATA_CACHE")
    if explicit is not None:
        return explicit
    base = _env_path("XDG_CACHE_HOME") or Path.home() / ".cache"
    return base / "preflab" / "test-data"


def content_sha256(path: Path) -> str:
    """Return the SHA-256 of the file's uncompressed content (gzip by the ``.gz`` suffix)."""
    opener = gzip.open if path.suffix == ".gz" else open
    digest = hashlib.sha256()
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_PROBED: dict[tuple[str, int], bool] = {}


def _reachable(url: str) -> bool:
    """True when ``url``'s host accepts a TCP connection within the probe time (probed once)."""
    parts = urllib.parse.urlsplit(url)
    key = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    if key not in _PROBED:
        try:
            with socket.create_connection(key, timeout=_PROBE_SECONDS):
                _PROBED[key] = True
        except OSError:
            _PROBED[key] = False
    return _PROBED[key]


def _from_hub(hub: HubFile, offline: bool) -> Path | None:
    try:
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        return None
    local_only = offline or constants.HF_HUB_OFFLINE or not _reachable(constants.ENDPOINT)
    try:
        return Path(hf_hub_download(hub.repo_id, hub.filename, repo_type="dataset",
                                    revision=hub.revision, local_files_only=local_only,
                                    etag_timeout=_PROBE_SECONDS))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError):
        return None


def _from_url(url: str, into: Path, offline: bool) -> Path | None:
    if offline or not _reachable(url):
        return None
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_SECONDS) as response:  # noqa: S310
            with into.open("wb") as out:
                shutil.copyfileobj(response, out)
    except OSError:
        return None
    return into


def _store(entry: DataFile, downloaded: Path, target: Path) -> None:
    """Copy ``downloaded`` to ``target`` (cut to the entry's first lines), written atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".part" + target.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        first = entry.first_lines
        if first is None:
            shutil.copyfile(downloaded, tmp)
        else:
            opener = gzip.open if downloaded.suffix == ".gz" else open
            with opener(downloaded, "rb") as src, gzip.open(tmp, "wb") as dst:
                for k, line in enumerate(src):
                    if k == first:
                        break
                    dst.write(line)
        if entry.sha256 is not None and content_sha256(tmp) != entry.sha256:
            return  # another revision of the data: not the file the tests were written for
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def find_data_file(relative: str, *, offline: bool = False) -> Path | None:
    """Return the local path of catalog file ``relative``, downloading it once if possible.

    ``offline=True`` skips every network step (``$PREFLAB_TEST_DATA`` and the cache only).
    """
    return locate(CATALOG[relative], offline=offline)


def locate(entry: DataFile, *, offline: bool = False) -> Path | None:
    """Return the local path of ``entry`` (see the module docstring for the order), or None."""
    folder = _env_path("PREFLAB_TEST_DATA")
    if folder is not None and (folder / entry.path).is_file():
        return folder / entry.path
    cached = _cache_dir() / entry.path
    if cached.is_file():
        return cached
    with tempfile.TemporaryDirectory() as tmp:
        downloaded: Path | None = None
        if entry.hub is not None:
            downloaded = _from_hub(entry.hub, offline)
        if downloaded is None and entry.url is not None:
            downloaded = _from_url(entry.url, Path(tmp) / Path(entry.path).name, offline)
        if downloaded is not None:
            _store(entry, downloaded, cached)
    return cached if cached.is_file() else None


def missing_message(relative: str) -> str:
    """One line saying that ``relative`` is missing and how to get it."""
    entry = CATALOG[relative]
    where = (f"Hugging Face Hub dataset {entry.hub.repo_id}, file {entry.hub.filename}"
             if entry.hub else entry.source)
    if entry.first_lines:
        where += f", first {entry.first_lines} lines"
    fetch = (f", or run once where the network reaches it to cache it in {_cache_dir()}"
             if entry.hub or entry.url else "; it is not downloaded automatically")
    return (f"third-party test file {relative} not found: set PREFLAB_TEST_DATA to a folder "
            f"holding it (source: {where}; {entry.license}){fetch}")


def data_file(relative: str, *, offline: bool = False) -> Path:
    """Return the path of catalog file ``relative``, or skip the test (fail under CI's flag).

    With ``PREFLAB_REQUIRE_TEST_DATA=1`` a missing file that the shared data folder is known to
    hold fails the test instead of skipping it.
    """
    path = find_data_file(relative, offline=offline)
    if path is not None:
        return path
    message = missing_message(relative)
    if os.environ.get("PREFLAB_REQUIRE_TEST_DATA", "") not in ("", "0") and CATALOG[relative].in_shared:
        pytest.fail(f"PREFLAB_REQUIRE_TEST_DATA is set and {message}", pytrace=False)
    pytest.skip(message)
