"""The typed filter chain: ordered stages folded once around the terminal router."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Protocol

from gateway.kernel.context import Reply, RequestContext

Handler = Callable[[RequestContext], Awaitable[Reply]]


class Filter(Protocol):
    """One stage of gateway logic. It may answer itself, or call ``call_next`` and adapt the reply."""

    name: str

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply: ...


def compose(filters: Sequence[Filter], terminal: Handler) -> Handler:
    """Fold ``filters`` (first runs first) around ``terminal``; done once at startup."""
    handler: Handler = terminal
    for stage in reversed(filters):
        handler = partial(stage.__call__, call_next=handler)
    return handler
