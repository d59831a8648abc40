"""Model endpoints attached to a project for live collection (issue 12).

An admin attaches OpenAI-compatible endpoints to a project (base URL, model, revision tag,
sampling parameters, concurrency, timeout); live chats and arena battles sample from the
enabled ones. The API key is never stored: ``api_key_env`` names the server's environment
variable that holds it, and a field that looks like a key (``api_key``, ``key``, ``token``,
``secret`` …, at the top level or in ``params``) is refused. Validation reuses
:class:`preflab.generate.EndpointConfig` (:func:`endpoint_config` builds the streaming config a
live turn calls). Functions take a ``Connection`` (or a ``Session``) and never commit.

A removed endpoint leaves old conversations intact: every live candidate copies its endpoint
name, model and revision.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from preflab.collect.core_tables import PROJECT_ENDPOINTS as _E
from preflab.collect.projects import get_project
from preflab.collect.rows import ProjectEndpoint, columns
from preflab.errors import ConflictError, InputError, NotFoundError, field_path, shorten
from preflab.generate.endpoints import EndpointConfig
from preflab.store.queries.scope import connection_of
from preflab.store.tables import utcnow

__all__ = [
    "ENDPOINT_NAME_PATTERN",
    "ENV_NAME_PATTERN",
    "NO_KEYS_MESSAGE",
    "EndpointCreate",
    "EndpointUpdate",
    "KeyStatus",
    "add_endpoint",
    "api_key_status",
    "endpoint_config",
    "get_endpoint",
    "list_endpoints",
    "parse_endpoint_create",
    "parse_endpoint_update",
    "remove_endpoint",
    "update_endpoint",
]

ENDPOINT_NAME_PATTERN = r"[A-Za-z0-9._:-]+"
ENV_NAME_PATTERN = r"[A-Z_][A-Z0-9_]*"
NO_KEYS_MESSAGE = (
    "give the name of an environment variable in api_key_env; preflab never stores keys"
)
KeyStatus = Literal["none", "set", "not set"]

# Field names that would hold a credential (compared lowercased, without "-" and "_").
_SECRET_NAMES = frozenset({
    "apikey", "key", "token", "secret", "password", "authorization", "accesstoken",
    "authtoken", "bearer", "bearertoken", "secretkey", "apitoken", "credentials",
})
# Request fields the live path sets itself; a sampling parameter may not override them.
_RESERVED_PARAMS = frozenset({"model", "messages", "stream", "stream_options", "n"})
_NAME_RE = re.compile(ENDPOINT_NAME_PATTERN)
_ENV_RE = re.compile(ENV_NAME_PATTERN)
# Numeric sampling parameters: (low, high, integer?) inclusive bounds from the OpenAI API.
_NUMERIC_PARAMS: dict[str, tuple[float, float, bool]] = {
    "temperature": (0.0, 2.0, False),
    "top_p": (0.0, 1.0, False),
    "max_tokens": (1, 1_000_000, True),
    "max_completion_tokens": (1, 1_000_000, True),
    "presence_penalty": (-2.0, 2.0, False),
    "frequency_penalty": (-2.0, 2.0, False),
    "seed": (-(2**63), 2**63 - 1, True),
    "top_k": (-1, 1_000_000, True),
}


def _is_secret_name(name: str) -> bool:
    return name.lower().replace("-", "").replace("_", "") in _SECRET_NAMES


def _refuse_secret_fields(data: Any) -> None:
    """Raise InputError (field = the key's path) for a field that looks like a credential."""
    if not isinstance(data, Mapping):
        return
    for k in data:
        if isinstance(k, str) and _is_secret_name(k):
            raise InputError(NO_KEYS_MESSAGE, field=k)
    params = data.get("params")
    if isinstance(params, Mapping):
        for k in params:
            if isinstance(k, str) and _is_secret_name(k):
                raise InputError(NO_KEYS_MESSAGE, field=f"params.{k}")


def _check_name(v: str) -> str:
    if not _NAME_RE.fullmatch(v):
        raise ValueError(
            f"name may hold only letters, digits and . _ : - (got {v!r}); e.g. 'llama-3-8b'"
        )
    return v


def _check_base_url(v: str) -> str:
    v = v.strip()
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in v:
        raise ValueError(
            "base_url must be an http:// or https:// URL with a host, e.g. "
            "http://127.0.0.1:8000/v1"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "base_url must not carry a user or password; " + NO_KEYS_MESSAGE
        )
    if parts.query or parts.fragment:
        raise ValueError(
            "base_url must not carry a query string or fragment (sampling parameters go in "
            "params; " + NO_KEYS_MESSAGE + ")"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        raise ValueError("base_url has a port that is not a number in 0..65535") from None
    return v.rstrip("/")


def _check_model(v: str) -> str:
    if not v.strip():
        raise ValueError("model must not be blank; give the model id the server expects")
    return v.strip()


def _check_revision(v: str | None) -> str | None:
    if v is None or not v.strip():
        return None
    return v.strip()


def _check_env(v: str | None) -> str | None:
    if v is None or not v.strip():
        return None
    if not _ENV_RE.fullmatch(v.strip()) or len(v.strip()) > 200:
        # The value is not echoed: someone may have pasted the key itself here.
        raise ValueError(
            "api_key_env must be the NAME of an environment variable of the server, upper case "
            "letters, digits and _ (e.g. OPENAI_API_KEY), not the key itself; preflab never "
            "stores keys"
        )
    return v.strip()


def _param_problem(k: str, value: Any) -> str | None:  # Any: a JSON value
    """Return what is wrong with one sampling parameter, or None."""
    if k in _RESERVED_PARAMS:
        return f"params may not set {k!r}: the live path sets it for every request"
    bounds = _NUMERIC_PARAMS.get(k)
    if bounds is None:
        return None
    low, high, integral = bounds
    ok_type = isinstance(value, int) if integral else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) \
            or not low <= value <= high:
        kind = "an integer" if integral else "a number"
        return f"params.{k} must be {kind} in {low:g}..{high:g}, got {value!r}"
    return None


def _check_params(v: dict[str, Any]) -> dict[str, Any]:
    for k, value in v.items():
        problem = _param_problem(k, value)
        if problem:
            raise ValueError(problem)
    return v


_Url = Annotated[str, AfterValidator(_check_base_url)]
_Model = Annotated[str, AfterValidator(_check_model)]
_Revision = Annotated[str | None, AfterValidator(_check_revision)]
_Env = Annotated[str | None, AfterValidator(_check_env)]
_Params = Annotated[dict[str, Any], AfterValidator(_check_params)]


class EndpointCreate(BaseModel):
    """A new endpoint of a project: an OpenAI-compatible server and the model behind it.

    The key is given as the NAME of an environment variable of the server (``api_key_env``);
    a field holding a key is refused.
    """

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, AfterValidator(_check_name)] = Field(
        min_length=1, max_length=200, description="Unique in the project; letters, digits and "
        ". _ : -")
    base_url: _Url = Field(description="Base URL of the OpenAI-compatible API, e.g. "
                           "http://127.0.0.1:8000/v1")
    model: _Model = Field(min_length=1, max_length=200,
                          description="Model id sent in each request.")
    revision: _Revision = Field(default=None, max_length=200,
                                description="Checkpoint or revision tag, stored on responses.")
    params: _Params = Field(default_factory=dict,
                            description="Sampling parameters (temperature, max_tokens…).")
    concurrency: int = Field(default=4, ge=1, le=256,
                             description="Requests in flight per server process.")
    timeout: float = Field(default=60.0, gt=0, le=3600, description="Seconds per attempt.")
    api_key_env: _Env = Field(default=None, description="Name of the environment variable "
                              "holding the key (none for keyless local servers).")
    enabled: bool = Field(default=True, description="Disabled endpoints are not sampled.")

    @model_validator(mode="before")
    @classmethod
    def _no_keys(cls, data: Any) -> Any:  # Any: the raw request body
        _refuse_secret_fields(data)
        return data


