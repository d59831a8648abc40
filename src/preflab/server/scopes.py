"""Which token scopes each route accepts: the one table, checked on every token request.

A request authenticated by an API token reaches a route only if the token holds one of the
scopes the route accepts here (and, for a token bound to a project, only routes of that
project: see :mod:`preflab.server.deps`). Sessions (the pages' cookie) are not scoped: the
user's role decides, as it always did. Role checks still apply on top of scopes: an export
token of an annotator does not open admin routes.

A route missing from :data:`ROUTE_SCOPES` accepts only ``admin`` tokens (fail closed);
``tests/server/test_access.py`` fails when the table and the app's routes differ, and walks
every route with a token of each scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from preflab.collect.accounts import Scope

__all__ = ["ANY", "ROUTE_SCOPES", "app_route_scopes", "iter_routes"]

A, N, F, E = Scope.ADMIN, Scope.ANNOTATE, Scope.FEEDBACK, Scope.EXPORT

ANY = frozenset(Scope)  # any valid token (public routes, the caller's own account)
WORK = frozenset({N, A})  # an annotator's own work
READ = frozenset({E, A})  # read-only data for admins: progress, items, judgments, exports
WORK_READ = frozenset({N, E, A})
FEEDBACK = frozenset({F, A})
ADMIN = frozenset({A})

ROUTE_SCOPES: dict[tuple[str, str], frozenset[Scope]] = {
    # pages
    ("GET", "/login"): ANY,
    ("POST", "/login"): ANY,
    ("POST", "/logout"): ANY,
    ("GET", "/"): ANY,
    ("GET", "/account"): ANY,
    ("POST", "/account/password"): ANY,
    ("POST", "/account/sessions/{session_id}/revoke"): ANY,
    ("POST", "/account/tokens"): ANY,
    ("POST", "/account/tokens/{token_id}/revoke"): ANY,
    ("GET", "/projects/{project_id}"): WORK,
    ("GET", "/projects/{project_id}/work"): WORK,
    ("GET", "/projects/{project_id}/guidelines"): WORK,
    ("GET", "/projects/{project_id}/mine"): WORK,
    ("GET", "/tasks/{assignment_id}"): WORK,
    ("POST", "/tasks/{assignment_id}"): WORK,
    ("POST", "/tasks/{assignment_id}/skip"): WORK,
    ("GET", "/projects/{project_id}/leaderboard"): WORK_READ,
    ("GET", "/projects/{project_id}/live"): WORK,
    ("POST", "/projects/{project_id}/live"): WORK,
    ("GET", "/live/{conversation_id}"): WORK,
    ("GET", "/live/{conversation_id}/current"): WORK,
    ("POST", "/live/{conversation_id}/turns/{turn}/submit"): WORK,
    ("POST", "/live/{conversation_id}/turns/{turn}/regenerate"): WORK,
    ("POST", "/live/{conversation_id}/candidates/{slot}/retry"): WORK,
    ("POST", "/live/{conversation_id}/messages"): WORK,
    ("POST", "/live/{conversation_id}/vote"): WORK,
    ("POST", "/live/{conversation_id}/finish"): WORK,
    ("GET", "/admin"): ADMIN,
    ("GET", "/admin/audit-log"): ADMIN,
    ("GET", "/admin/projects/new"): ADMIN,
    ("POST", "/admin/projects"): ADMIN,
    ("GET", "/admin/projects/{project_id}"): ADMIN,
    ("POST", "/admin/projects/{project_id}/members"): ADMIN,
    ("GET", "/admin/projects/{project_id}/guidelines"): ADMIN,
    ("POST", "/admin/projects/{project_id}/guidelines"): ADMIN,
    ("GET", "/admin/projects/{project_id}/items"): ADMIN,
    ("GET", "/admin/projects/{project_id}/items/{item_id}"): ADMIN,
    ("GET", "/admin/projects/{project_id}/judgments"): ADMIN,
    ("GET", "/admin/projects/{project_id}/export/judgments.jsonl"): READ,
    ("GET", "/admin/projects/{project_id}/export/{fmt}"): READ,
    ("GET", "/admin/projects/{project_id}/import"): ADMIN,
    ("POST", "/admin/projects/{project_id}/import"): ADMIN,
    ("GET", "/admin/users"): ADMIN,
    ("POST", "/admin/users"): ADMIN,
    ("POST", "/admin/users/{username}/disable"): ADMIN,
    ("POST", "/admin/users/{username}/enable"): ADMIN,
    ("POST", "/admin/users/{username}/token"): ADMIN,
    ("POST", "/admin/projects/{project_id}/endpoints"): ADMIN,
    ("GET", "/admin/projects/{project_id}/endpoints/{name}"): ADMIN,
    ("POST", "/admin/projects/{project_id}/endpoints/{name}"): ADMIN,
    ("POST", "/admin/projects/{project_id}/endpoints/{name}/disable"): ADMIN,
    ("POST", "/admin/projects/{project_id}/endpoints/{name}/enable"): ADMIN,
    ("POST", "/admin/projects/{project_id}/endpoints/{name}/remove"): ADMIN,
    ("POST", "/admin/projects/{project_id}/live"): ADMIN,
    # API: accounts
    ("POST", "/api/v1/tokens"): ANY,
    ("GET", "/api/v1/me"): ANY,
    ("POST", "/api/v1/me/password"): ANY,
    ("GET", "/api/v1/me/sessions"): ANY,
    ("DELETE", "/api/v1/me/sessions/{session_id}"): ANY,
    ("GET", "/api/v1/me/tokens"): ANY,
    ("DELETE", "/api/v1/me/tokens/{token_id}"): ANY,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users/{username}/disable"): ADMIN,
    ("POST", "/api/v1/users/{username}/enable"): ADMIN,
    ("GET", "/api/v1/users/{username}/tokens"): ADMIN,
    ("POST", "/api/v1/users/{username}/tokens"): ADMIN,
    ("GET", "/api/v1/audit-log"): ADMIN,
    # API: projects
    ("GET", "/api/v1/projects"): ANY,
    ("POST", "/api/v1/projects"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}"): ANY,
    ("GET", "/api/v1/projects/{project_id}/members"): ADMIN,
    ("POST", "/api/v1/projects/{project_id}/members"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/guidelines"): WORK_READ,
    ("POST", "/api/v1/projects/{project_id}/guidelines"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/progress"): READ,
    ("GET", "/api/v1/projects/{project_id}/items"): READ,
    ("GET", "/api/v1/projects/{project_id}/items/{item_id}/assignments"): READ,
    ("GET", "/api/v1/projects/{project_id}/judgments"): WORK_READ,
    ("POST", "/api/v1/projects/{project_id}/feedback"): FEEDBACK,
    # API: the queue
    ("POST", "/api/v1/projects/{project_id}/tasks/next"): WORK,
    ("GET", "/api/v1/tasks/{assignment_id}"): WORK,
    ("POST", "/api/v1/tasks/{assignment_id}/judgments"): WORK,
    ("POST", "/api/v1/tasks/{assignment_id}/skip"): WORK,
    # API: model endpoints, live config, the arena
    ("POST", "/api/v1/projects/{project_id}/endpoints"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/endpoints"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/endpoints/{name}"): ADMIN,
    ("PATCH", "/api/v1/projects/{project_id}/endpoints/{name}"): ADMIN,
    ("DELETE", "/api/v1/projects/{project_id}/endpoints/{name}"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/live"): ADMIN,
    ("PUT", "/api/v1/projects/{project_id}/live"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/leaderboard"): WORK_READ,
    ("GET", "/api/v1/projects/{project_id}/battles"): READ,
    # gold items (set by admins; their accuracy is read-only data)
    ("POST", "/admin/projects/{project_id}/gold/threshold"): ADMIN,
    ("POST", "/admin/projects/{project_id}/gold/upload"): ADMIN,
    ("POST", "/admin/projects/{project_id}/items/{item_id}/gold"): ADMIN,
    ("POST", "/admin/projects/{project_id}/items/{item_id}/gold/clear"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/gold"): READ,
    ("GET", "/api/v1/projects/{project_id}/gold/accuracy"): READ,
    ("POST", "/api/v1/projects/{project_id}/gold"): ADMIN,
    ("POST", "/api/v1/projects/{project_id}/gold/file"): ADMIN,
    ("PUT", "/api/v1/projects/{project_id}/gold/threshold"): ADMIN,
    ("DELETE", "/api/v1/projects/{project_id}/gold/threshold"): ADMIN,
    ("DELETE", "/api/v1/projects/{project_id}/gold/items/{item_id}"): ADMIN,
    # API: live chats and battles
    ("POST", "/api/v1/projects/{project_id}/conversations"): WORK,
    ("GET", "/api/v1/projects/{project_id}/conversations"): WORK,
    ("GET", "/api/v1/conversations/{conversation_id}"): WORK,
    ("GET", "/api/v1/conversations/{conversation_id}/events"): WORK,
    ("POST", "/api/v1/conversations/{conversation_id}/turns/{turn}/submit"): WORK,
    ("POST", "/api/v1/conversations/{conversation_id}/turns/{turn}/regenerate"): WORK,
    ("POST", "/api/v1/conversations/{conversation_id}/candidates/{slot}/retry"): WORK,
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): WORK,
    ("POST", "/api/v1/conversations/{conversation_id}/vote"): WORK,
    ("POST", "/api/v1/conversations/{conversation_id}/reveal"): WORK,
    ("POST", "/api/v1/conversations/{conversation_id}/finish"): WORK,
}


def iter_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[Any, str]]:
    """Yield ``(route, full path)`` for every route, through nested included routers."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps includes nested
        if inner is not None:
            yield from iter_routes(inner.routes, prefix + route.include_context.prefix)
        else:
            yield route, prefix + getattr(route, "path", "")


def app_route_scopes(app: Any) -> dict[tuple[str, Any], tuple[frozenset[Scope], str]]:
    """Return ``{(method, endpoint function): (accepted scopes, path)}`` for the app's routes.

    The request's matched route gives its endpoint, not its full path (routers nest), hence
    the key. Routes absent from :data:`ROUTE_SCOPES` accept only ``admin`` tokens.
    """
    out: dict[tuple[str, Any], tuple[frozenset[Scope], str]] = {}
    for route, path in iter_routes(app.routes):
        endpoint = getattr(route, "endpoint", None)
        for method in getattr(route, "methods", None) or ():
            key = ("GET" if method == "HEAD" else method, path)
            out[(method, endpoint)] = (ROUTE_SCOPES.get(key, ADMIN), path)
    return out
