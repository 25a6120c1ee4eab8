"""The typed filter chain: ordered stages folded once around the terminal router."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from gateway.kernel.context import Reply, RequestContext

Handler = Callable[[RequestContext], Awaitable[Reply]]


class Filter(Protocol):
    """One stage of gateway logic. It may answer itself, or call ``call_next`` and adapt the reply."""

    name: str

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply: ...


@dataclass(frozen=True, slots=True)
class ChainNeeds:
    """What a chain asks of the gateway, derived once from its stages (``middleware.stages.needs_of``).

    The wiring, the front door and the config checks read these flags; none of them tests stage names.
    ``identity``: every caller presents a credential. ``request_policy``: requests, routes and routing
    attempts are put to the policy. ``tool_policy``: tool calls are. ``limits``: rate limits and budgets.
    """

    identity: bool = False
    request_policy: bool = False
    tool_policy: bool = False
    limits: bool = False


def compose(filters: Sequence[Filter], terminal: Handler) -> Handler:
    """Fold ``filters`` (first runs first) around ``terminal``; done once at startup."""
    handler: Handler = terminal
    for stage in reversed(filters):
        handler = partial(stage.__call__, call_next=handler)
    return handler
