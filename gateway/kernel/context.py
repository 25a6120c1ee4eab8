"""Per-request state that flows through the filter chain, and the reply that flows back."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar, cast

from gateway.kernel.extension import NONE as NO_EXTENSION
from gateway.kernel.extension import Extension

Route = Literal[
    "chat",
    "completions",
    "embeddings",
    "images",
    "speech",
    "transcriptions",
    "messages",
    "responses",
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
class RoutingHints:
    """Where a request may go (hard) and would rather go (soft), as the router reads them.

    ``allowed_regions``: the policy's data-residency obligation (``None``: unconstrained), set by the
    authz stage. ``data_regions``: where the retrieved data lives, set by the rag stage (a preference).
    ``region``: the requested region, from the region header or the tenant's default.
    """

    allowed_regions: frozenset[str] | None = None
    data_regions: tuple[str, ...] = ()
    region: str = ""
    region_source: str = ""


class ReplyStream(Protocol):
    """Framed SSE bytes that can be closed early: an async generator is one. Whoever stops reading
    before the end calls ``aclose()``, which closes the upstream response."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def __anext__(self) -> Awaitable[bytes]: ...

    def aclose(self) -> Awaitable[None]: ...


@dataclass(slots=True)
class RequestContext:
    """Everything the chain knows about one request.

    ``body`` is the JSON document forwarded upstream (unknown fields included); filters may change
    it and the router forwards it. ``model`` is the canonical model name (aliases resolved at the
    endpoint; ``requested_model`` is what the client wrote; ``auto`` when the router is to choose);
    ``served_model`` is the model whose
    deployment answered. ``extension`` is the parsed ``llmops`` object (the router strips it).
    """

    request_id: str
    route: Route
    model: str
    body: dict[str, Any]
    headers: Mapping[str, str]
    stream: bool = False
    files: list[UploadedFile] = field(default_factory=list)
    principal: Principal | None = None
    extension: Extension = NO_EXTENSION
    requested_model: str = ""
    auto: bool = False
    served_model: str | None = None
    hints: RoutingHints = field(default_factory=RoutingHints)
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
    stream: ReplyStream | None = None
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
