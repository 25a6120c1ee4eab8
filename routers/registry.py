"""Public model names and aliases → deployments on backends."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from gateway.config import Settings
from routers.backends.base import Backend


@dataclass(frozen=True, slots=True)
class Deployment:
    backend: Backend
    upstream_model: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    owned_by: str
    deployments: tuple[Deployment, ...]


class ModelRegistry:
    def __init__(self, models: Mapping[str, ModelEntry], aliases: Mapping[str, str]) -> None:
        self._models = dict(models)
        self._lookup = {**{name: name for name in models}, **aliases}

    @classmethod
    def from_settings(cls, settings: Settings, backends: Mapping[str, Backend]) -> ModelRegistry:
        models: dict[str, ModelEntry] = {}
        aliases: dict[str, str] = {}
        for m in settings.models:
            deployments = tuple(
                Deployment(backends[d.backend], d.model or m.name, d.weight) for d in m.deployments
            )
            models[m.name] = ModelEntry(m.name, m.owned_by, deployments)
            aliases.update({alias: m.name for alias in m.aliases})
        return cls(models, aliases)

    def resolve(self, name: str) -> ModelEntry | None:
        canonical = self._lookup.get(name)
        return self._models[canonical] if canonical is not None else None

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._models.values())