class EndpointUpdate(BaseModel):
    """Changes to an endpoint: only the fields given change (the name cannot).

    ``revision`` and ``api_key_env`` may be set to null to clear them; ``params`` replaces the
    stored parameters as a whole.
    """

    model_config = ConfigDict(extra="forbid")

    base_url: _Url | None = None
    model: _Model | None = Field(default=None, min_length=1, max_length=200)
    revision: _Revision = Field(default=None, max_length=200)
    params: _Params | None = None
    concurrency: int | None = Field(default=None, ge=1, le=256)
    timeout: float | None = Field(default=None, gt=0, le=3600)
    api_key_env: _Env = None
    enabled: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_keys(cls, data: Any) -> Any:  # Any: the raw request body
        _refuse_secret_fields(data)
        if isinstance(data, Mapping) and "name" in data:
            raise ValueError("name cannot be changed; remove the endpoint and add it again")
        return data

    @model_validator(mode="after")
    def _not_null(self) -> EndpointUpdate:
        for f in ("base_url", "model", "params", "concurrency", "timeout", "enabled"):
            if f in self.model_fields_set and getattr(self, f) is None:
                raise ValueError(f"{f} cannot be null")
        return self


M = TypeVar("M", bound=BaseModel)


# Fields whose refused value is safe to echo in a message (never a URL, a name or params,
# where someone may have pasted a key).
_ECHOED = frozenset({"concurrency", "timeout", "enabled"})


