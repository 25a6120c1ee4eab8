"""What a caller may use: the key's model grants, carried on the principal."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.kernel.context import Principal


def may_use_model(principal: Principal | None, model: str) -> bool:
    """True when ``principal``'s grants include ``model``; no principal (no authn) means any model."""
    return principal is None or principal.may_use(model)


def usable_models(principal: Principal | None, models: Iterable[str]) -> list[str]:
    return [m for m in models if may_use_model(principal, m)]
