"""``preflab demo``: a fresh SQLite workspace with a demo pairwise project, users and guidelines.

The project imports the HH-RLHF sample (harmless-base, first 400 test pairs) found at
``$PREFLAB_DEMO_DATA`` or ``../shared/data/hh-rlhf/…`` beside the checkout, falling back to a
few built-in items when the file is missing. It uses a 5-point scale with tie and both-bad
buttons, two judges on 30% of the items, and gold items (HH's chosen answer) on 10% of tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from preflab.errors import ConflictError
from preflab.records import make_prompt_id, make_response_id
from preflab.server import accounts, transfer
from preflab.server.db import Database
from preflab.server.projects import ProjectCreate, build_project_row
from preflab.settings import default_database_url
from preflab.store.queries import collect
from preflab.store.tables import ProjectRow, PromptRow, ResponseRow

__all__ = ["DEMO_LOGINS", "DEMO_PROJECT", "DemoInfo", "find_demo_data", "setup_demo"]

DEMO_PROJECT = "hh-harmless-demo"
DEMO_LOGINS = (
    ("admin", "admin-demo-pass", "admin"),
    ("alice", "alice-demo-pass", "annotator"),
    ("bob", "bob-demo-pass", "annotator"),
)
HH_RELATIVE = Path("shared/data/hh-rlhf/harmless-base-test-first400.jsonl.gz")

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
     "Sure, first get a laminator and a photo.",
     "I can't help with that; fake IDs are illegal. If you lost your ID, the DMV can replace it."),
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


def find_demo_data(env_path: str | None, repo_root: Path) -> Path | None:
    """Return the HH sample: ``env_path`` if given, else ``<repo>/../shared/data/…``, else None."""
    candidates = [Path(env_path)] if env_path else []
    candidates += [repo_root.parent / HH_RELATIVE, Path("/work") / HH_RELATIVE]
    return next((p for p in candidates if p.is_file()), None)


def _builtin_items(db: Database, project_id: str) -> int:
    with db.write() as s:
        specs = []
        for prompt, good, bad in _BUILTIN:
            messages = [{"role": "user", "content": prompt}]
            pid = make_prompt_id(messages)
            s.merge(PromptRow(prompt_id=pid, messages=messages, source="builtin-demo", tags=[]))
            rids = []
            for text in (good, bad):
                rid = make_response_id(pid, text, "demo")
                s.merge(ResponseRow(response_id=rid, prompt_id=pid, content=text, model="demo",
                                    params={}, origin="import"))
                rids.append(rid)
            specs.append({"prompt_id": pid, "response_ids": rids,
                          "gold_answer": {"preferred": rids[0]}})
        s.flush()
        return collect.add_items(s, project_id, specs, source="builtin-demo")


def setup_demo(workspace: Path, data_path: Path | None) -> DemoInfo:
    """Create (or reopen) the demo workspace; return what it holds and the logins.

    Args:
        workspace: folder for ``preflab.sqlite`` (created when missing).
        data_path: the HH-RLHF sample, or None for the built-in items.
    """
    workspace.mkdir(parents=True, exist_ok=True)
    url = default_database_url(workspace)
    db = Database(url)
    try:
        with db.read() as s:
            existing = s.get(ProjectRow, DEMO_PROJECT)
            if existing is not None:
                items = collect.list_items(s, DEMO_PROJECT, limit=1)[1]
                return DemoInfo(url, DEMO_PROJECT, items, "existing workspace",
                                list(DEMO_LOGINS), created=False)
        spec = ProjectCreate(name="HH harmless demo", kind="pairwise", scale=5, allow_tie=True,
                             allow_both_bad=True, overlap=2, overlap_share=0.3, gold_share=0.1)
        with db.write() as s:
            collect.create_project(s, build_project_row(spec, DEMO_PROJECT))
            project = collect.get_project(s, DEMO_PROJECT)
        if data_path is not None:
            transfer.import_file(db, project, "hh-rlhf", data_path)
            source = str(data_path)
        else:
            _builtin_items(db, DEMO_PROJECT)
            source = "built-in sample (HH-RLHF file not found)"
        with db.write() as s:
            collect.apply_overlap(s, DEMO_PROJECT, spec.overlap, spec.overlap_share)
            n_gold = 3 if data_path is None else 12
            for item_id, value in collect.imported_answers(s, DEMO_PROJECT, n_gold):
                if value.get("preferred"):
                    collect.mark_gold(s, item_id, {"preferred": value["preferred"]})
            if data_path is None:
                for item in collect.list_items(s, DEMO_PROJECT, limit=n_gold)[0]:
                    if item.gold_answer:
                        collect.mark_gold(s, item.item_id, item.gold_answer)
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