def _parse(model: type[M], data: Any) -> M:  # Any: a request body or form, checked here
    _refuse_secret_fields(data)
    if isinstance(data, Mapping):
        if model is EndpointUpdate and "name" in data:
            raise InputError("name cannot be changed; remove the endpoint and add it again",
                             field="name")
        params = data.get("params")
        if isinstance(params, Mapping):
            for k, value in params.items():
                problem = _param_problem(str(k), value)
                if problem:
                    raise InputError(problem, field=f"params.{k}")
        if model is EndpointUpdate:
            for f in ("base_url", "model", "params", "concurrency", "timeout", "enabled"):
                if f in data and data[f] is None:
                    raise InputError(f"{f} cannot be null; leave it out to keep it", field=f)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = field_path(err["loc"]) or None
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown field; {model.__name__} takes {', '.join(model.model_fields)}"
        elif err["loc"] and err["loc"][0] in _ECHOED:
            msg = f"{msg}, got {shorten(err.get('input'))}"
        # No ``value`` attribute: the input may be a pasted key.
        raise InputError(msg, field=loc) from None


def parse_endpoint_create(data: Any) -> EndpointCreate:  # Any: a request body or form
    """Return a validated :class:`EndpointCreate` from plain data.

    Raises:
        InputError: a bad field, named (``base_url``, ``params.temperature`` …); a field that
            looks like a key (the value is never echoed).

    >>> parse_endpoint_create({"name": "m1", "base_url": "http://127.0.0.1:8000/v1/",
    ...                        "model": "tiny"}).base_url
    'http://127.0.0.1:8000/v1'
    """
    return _parse(EndpointCreate, data)


def parse_endpoint_update(data: Any) -> EndpointUpdate:  # Any: a request body or form
    """Return a validated :class:`EndpointUpdate` from plain data (see :func:`parse_endpoint_create`).

    Raises:
        InputError: a bad field, named.
    """
    return _parse(EndpointUpdate, data)


_ENDPOINT_COLUMNS = columns(ProjectEndpoint, _E)
_ONE = select(*_ENDPOINT_COLUMNS).where(
    _E.c.project_id == bindparam("project_id"), _E.c.name == bindparam("name"))
_ALL = select(*_ENDPOINT_COLUMNS).where(
    _E.c.project_id == bindparam("project_id")).order_by(_E.c.name)
_ENABLED = _ALL.where(_E.c.enabled.is_(True))


