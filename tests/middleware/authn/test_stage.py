"""The authn stage alone, with an authenticator double."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from gateway.kernel.context import Principal, Reply, RequestContext
from gateway.kernel.errors import AuthenticationFailed, PermissionDenied
from middleware.authn.stage import AuthnStage

ALICE = Principal(tenant="acme", key_id="alice")


class Authenticator:
    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        if headers.get("authorization") != "Bearer good":
            raise AuthenticationFailed("Incorrect API key provided.")
        return ALICE


def ctx(headers: dict[str, str]) -> RequestContext:
    return RequestContext("r1", "chat", "m", {}, headers)


async def test_a_valid_key_sets_the_principal_and_continues() -> None:
    seen: list[Principal | None] = []

    async def router(c: RequestContext) -> Reply:
        seen.append(c.principal)
        return Reply()

    await AuthnStage(Authenticator())(ctx({"authorization": "Bearer good"}), router)  # type: ignore[arg-type]
    assert seen == [ALICE]


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer bad"}, {"authorization": "Basic x"}])
async def test_anything_else_is_a_401_before_the_router(headers: dict[str, str]) -> None:
    async def router(c: RequestContext) -> Reply:
        raise AssertionError("unauthenticated requests must not be routed")

    with pytest.raises(AuthenticationFailed) as caught:
        await AuthnStage(Authenticator())(ctx(headers), router)  # type: ignore[arg-type]
    assert caught.value.status == 401


async def test_the_keys_model_grants_are_enforced_here() -> None:
    scoped = Principal(tenant="acme", key_id="scoped", models=("sim-*",))
    c = ctx({})
    c.principal, c.model = scoped, "gpt-4o"

    async def router(c: RequestContext) -> Reply:
        raise AssertionError("a model outside the key's grants must not be routed")

    with pytest.raises(PermissionDenied) as caught:
        await AuthnStage(Authenticator())(c, router)  # type: ignore[arg-type]
    assert caught.value.status == 403 and caught.value.code == "model_not_granted"
    c.model = "sim-chat"
    assert (await AuthnStage(Authenticator())(c, answer)).status == 200  # type: ignore[arg-type]
    c.model, c.auto = "auto", True  # auto: the router narrows the candidates to the grants
    assert (await AuthnStage(Authenticator())(c, answer)).status == 200  # type: ignore[arg-type]


async def test_a_principal_from_the_front_door_is_kept() -> None:
    c = ctx({})
    c.principal = ALICE  # the door authenticated the same headers already
    assert (await AuthnStage(Authenticator())(c, answer)).status == 200  # type: ignore[arg-type]


async def answer(c: RequestContext) -> Reply:
    return Reply()
