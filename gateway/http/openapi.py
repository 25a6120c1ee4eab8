"""``GET /openapi.json`` and ``llmops openapi``: the gateway's own API description (OpenAPI 3.1).

Generated from the route table, so it describes exactly the routes this configuration serves. Each
operation comes from two places:

- its ``Api``: the typed body or form the endpoint validates with, its query parameters, its replies;
- its ``Door``: the errors the door can answer before the handler runs (401 without a valid key, 403
  from the policy or the admin role, 429 from rate limits) and, for chain routes, the chain's (404 for
  an unknown model, 502/503/504 from upstreams).

Schemas are msgspec's JSON Schema (draft 2020-12, which OpenAPI 3.1 uses) of the same Structs; every
error is OpenAI's envelope (``ErrorBody``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from gateway.http import api_types as t

VERSION = "3.1.0"
_PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")
_REASONS = {
    202: "Accepted (no body)", 400: "Invalid request (the `param` names the field)",
    401: "Missing or invalid credentials",
    403: "Denied by the policy, a key grant or the admin role", 404: "No such object or model",
    409: "Conflicts with an existing object", 413: "Body larger than the configured limit",
    406: "Not acceptable (see the `Accept` header)", 415: "Unsupported media type",
    421: "Misdirected (the `Host` header names another server)",
    429: "Rate limit or quota reached (see `Retry-After`)", 502: "The upstream failed",
    503: "Unavailable (starting, shutting down, or no healthy upstream)", 504: "The upstream timed out",
}


@dataclass(frozen=True, slots=True)
class Api:
    """What one route's operation says besides its door: body, query, replies."""

    summary: str
    body: type | None = None  # a Struct the endpoint validates the JSON body with
    form: type | None = None  # a Struct describing a multipart/form-data body (``bytes`` fields are files)
    query: type | None = None  # a Struct whose fields are the query parameters
    reply: type | None = None  # the JSON reply's Struct; None: not JSON (see ``media``)
    status: int = 200
    stream: bool = False  # also answers text/event-stream (``"stream": true``)
    events: type | None = None  # answers text/event-stream whose events carry this Struct as JSON ``data``
    media: tuple[str, ...] = ()  # other media types of the success reply (a string or binary body)
    errors: tuple[int, ...] = ()  # statuses the handler itself answers, besides the door's
    others: dict[int, type | None] = field(default_factory=dict)  # replies with their own shape (None: no body)
    error: type = t.ErrorBody  # the error envelope (the door's ``errors`` renderer draws it)


@dataclass(frozen=True, slots=True)
class Entry:
    """One route as the description sees it (``DoorRoute`` gives these)."""

    path: str
    method: str
    api: Api
    auth: str  # the door's auth mode: key, admin, node, none
    asks_policy: bool
    limited: bool
    chain: bool


