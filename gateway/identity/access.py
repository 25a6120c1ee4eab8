"""What a caller may use: the key's model grants (``/v1/models`` lists only these)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from gateway.context import Principal
from gateway.identity.types import Identity


def may_use_model(principal: Principal | None, model: str) -> bool:
    """True when ``principal``'s grants include ``model`` (patterns like ``gpt-4o*`` allowed).

    No principal (no authn stage) or no model grants means any model. Policy may still deny a
    request for other reasons; this is the grant check, cheap enough for every listing.
    """
    if not isinstance(principal, Identity) or not principal.models:
        return True
    return any(model == granted or fnmatch.fnmatchcase(model, granted) for granted in principal.models)


def usable_models(principal: Principal | None, models: Iterable[str]) -> list[str]:
    return [m for m in models if may_use_model(principal, m)]
