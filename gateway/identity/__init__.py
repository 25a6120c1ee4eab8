"""Identity: virtual API keys (hashed, in memory or PostgreSQL), static keys and JWT bearers.

The authn stage turns a bearer into an ``Identity`` (a ``Principal`` with its grants) and sets
``ctx.principal``; the admin API manages keys; ``may_use_model`` says what a caller may use.
"""

from gateway.identity.access import may_use_model, usable_models
from gateway.identity.types import AUTHENTICATOR, KEY_STORE, Identity, KeyRecord, KeyStore

__all__ = ["AUTHENTICATOR", "KEY_STORE", "Identity", "KeyRecord", "KeyStore", "may_use_model", "usable_models"]
