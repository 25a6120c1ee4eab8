"""Settings for issue 3: virtual keys, static keys, JWT."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from gateway.kernel.config.base import Section


class StaticKey(Section):
    """A key written in the config file (values may be ``${ENV}``); hashed at startup, never logged."""

    key: SecretStr = Field(description="The bearer secret clients send.")
    key_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    tenant: str = Field(min_length=1)
    roles: tuple[str, ...] = ()
    models: tuple[str, ...] = Field((), description="Models this key may use; empty = any.")
    rpm: int | None = Field(None, ge=0, description="Requests per minute for this key.")
    tpm: int | None = Field(None, ge=0, description="Tokens per minute for this key.")
    budget_usd: float | None = Field(None, ge=0, description="Spend cap for this key.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class JwtSettings(Section):
    """Bearer JWTs verified in-process (pyjwt) against a JWKS from a file or a URL."""

    jwks_file: str | None = None
    jwks_url: str | None = Field(None, pattern=r"^https?://")
    jwks_cache_s: float = Field(300.0, gt=0, description="How long a fetched JWKS is reused.")
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    issuer: str | None = None
    audience: str | None = None
    tenant_claim: str = "tenant"
    roles_claim: str = "roles"
    models_claim: str = "models"
    leeway_s: float = Field(30.0, ge=0)


class AuthSettings(Section):
    store: Literal["memory", "postgres"] = Field(
        "memory", description="Where virtual keys live: in process (lost on restart) or PostgreSQL."
    )
    pepper: SecretStr | None = Field(
        None, description="HMAC pepper for key hashes; unset = plain SHA-256 of the (high-entropy) key."
    )
    cache_ttl_s: float = Field(10.0, ge=0, description="How long a looked-up key is trusted without the store.")
    cache_size: int = Field(10_000, ge=1)
    key_prefix: str = Field("sk-llmops-", description="Prefix of generated virtual keys.")
    admin_role: str = "admin"
    static_keys: tuple[StaticKey, ...] = ()
    jwt: JwtSettings | None = None
