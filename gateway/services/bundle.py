"""The typed set of services one gateway process runs, built once by the root (``gateway/wiring.py``).

Stages, the router and routes receive the collaborators they need in their constructors, picked
from here by their ``build`` functions. Optional services are ``None`` when the configuration does
not use them; ``Services.need`` turns a missing one into a startup error that names the config key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from gateway.kernel.chain import ChainNeeds
from gateway.kernel.config import ConfigError, Settings
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.observability.metrics import Metrics
from gateway.services.batches.service import BatchService
from gateway.services.embeddings.base import Embedder
from gateway.services.identity.authenticator import Authenticator
from gateway.services.limits.ledger import SpendLedger
from gateway.services.limits.limiter import Limiter
from gateway.services.mcp.ports import AdmitAll, CredentialStore, DefinitionGuard, NoCredentials
from gateway.services.policy.gate import PolicyGate
from gateway.services.responses.state import ResponseState
from gateway.services.vectorstores.service import VectorStoreService
from routers.scheduler.scheduler import Scheduler

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from gateway.services.stores.resp import RespClient

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Services:
    """In build order. ``needs``: what the chain asks of the gateway, read once from its stages.
    ``gate`` answers for requests, routes and routing attempts (configured with ``authz``);
    ``tool_gate`` for tool calls (configured with ``authz`` or ``tools``): one engine."""

    settings: Settings
    needs: ChainNeeds
    log: JsonLog
    metrics: Metrics
    redis: aioredis.Redis | None
    resp: RespClient | None
    authenticator: Authenticator
    ledger: SpendLedger | None
    limiter: Limiter | None
    gate: PolicyGate
    tool_gate: PolicyGate
    embedder: Embedder
    vector_stores: VectorStoreService
    scheduler: Scheduler | None
    responses: ResponseState  # the Responses and Conversations APIs' state, opened on first use
    mcp_credentials: CredentialStore = NoCredentials()  # upstream MCP tokens per (subject, server)
    mcp_guard: DefinitionGuard = AdmitAll()  # pinned upstream tool definitions, description scanning
    batches: BatchService | None = None  # the Batch API on the job engine (gateway/services/jobs), opened on first use

    @staticmethod
    def need(service: T | None, what: str, key: str) -> T:
        """``service``, or a startup ``ConfigError``: ``key: what is not configured``."""
        if service is None:
            raise ConfigError(f"{key}: {what} is needed here but not configured")
        return service
