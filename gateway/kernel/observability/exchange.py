"""What the transport layer learns about one HTTP exchange, shared with the endpoint through the scope."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.kernel.context import RequestContext
    from gateway.kernel.errors import ErrorBody

SCOPE_KEY = "llmops.exchange"


@dataclass(slots=True)
class Exchange:
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    route: str = "other"
    ctx: RequestContext | None = None
    error_code: str | None = None
    error_body: ErrorBody | None = None  # the route's error envelope, once its door is entered (None: OpenAI's)


def exchange_of(scope: dict[str, Any] | Any) -> Exchange:
    found = scope.get(SCOPE_KEY)
    if isinstance(found, Exchange):
        return found
    made = Exchange(request_id="req_unbound")
    scope[SCOPE_KEY] = made
    return made


class RequestIds:
    """Unique, cheap request ids: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = "req_" + os.urandom(6).hex()
        self._next = count(1)

    def new(self) -> str:
        return f"{self._prefix}{next(self._next):08x}"
