"""Feature module: the key store and authenticator (shared services) and the key admin API."""

from __future__ import annotations

from collections.abc import Collection
from functools import partial

from starlette.requests import Request
from starlette.routing import BaseRoute

from gateway.http.admin_keys import AdminGuard, KeyAdmin, key_routes
from gateway.kernel.grants import usable_models
from gateway.runtime import Runtime
from gateway.services.identity.authenticator import Authenticator
from gateway.services.identity.memory import MemoryKeyStore
from gateway.services.identity.secrets import KeyHasher
from gateway.services.identity.types import AUTHENTICATOR, KEY_STORE, KeyStore
from routers.registry import MODEL_VISIBILITY, ModelVisibility


async def start(runtime: Runtime) -> None:
    settings = runtime.settings.auth
    store: KeyStore
    if settings.store == "postgres":
        from gateway.services.identity.postgres import PostgresKeyStore

        pg_store = PostgresKeyStore((await runtime.postgres()).pool)
        await pg_store.migrate()
        store = pg_store
    else:
        store = MemoryKeyStore()
    pepper = settings.pepper.get_secret_value().encode() if settings.pepper else None
    runtime.provide(KEY_STORE, store)
    authenticator = Authenticator(settings, store, KeyHasher(pepper))
    runtime.provide(AUTHENTICATOR, authenticator)
    if "authn" in runtime.settings.chain:
        visible: ModelVisibility = partial(_visible_models, runtime, authenticator)
        runtime.provide(MODEL_VISIBILITY, visible)


async def _visible_models(runtime: Runtime, authenticator: Authenticator, request: Request) -> Collection[str]:
    """``/v1/models`` needs a valid key too, and lists only the models that key may use."""
    principal = await authenticator.authenticate(request.headers)
    return set(usable_models(principal, [entry.name for entry in runtime.registry]))


def routes(runtime: Runtime) -> list[BaseRoute]:
    settings = runtime.settings.auth
    get = partial(runtime.require, AUTHENTICATOR)
    return key_routes(AdminGuard(get, settings.admin_role), KeyAdmin(get, settings.key_prefix))


def admin_guard(runtime: Runtime) -> AdminGuard:
    """The admin-role check, for other features' admin routes."""
    return AdminGuard(partial(runtime.require, AUTHENTICATOR), runtime.settings.auth.admin_role)
