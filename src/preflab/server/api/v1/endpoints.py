"""A project's model endpoints and live config (admin only; issue 12).

Keys never pass through here: an endpoint names the environment variable of the server that
holds its key (``api_key_env``), and the answers say only whether that variable is set.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from preflab import collect
from preflab.collect import EndpointCreate, EndpointUpdate, LiveConfig
from preflab.errors import ConflictError, InputError
from preflab.server.api.v1.schemas import EndpointPublic
from preflab.server.deps import AdminUser, DbDep, visible_project

router = APIRouter(tags=["endpoints"])

# Bodies are read as plain JSON and validated by preflab.collect (so that a field holding a key
# is refused with its own message and never echoed); the schema is still documented.
_Body = Annotated[dict[str, Any], Body()]


def _body_schema(model: type[Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


def _in_body(exc: InputError | ConflictError) -> InputError | ConflictError:
    """Return ``exc`` with its field as a request-body path (``body.base_url``)."""
    return type(exc)(exc.message, field="body" + (f".{exc.field}" if exc.field else ""))


@router.get("/projects/{project_id}/endpoints")
def list_endpoints(project_id: str, admin: AdminUser, db: DbDep) -> list[EndpointPublic]:
    """List the project's model endpoints, disabled ones too (admin)."""
    visible_project(db, admin, project_id)
    with db.connect() as conn:
        return [EndpointPublic.of(e) for e in collect.list_endpoints(conn, project_id)]


@router.post("/projects/{project_id}/endpoints", status_code=201,
             openapi_extra=_body_schema(EndpointCreate))
def add_endpoint(project_id: str, body: _Body, admin: AdminUser, db: DbDep) -> EndpointPublic:
    """Attach a model endpoint to the project (admin); 409 if the name is taken."""
    visible_project(db, admin, project_id)
    try:
        spec = collect.parse_endpoint_create(body)
        with db.transaction() as conn:
            return EndpointPublic.of(collect.add_endpoint(conn, project_id, spec))
    except (InputError, ConflictError) as exc:
        raise _in_body(exc) from None


@router.get("/projects/{project_id}/endpoints/{name}")
def read_endpoint(project_id: str, name: str, admin: AdminUser, db: DbDep) -> EndpointPublic:
    """Return one endpoint of the project (admin)."""
    visible_project(db, admin, project_id)
    with db.connect() as conn:
        return EndpointPublic.of(collect.get_endpoint(conn, project_id, name))


@router.patch("/projects/{project_id}/endpoints/{name}",
              openapi_extra=_body_schema(EndpointUpdate))
def update_endpoint(
    project_id: str, name: str, body: _Body, admin: AdminUser, db: DbDep
) -> EndpointPublic:
    """Change the fields given (admin): e.g. ``{"enabled": false}`` stops sampling it."""
    visible_project(db, admin, project_id)
    try:
        changes = collect.parse_endpoint_update(body)
    except InputError as exc:
        raise _in_body(exc) from None
    with db.transaction() as conn:
        return EndpointPublic.of(collect.update_endpoint(conn, project_id, name, changes))


@router.delete("/projects/{project_id}/endpoints/{name}", status_code=204)
def remove_endpoint(project_id: str, name: str, admin: AdminUser, db: DbDep) -> Response:
    """Detach an endpoint (admin); answers already sampled from it keep their model."""
    visible_project(db, admin, project_id)
    with db.transaction() as conn:
        collect.remove_endpoint(conn, project_id, name)
    return Response(status_code=204)


@router.get("/projects/{project_id}/live")
def read_live_config(project_id: str, admin: AdminUser, db: DbDep) -> LiveConfig:
    """Return the project's live config (the defaults if never set) (admin)."""
    return collect.get_live_config(visible_project(db, admin, project_id))


@router.put("/projects/{project_id}/live", openapi_extra=_body_schema(LiveConfig))
def set_live_config(project_id: str, body: _Body, admin: AdminUser, db: DbDep) -> LiveConfig:
    """Replace the project's live config (admin); fields left out take their defaults."""
    visible_project(db, admin, project_id)
    try:
        cfg = collect.parse_live_config(body)
    except InputError as exc:
        raise _in_body(exc) from None
    with db.transaction() as conn:
        return collect.get_live_config(collect.set_live_config(conn, project_id, cfg))
