"""What a model's tokens cost (from ``models[].cost``), for the agent loop's budget."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.kernel.config import Settings
from gateway.kernel.context import Usage


@dataclass(frozen=True, slots=True)
class Price:
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.input_per_mtok + usage.completion_tokens * self.output_per_mtok) / 1e6


def price_of(settings: Settings, model: str) -> Price:
    for m in settings.models:
        if model == m.name or model in m.aliases:
            return Price(m.cost.input_per_mtok, m.cost.output_per_mtok)
    return Price()
