"""Identity: virtual API keys (hashed, in memory or PostgreSQL), static keys and JWT bearers.

The ``Authenticator`` turns a bearer into a ``Principal`` (with its grants); the front door and the
authn stage use it, the admin API manages keys through it.
"""

from gateway.services.identity.types import KeyRecord, KeyStore

__all__ = ["KeyRecord", "KeyStore"]