def describe(entries: Iterable[Entry], *, title: str, version: str, keys_required: bool) -> dict[str, Any]:
    """The OpenAPI document for ``entries``. ``keys_required``: "key" routes need a bearer key."""
    entries = list(entries)
    types: set[type] = {t.ErrorBody}
    for e in entries:
        types |= {x for x in (e.api.body, e.api.reply, e.api.error, e.api.events, *e.api.others.values())
                  if x is not None}
    ordered = sorted(types, key=lambda x: x.__name__)
    schemas, components = msgspec.json.schema_components(ordered, ref_template="#/components/schemas/{name}")
    ref = dict(zip(ordered, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for e in entries:
        path, names = _path(e.path)
        paths.setdefault(path, {})[e.method.lower()] = _operation(e, names, ref, keys_required)
    return {
        "openapi": VERSION,
        "info": {"title": title, "version": version,
                 "description": "OpenAI-compatible endpoints, Files and Vector Stores, the admin API and health, "
                                "as this gateway's configuration serves them."},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _path(path: str) -> tuple[str, list[str]]:
    """Starlette's ``/v1/models/{model:path}`` as OpenAPI's ``/v1/models/{model}``, with the names."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path), [m.group(1) for m in _PARAM.finditer(path)]


def _operation(e: Entry, names: list[str], ref: dict[type, dict[str, Any]], keys_required: bool) -> dict[str, Any]:
    api = e.api
    op: dict[str, Any] = {"summary": api.summary, "operationId": _operation_id(e)}
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names]
    if api.query is not None:
        params += _query_params(api.query)
    if params:
        op["parameters"] = params
    if api.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref[api.body]}}}
    elif api.form is not None:
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": _form(api.form)}}}
    authenticated = e.auth in ("admin", "node") or (e.auth == "key" and keys_required)
    if authenticated and e.auth != "node":
        op["security"] = [{"bearer": []}]
    op["responses"] = {**_success(api, ref), **_errors(e, bool(names), authenticated, ref)}
    return op


def _form(form: type) -> dict[str, Any]:
    """A multipart body inline, its ``bytes`` fields as files (``format: binary``), not base64 text."""
    _, components = msgspec.json.schema_components([form], ref_template="#/components/schemas/{name}")
    schema = dict(components[form.__name__])
    schema["properties"] = {name: {"type": "string", "format": "binary"} if p.get("contentEncoding") == "base64"
                            else _not_null(p) for name, p in schema["properties"].items()}
    return schema


def _operation_id(e: Entry) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", e.path).strip("_")
    return f"{e.method.lower()}_{words}"


def _query_params(query: type) -> list[dict[str, Any]]:
    (schema,), components = msgspec.json.schema_components([query], ref_template="#/components/schemas/{name}")
    struct = components[query.__name__]
    required = set(struct.get("required", ()))
    return [{"name": name, "in": "query", "required": name in required, "schema": _not_null(prop)}
            for name, prop in struct["properties"].items()]


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value: ``X | None`` is described as ``X``."""
    options = [o for o in prop.get("anyOf", ()) if o != {"type": "null"}]
    return options[0] if len(options) == 1 else {k: v for k, v in prop.items() if k != "default"}


def _success(api: Api, ref: dict[type, dict[str, Any]]) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if api.reply is not None:
        content["application/json"] = {"schema": ref[api.reply]}
    if api.stream:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    if api.events is not None:
        content["text/event-stream"] = {"schema": _event(ref[api.events])}
    for media in api.media:
        content[media] = {"schema": {"type": "string"}}
    out: dict[str, Any] = {str(api.status): {"description": "OK", "content": content}}
    for status, shape in api.others.items():
        out[str(status)] = {"description": _REASONS.get(status, "See the body")}
        if shape is not None:
            out[str(status)]["content"] = {"application/json": {"schema": ref[shape]}}
    return out


def _event(data: dict[str, Any]) -> dict[str, Any]:
    """One server-sent event whose ``data`` is a JSON document of schema ``data``."""
    return {"type": "object", "required": ["data"],
            "properties": {"event": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"},
                           "data": {"type": "string", "contentMediaType": "application/json",
                                    "contentSchema": data}}}


def _errors(e: Entry, has_path_params: bool, authenticated: bool,
            ref: dict[type, dict[str, Any]]) -> dict[str, Any]:
    api = e.api
    statuses = set(api.errors)
    if api.body is not None or api.form is not None:
        statuses |= {400, 413}
    if api.query is not None:
        statuses.add(400)
    if authenticated:
        statuses.add(401)
    if e.auth == "admin" or e.asks_policy or e.chain or (e.auth == "key" and authenticated):
        statuses.add(403)
    if has_path_params:
        statuses.add(404)
    if e.limited or e.chain:
        statuses.add(429)
    if e.chain:
        statuses |= {400, 404, 502, 503, 504}
    error = {"application/json": {"schema": ref[api.error]}}
    return {str(s): {"description": _REASONS[s], "content": error}
            for s in sorted(statuses) if s not in api.others}