def endpoint_config(ep: ProjectEndpoint) -> EndpointConfig:
    """Return the streaming :class:`~preflab.generate.EndpointConfig` of a project endpoint.

    The key is not read here: ``EndpointConfig.api_key()`` reads ``api_key_env`` when the
    client is made.

    Raises:
        InputError: a stored row that the generate layer refuses (named field).
    """
    try:
        return EndpointConfig(
            name=ep.name, base_url=ep.base_url, model=ep.model, revision=ep.revision,
            api_key_env=ep.api_key_env, params=dict(ep.params or {}),
            concurrency=ep.concurrency, timeout=ep.timeout, stream=True,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(str(err["msg"]).removeprefix("Value error, "),
                         field=field_path(err["loc"]) or None) from None


def _checked(ep: ProjectEndpoint) -> ProjectEndpoint:
    endpoint_config(ep)  # the generate layer's own checks, before anything is written
    return ep


def _not_found(project_id: str, name: str) -> NotFoundError:
    return NotFoundError(
        f"project {project_id!r} has no endpoint {name!r}; "
        f"`preflab projects endpoints list {project_id}` shows them", field="name")


def get_endpoint(session: Session | Connection, project_id: str, name: str) -> ProjectEndpoint:
    """Return one endpoint of a project.

    Raises:
        NotFoundError: no endpoint of that name in the project.
    """
    row = connection_of(session).execute(_ONE, {"project_id": project_id, "name": name}).first()
    if row is None:
        raise _not_found(project_id, name)
    return ProjectEndpoint(*row)


def list_endpoints(
    session: Session | Connection, project_id: str, *, enabled_only: bool = False
) -> list[ProjectEndpoint]:
    """Return the project's endpoints ordered by name (only the enabled ones if asked)."""
    stmt = _ENABLED if enabled_only else _ALL
    return [ProjectEndpoint(*r)
            for r in connection_of(session).execute(stmt, {"project_id": project_id})]


def add_endpoint(
    session: Session | Connection, project_id: str, spec: EndpointCreate
) -> ProjectEndpoint:
    """Attach a validated endpoint to a project; return it.

    Raises:
        NotFoundError: no such project.
        ConflictError: the project has an endpoint of that name.
    """
    conn = connection_of(session)
    get_project(conn, project_id)
    if conn.execute(_ONE, {"project_id": project_id, "name": spec.name}).first() is not None:
        raise ConflictError(
            f"project {project_id!r} already has an endpoint named {spec.name!r}; pick another "
            f"name or update that one", field="name")
    ep = _checked(ProjectEndpoint(
        project_id=project_id, name=spec.name, base_url=spec.base_url, model=spec.model,
        revision=spec.revision, params=dict(spec.params), concurrency=spec.concurrency,
        timeout=spec.timeout, api_key_env=spec.api_key_env, enabled=spec.enabled,
        created_at=utcnow(),
    ))
    conn.execute(insert(_E).values({f: getattr(ep, f) for f in ProjectEndpoint.__slots__}))
    return ep


def update_endpoint(
    session: Session | Connection, project_id: str, name: str, changes: EndpointUpdate
) -> ProjectEndpoint:
    """Apply the fields set in ``changes`` to an endpoint; return the endpoint as stored.

    Raises:
        NotFoundError: no such endpoint.
    """
    conn = connection_of(session)
    current = get_endpoint(conn, project_id, name)
    values = {f: getattr(changes, f) for f in changes.model_fields_set}
    if not values:
        return current
    fields = {f: getattr(current, f) for f in ProjectEndpoint.__slots__}
    ep = _checked(ProjectEndpoint(**{**fields, **values}))
    conn.execute(update(_E).where(_E.c.project_id == project_id, _E.c.name == name)
                 .values(values))
    return ep


def remove_endpoint(session: Session | Connection, project_id: str, name: str) -> None:
    """Detach an endpoint from a project (candidates already sampled from it keep their model).

    Raises:
        NotFoundError: no such endpoint.
    """
    conn = connection_of(session)
    result = conn.execute(delete(_E).where(_E.c.project_id == project_id, _E.c.name == name))
    if result.rowcount == 0:
        raise _not_found(project_id, name)


def api_key_status(ep: ProjectEndpoint, environ: Mapping[str, str] | None = None) -> KeyStatus:
    """Return whether the endpoint's key variable is set in this process: "none" (no key
    needed), "set" or "not set". Never the value.

    Args:
        ep: the endpoint.
        environ: the environment to look in (default: this process's, as
            ``EndpointConfig.api_key`` reads it).
    """
    if not ep.api_key_env:
        return "none"
    env = os.environ if environ is None else environ
    return "set" if env.get(ep.api_key_env) else "not set"
