"""Per-request state that flows through the filter chain, and the reply that flows back."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast

Route = Literal[
    "chat",
    "completions",
    "embeddings",
    "images",
    "speech",
    "transcriptions",
    "messages",
]

T = TypeVar("T")
DEFAULT_TENANT = "default"


class StateKey(Generic[T]):
    """A typed slot in ``RequestContext.state``: ``ctx.get(CACHE_KEY)`` type-checks."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StateKey({self.name!r})"


@dataclass(slots=True, frozen=True)
class Principal:
    """Who is calling, as established by authentication, with the grants of its key.

    ``models`` empty means any model (patterns like ``gpt-4o*`` allowed); ``None`` limits mean the
    configured defaults.
    """

    tenant: str
    key_id: str
    roles: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    models: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None

    def may_use(self, model: str) -> bool:
        """True when the key's grants include ``model``; the policy may still deny for other reasons."""
        return not self.models or any(
            model == granted or fnmatch.fnmatchcase(model, granted) for granted in self.models
        )


def tenant_of(principal: Principal | None) -> str:
    """The caller's tenant; ``default`` when no authentication is configured."""
    return principal.tenant if principal is not None and principal.tenant else DEFAULT_TENANT


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def from_json(cls, raw: Any) -> Usage | None:
        if not isinstance(raw, dict):
            return None
        prompt = raw.get("prompt_tokens") or raw.get("input_tokens") or 0
        completion = raw.get("completion_tokens") or raw.get("output_tokens") or 0
        total = raw.get("total_tokens") or (prompt + completion)
        if not all(isinstance(v, int) for v in (prompt, completion, total)):
            return None
        return cls(prompt, completion, total)


@dataclass(slots=True)
class UploadedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


Finalizer = Callable[["RequestContext"], Awaitable[None]]


@dataclass(slots=True)
class RequestContext:
    """Everything the chain knows about one request.

    ``body`` is the JSON document forwarded upstream (unknown fields included); ``typed`` is
    the validated view of it. Filters may change ``body``; the router forwards it.
    """

    request_id: str
    route: Route
    model: str
    body: dict[str, Any]
    typed: Any
    headers: Mapping[str, str]
    stream: bool = False
    files: list[UploadedFile] = field(default_factory=list)
    principal: Principal | None = None
    backend: str | None = None
    upstream_model: str | None = None
    usage: Usage | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    finalizers: list[Finalizer] = field(default_factory=list)
    state: dict[StateKey[Any], Any] = field(default_factory=dict)

    def get(self, key: StateKey[T], default: T | None = None) -> T | None:
        return cast("T | None", self.state.get(key, default))

    def set(self, key: StateKey[T], value: T) -> None:
        self.state[key] = value

    def on_complete(self, finalizer: Finalizer) -> None:
        """Run ``finalizer`` once the response is complete (after the last stream chunk)."""
        self.finalizers.append(finalizer)


@dataclass(slots=True)
class Reply:
    """What the chain returns: a complete body, or a stream of already-framed SSE bytes."""

    status: int = 200
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
