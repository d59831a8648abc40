"""preflab.collect: the annotation path as a library, between the app (server, CLI) and store.

One module per concept, each a set of functions over a unit of work (a SQLAlchemy
``Connection``, or a ``Session`` whose connection is used) that never commit:

- :mod:`~preflab.collect.accounts`: users and API token hashes;
- :mod:`~preflab.collect.projects`: projects (from a validated :class:`ProjectCreate`),
  members and guidelines;
- :mod:`~preflab.collect.items`: items, overlap, gold, progress;
- :mod:`~preflab.collect.tasks`: the queue (serve, reserve, show, skip, expire);
- :mod:`~preflab.collect.submissions`: submission → judgment value → stored judgment.

Every read returns one frozen, slotted row of :mod:`~preflab.collect.rows` (``User``,
``Project``, ``Guideline``, ``Item``, ``Assignment``, ``Task``, ``TaskView``, ``Judgment``,
``Progress``), built from prebuilt SQLAlchemy Core statements: pages, the JSON API, the CLI and
the hot task route share one API. The app (:mod:`preflab.server`) adds only HTTP and the unit
of work around each call, as datasette's ``Datasette`` object owns behaviour and its views
speak HTTP.
"""

from __future__ import annotations

from preflab.collect.accounts import (
    ROLES,
    create_api_token,
    create_user,
    get_user,
    get_user_by_token_hash,
    get_user_by_username,
    list_users,
    set_user_active,
)
from preflab.collect.items import (
    add_items,
    apply_overlap,
    get_item,
    imported_answers,
    list_assignments,
    list_items,
    mark_gold,
    project_progress,
)
from preflab.collect.projects import (
    DEFAULT_SPAN_LABELS,
    HELPSTEER_ATTRIBUTES,
    ProjectCreate,
    add_guideline_version,
    add_member,
    build_project,
    create_project,
    current_guideline,
    get_guideline,
    get_project,
    is_member,
    list_members,
    list_projects,
    member_guideline_version,
    project_for_user,
    set_member_guideline_version,
)
from preflab.collect.rows import (
    Assignment,
    Guideline,
    Item,
    Judgment,
    Progress,
    Project,
    Prompt,
    Response,
    Task,
    TaskView,
    User,
)
from preflab.collect.submissions import (
    FLAGS,
    MAX_SPANS,
    JudgmentCreate,
    SpanCreate,
    build_value,
    find_judgment_by_key,
    list_judgments,
    scale_labels,
    submit,
    submit_judgment,
)
from preflab.collect.tasks import (
    RESERVATION_SECONDS,
    expire_reservations,
    get_task,
    next_task,
    serve_task,
    show_task,
    skip_task,
)

__all__ = [
    "DEFAULT_SPAN_LABELS",
    "FLAGS",
    "HELPSTEER_ATTRIBUTES",
    "MAX_SPANS",
    "RESERVATION_SECONDS",
    "ROLES",
    "Assignment",
    "Guideline",
    "Item",
    "Judgment",
    "JudgmentCreate",
    "Progress",
    "Project",
    "ProjectCreate",
    "Prompt",
    "Response",
    "SpanCreate",
    "Task",
    "TaskView",
    "User",
    "add_guideline_version",
    "add_items",
    "add_member",
    "apply_overlap",
    "build_project",
    "build_value",
    "create_api_token",
    "create_project",
    "create_user",
    "current_guideline",
    "expire_reservations",
    "find_judgment_by_key",
    "get_guideline",
    "get_item",
    "get_project",
    "get_task",
    "get_user",
    "get_user_by_token_hash",
    "get_user_by_username",
    "imported_answers",
    "is_member",
    "list_assignments",
    "list_items",
    "list_judgments",
    "list_members",
    "list_projects",
    "list_users",
    "mark_gold",
    "member_guideline_version",
    "next_task",
    "project_for_user",
    "project_progress",
    "scale_labels",
    "serve_task",
    "set_member_guideline_version",
    "set_user_active",
    "show_task",
    "skip_task",
    "submit",
    "submit_judgment",
]
