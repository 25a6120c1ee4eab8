"""What ``check-config`` checks is what ``serve`` starts: one function, the extension tables, both commands.

The settings model (``gateway.kernel.config``) checks shapes and cross-references inside the file;
this adds what needs the registries beside the code (stages, backend types, sandbox drivers) and the
deny-by-default rules for serving.
"""

from __future__ import annotations

from executors.drivers import DRIVERS
from gateway.kernel.config import ConfigError, Settings
from gateway.kernel.policy import PolicyLoadError
from middleware.stages import check_chain, needs_of
from routers.backends import BACKEND_TYPES


def problems(settings: Settings) -> list[str]:
    """Every problem, as ``key: problem``; empty for a configuration ``serve`` starts."""
    found = check_chain(settings.chain)
    for i, backend in enumerate(settings.backends):
        if backend.type not in BACKEND_TYPES:
            found.append(f"backends.{i}.type: unknown backend type {backend.type!r} "
                         f"(known: {', '.join(BACKEND_TYPES)})")
    chosen = [(f"tools.options.{name}.driver", o.driver) for name, o in settings.tools.options.items()]
    chosen += [(f"tools.custom.{i}.driver", t.driver) for i, t in enumerate(settings.tools.custom)]
    for key, driver in chosen:
        if driver is not None and driver not in DRIVERS:
            found.append(f"{key}: unknown driver {driver!r} (known: {', '.join(DRIVERS)})")
    for i, node in enumerate(settings.tools.nodes):
        for driver in node.drivers:
            if driver not in DRIVERS:
                found.append(f"tools.nodes.{i}.drivers: unknown driver {driver!r} (known: {', '.join(DRIVERS)})")
    if exposed_without_auth(settings):
        found.append(f"server.host: refusing to serve on {settings.server.host} without authentication: add authn "
                     "to the chain (with keys), or set server.allow_unauthenticated: true")
    found += policy_problems(settings)
    if needs_of(settings.chain).identity and not can_authenticate(settings):
        found.append("auth: the chain has authn but no credential can ever pass: add auth.static_keys, auth.jwt, "
                     "or auth.store: postgres")
    return found


def check(settings: Settings) -> Settings:
    """``settings``, or a ``ConfigError`` listing every problem."""
    found = problems(settings)
    if found:
        raise ConfigError("\n".join(found))
    return settings


def exposed_without_auth(settings: Settings) -> bool:
    """Deny by default: anyone who can reach a non-loopback address could spend the upstream keys."""
    host = settings.server.host
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    return not loopback and not needs_of(settings.chain).identity and not settings.server.allow_unauthenticated


def can_authenticate(settings: Settings) -> bool:
    auth = settings.auth
    return bool(auth.static_keys) or auth.jwt is not None or auth.store == "postgres"


def policy_problems(settings: Settings) -> list[str]:
    """The embedded Rego policy must load when a stage will ask it (a missing directory, a syntax error)."""
    policy = settings.policy
    needs = needs_of(settings.chain)
    if policy.engine != "rego" or not (needs.request_policy or needs.tool_policy):
        return []
    from gateway.wiring import make_evaluator

    try:
        make_evaluator(policy)
    except PolicyLoadError as exc:
        text = " ".join(str(exc).split())
        return [text if text.startswith("policy.") else f"policy.paths: {text}"]
    return []
