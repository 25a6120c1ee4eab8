"""Tool call (name + JSON arguments) → ``Job`` for a node, and what the call asks to reach."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from executors.spec import DEFAULT_TENANT, Grants, Job, Limits
from gateway.kernel.context import RequestContext
from middleware.tools.catalog import ToolEntry

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class BadArguments(ValueError):
    """The model's arguments do not fit the tool; fed back to the model as a tool error."""


def parse_arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError as exc:
        raise BadArguments(f"arguments are not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadArguments("arguments must be a JSON object")
    return value


def requested_egress(entry: ToolEntry, args: Mapping[str, Any]) -> list[str]:
    """Hosts the call would reach: the URL's host for ``http_request``, else the tool's declared hosts."""
    if entry.spec.runtime == "http":
        host = urlsplit(str(args.get("url", ""))).hostname
        return [host] if host else []
    return list(entry.spec.egress)


def dataset_of(entry: ToolEntry, args: Mapping[str, Any]) -> str | None:
    named = args.get("dataset")
    return named if isinstance(named, str) and named else entry.options.dataset


def limits_of(entry: ToolEntry) -> Limits:
    return Limits(**entry.options.limits.model_dump(exclude_none=True))


def job_tenant(ctx: RequestContext) -> str:
    """The tenant a job runs for (its workspaces live under it on the node): the caller's, or "default"."""
    return ctx.principal.tenant if ctx.principal is not None and ctx.principal.tenant else DEFAULT_TENANT


def job_id(request_id: str, step: int, index: int) -> str:
    return _ID_UNSAFE.sub("_", f"{request_id}-s{step}-c{index}")[:120]


def build_job(
    entry: ToolEntry, args: Mapping[str, Any], grants: Grants, *, job_id: str, workspace: str | None,
    tenant: str = DEFAULT_TENANT,
) -> Job:
    """Raises ``BadArguments`` when a required argument is missing or of the wrong type."""
    spec = entry.spec
    common: dict[str, Any] = {
        "id": job_id, "tool": spec.name, "limits": limits_of(entry), "grants": grants,
        "workspace": workspace, "driver": entry.options.driver, "tenant": tenant,
    }
    if spec.runtime == "python":
        return Job(runtime="python", code=_text(args, "code"), stdin=_text(args, "stdin", ""), **common)
    if spec.runtime == "code":
        return Job(runtime="code", code=_text(args, "code"), **common)
    if spec.runtime == "shell":
        return Job(runtime="shell", code=_text(args, "script"), stdin=_text(args, "stdin", ""), **common)
    stdin = json.dumps(dict(args))
    if spec.runtime == "http":
        _text(args, "url")
        return Job(runtime="http", stdin=stdin, **common)
    return Job(runtime=spec.runtime, argv=spec.argv, image=spec.image, module=spec.module, stdin=stdin, **common)


def _text(args: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = args.get(key, default)
    if not isinstance(value, str):
        raise BadArguments(f"argument {key!r} must be a string" if key in args else f"argument {key!r} is required")
    return value
