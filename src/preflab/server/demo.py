"""``preflab demo``: a fresh SQLite workspace with a demo pairwise project, users and guidelines.

The project imports the HH-RLHF sample (harmless-base test split, its first 400 pairs), found by
:func:`find_demo_data` in this order: the file given (``--data`` or ``PREFLAB_DEMO_DATA``);
``hh-rlhf/harmless-base-test-first400.jsonl.gz`` in the ``PREFLAB_TEST_DATA`` folder; a copy
the demo downloaded before into the workspace's ``data/`` folder; the Hugging Face Hub
(dataset ``Anthropic/hh-rlhf``, file ``harmless-base/test.jsonl.gz``, first 400 lines) where a
network exists; else a few built-in synthetic items. The demo says which one it used. It uses a
5-point scale with tie and both-bad buttons, two judges on 30% of the items, and gold items
(HH's chosen answer) on 10% of tasks.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from preflab import collect
from preflab.collect import ProjectCreate
from preflab.errors import ConflictError, InputError
from preflab.server import accounts, transfer
from preflab.server.db import Database
from preflab.settings import default_database_url
from preflab.store.tables import ProjectRow

__all__ = ["DEMO_LOGINS", "DEMO_PROJECT", "DemoData", "DemoInfo", "find_demo_data", "setup_demo"]

DEMO_PROJECT = "hh-harmless-demo"
DEMO_LOGINS = (
    ("admin", "admin-demo-pass", "admin"),
    ("alice", "alice-demo-pass", "annotator"),
    ("bob", "bob-demo-pass", "annotator"),
)
HH_SAMPLE_NAME = "hh-rlhf/harmless-base-test-first400.jsonl.gz"
HUB_DATASET, HUB_FILE, HUB_FIRST_LINES = "Anthropic/hh-rlhf", "harmless-base/test.jsonl.gz", 400
_PROBE_SECONDS = 2.0

GUIDELINES = """# Which answer is better?

Read the whole conversation, then both answers.

1. **Harmless first.** Prefer the answer that does not help with anything dangerous, illegal
   or cruel, even if it is less helpful.
2. **Then helpful.** Among safe answers, prefer the one that actually answers.
3. Use **tie** (`t`) when you cannot tell them apart, **both bad** (`b`) when neither is
   acceptable, **flag** (`f`) anything harmful so we can review it.
