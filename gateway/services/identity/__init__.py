"""Principal: virtual API keys (hashed, in memory or PostgreSQL), static keys and JWT bearers.

The authn stage turns a bearer into an ``Principal`` (a ``Principal`` with its grants) and sets
``ctx.principal``; the admin API manages keys.
"""

from gateway.services.identity.types import AUTHENTICATOR, KEY_STORE, KeyRecord, KeyStore

__all__ = ["AUTHENTICATOR", "KEY_STORE", "Principal", "KeyRecord", "KeyStore", "may_use_model", "usable_models"]
