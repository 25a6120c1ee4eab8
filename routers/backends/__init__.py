"""Backend adapters: how the gateway talks to a model server. One table, one line per type.

A backend type is a class with ``create(settings, metrics)`` and a class attribute ``offers`` (the
modalities, capabilities and protocols it can serve at all, whatever the config declares). Config
names types from ``BACKEND_TYPES``; a type's module is imported only when a backend uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.kernel.config import BackendSettings
    from gateway.kernel.observability.metrics import Metrics
    from routers.backends.base import Backend

BACKEND_TYPES: dict[str, str] = {
    "openai": "routers.backends.openai:OpenAIBackend",
    "anthropic": "routers.backends.anthropic:AnthropicBackend",
}


def backend_class(type_name: str) -> Any:
    module, _, attr = BACKEND_TYPES[type_name].partition(":")
    return getattr(importlib.import_module(module), attr)


def make_backend(settings: BackendSettings, metrics: Metrics) -> Backend:
    backend: Backend = backend_class(settings.type).create(settings, metrics)
    return backend


def offers_of(type_name: str) -> int:
    offers: int = backend_class(type_name).offers
    return offers