4. Skip (`s`) only when you cannot judge (language you do not read, broken text), and say why.
"""

_BUILTIN = [
    ("How do I pick a lock?",
     "I can't help with breaking into places, but a locksmith can help if you're locked out.",
     "Insert a tension wrench and rake the pins until they set."),
    ("What's a good way to get back at my noisy neighbour?",
     "Talking to them calmly, or to your landlord, usually works better than revenge.",
     "Leave a dead fish in their mailbox."),
    ("Can you tell me how to make a fake ID?",
     "I can't help with that; fake IDs are illegal. If you lost your ID, the DMV can replace it.",
     "Sure, first get a laminator and a photo."),
    ("Write me an insult about my coworker.",
     "Maybe tell me what happened? I can help you write a message that sorts it out.",
     "Your coworker is a waste of space."),
]


@dataclass
class DemoInfo:
    """What the demo set up."""

    database_url: str
    project_id: str
    items: int
    source: str
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    created: bool = True


@dataclass(frozen=True)
class DemoData:
    """The file the demo imports (None: the built-in items) and a sentence saying what it is."""

    path: Path | None
    description: str


BUILTIN_DESCRIPTION = (
    f"built-in synthetic sample ({len(_BUILTIN)} items written for the demo, not real data): "
    "no HH-RLHF file found. Set PREFLAB_DEMO_DATA to the file (or PREFLAB_TEST_DATA to a folder "
    f"holding {HH_SAMPLE_NAME}), or run once with network access to download it from the "
    f"Hugging Face Hub ({HUB_DATASET})"
)


def find_demo_data(data: Path | None, test_data: Path | None, cache: Path, *,
                   network: bool = True) -> DemoData:
    """Return the HH-RLHF sample the demo imports and where it came from.

    Args:
        data: a file named by the user (``--data``, ``PREFLAB_DEMO_DATA``); must exist.
        test_data: the ``PREFLAB_TEST_DATA`` folder, looked in for ``hh-rlhf/…first400…``.
        cache: folder keeping a copy downloaded from the Hub (the workspace's ``data/``).
        network: False never tries the Hub.

    Raises:
        InputError: ``data`` is given but is not a file.

    >>> find_demo_data(None, None, Path("no-such-folder"), network=False).path is None
    True
    """
    if data is not None:
        if not data.is_file():
            raise InputError(f"{data}: no such file. Give --data (or PREFLAB_DEMO_DATA) an "
                             "HH-RLHF JSONL file, or leave it unset to use the built-in "
                             "lookup.", path=str(data))
        return DemoData(data, f"{data} (given by --data or PREFLAB_DEMO_DATA)")
    if test_data is not None and (test_data / HH_SAMPLE_NAME).is_file():
        path = test_data / HH_SAMPLE_NAME
        return DemoData(path, f"HH-RLHF harmless-base test, first 400 pairs: {path} "
                              "(PREFLAB_TEST_DATA)")
    cached = cache / Path(HH_SAMPLE_NAME).name
    hub = (f"HH-RLHF harmless-base test, first {HUB_FIRST_LINES} pairs, from the Hugging Face "
           f"Hub ({HUB_DATASET}, {HUB_FILE})")
    if cached.is_file():
        return DemoData(cached, f"{hub}, downloaded before: {cached}")
    if network and _download_sample(cached):
        return DemoData(cached, f"{hub}, downloaded now: {cached}")
    return DemoData(None, BUILTIN_DESCRIPTION)


def _download_sample(target: Path) -> bool:
    """Write the first lines of the Hub's HH-RLHF harmless-base test file to ``target``.

    Returns False quickly where there is no network (a 2-second connection probe, or
    ``HF_HUB_OFFLINE=1``) or when ``huggingface_hub`` (the ``hf`` extra) is not installed.
    """
    try:
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        return False
    local_only = constants.HF_HUB_OFFLINE or not _reachable(constants.ENDPOINT)
    try:
        source = Path(hf_hub_download(HUB_DATASET, HUB_FILE, repo_type="dataset",
                                      local_files_only=local_only, etag_timeout=_PROBE_SECONDS))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".part.gz")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with gzip.open(source, "rb") as src, gzip.open(tmp, "wb") as dst:
            for k, line in enumerate(src):
                if k == HUB_FIRST_LINES:
                    break
                dst.write(line)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _reachable(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=_PROBE_SECONDS):
            return True
    except OSError:
        return False


def _write_builtin_sample(folder: Path) -> Path:
    """Write the built-in items as an HH-RLHF file (chosen = the harmless answer); return it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "builtin-demo.jsonl"
    rows = ({"chosen": f"\n\nHuman: {prompt}\n\nAssistant: {good}",
             "rejected": f"\n\nHuman: {prompt}\n\nAssistant: {bad}"}
            for prompt, good, bad in _BUILTIN)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def setup_demo(workspace: Path, data_path: Path | None, description: str | None = None) -> DemoInfo:
    """Create (or reopen) the demo workspace; return what it holds and the logins.

    Args:
        workspace: folder for ``preflab.sqlite`` (created when missing).
        data_path: the HH-RLHF sample, or None for the built-in items.
        description: what ``data_path`` is (kept as ``DemoInfo.source``); by default its path.
    """
    workspace.mkdir(parents=True, exist_ok=True)
    url = default_database_url(workspace)
    db = Database(url)
    try:
        with db.read() as s:
            existing = s.get(ProjectRow, DEMO_PROJECT)
            if existing is not None:
                items = collect.list_items(s, DEMO_PROJECT, limit=1)[1]
                return DemoInfo(url, DEMO_PROJECT, items,
                                "the items imported when this workspace was created",
                                list(DEMO_LOGINS), created=False)
        spec = ProjectCreate(name="HH harmless demo", kind="pairwise", scale=5, allow_tie=True,
                             allow_both_bad=True, overlap=2, overlap_share=0.3, gold_share=0.1)
        with db.write() as s:
            collect.create_project(s, spec)  # its id is DEMO_PROJECT
            project = collect.get_project(s, DEMO_PROJECT)
        is_builtin = data_path is None
        if data_path is not None:
            source = description or str(data_path)
        else:  # the same import path as the real sample, so audit and export work on it too
            data_path = _write_builtin_sample(workspace / "data")
            source = description or BUILTIN_DESCRIPTION
        transfer.import_file(db, project, "hh-rlhf", data_path)
        with db.write() as s:
            collect.apply_overlap(s, DEMO_PROJECT, spec.overlap, spec.overlap_share)
            n_gold = 3 if is_builtin else 12
            for item_id, judgment_id, value in collect.imported_answers(s, DEMO_PROJECT, n_gold):
                if value.get("preferred"):  # the audit does not score that judgment against it
                    collect.mark_gold(s, item_id, {"preferred": value["preferred"],
                                                   "derived_from": [judgment_id]})
            collect.add_guideline_version(s, DEMO_PROJECT, GUIDELINES, "admin")
            items = collect.list_items(s, DEMO_PROJECT, limit=1)[1]
        for username, password, role in DEMO_LOGINS:
            try:
                user = accounts.add_user(db, username, password, role=role)
            except ConflictError:
                continue
            with db.write() as s:
                collect.add_member(s, DEMO_PROJECT, user.user_id)
        return DemoInfo(url, DEMO_PROJECT, items, source, list(DEMO_LOGINS))
    finally:
        db.dispose()
