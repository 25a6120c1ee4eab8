from __future__ import annotations

from typing import Any

from gateway.kernel.config import settings_from_mapping
from gateway.reconcile.plan import Change, effective, plan

BASE: dict[str, Any] = {
    "backends": [{"name": "a", "base_url": "http://a/v1"}],
    "models": [{"name": "m", "deployments": [{"backend": "a"}]}],
    "auth": {"static_keys": [{"key": "sk-one-secret", "key_id": "one", "tenant": "t"}]},
    "policy": {"paths": [], "modules": {"p.rego": "package llmops.authz\n"}},
}


def settings(**changes: Any) -> Any:
    return settings_from_mapping({**BASE, **changes}, {})


def test_the_same_state_changes_nothing() -> None:
    assert plan(settings(), settings()).empty


def test_resources_are_named_by_kind_and_name_in_that_order() -> None:
    after = settings(
        backends=[*BASE["backends"], {"name": "b", "base_url": "http://b/v1"}],
        models=[{"name": "m", "deployments": [{"backend": "b"}]}],
        auth={"static_keys": [{"key": "sk-two-secret", "key_id": "two", "tenant": "t"}]},
        policy={"paths": [], "modules": {"p.rego": "package llmops.authz\n\nx := 1\n"}},
    )
    assert plan(settings(), after).changes == (
        Change("added", "backend", "b"), Change("removed", "key", "one"), Change("added", "key", "two"),
        Change("changed", "model", "m"), Change("changed", "policy", "modules/p.rego"),
    )


def test_a_new_secret_is_a_change_without_showing_it() -> None:
    after = settings(auth={"static_keys": [{"key": "sk-rotated", "key_id": "one", "tenant": "t"}]})
    change = plan(settings(), after)
    assert change.changes == (Change("changed", "key", "one"),)
    assert "sk-" not in str(change.to_json())


def test_settings_outside_the_live_parts_need_a_restart_and_keep_their_running_value() -> None:
    after = settings(server={"port": 9100}, redis={"url": "redis://h:6379/0"},
                     backends=[{"name": "a", "base_url": "http://moved/v1"}])
    change = plan(settings(), after)
    assert change.restart == ("server.port", "redis.url")  # in the settings' order
    assert change.changes == (Change("changed", "backend", "a"),)
    running = effective(settings(), after)
    assert running.server.port == 8080 and running.redis.url is None  # not applied live
    assert running.backends[0].base_url == "http://moved/v1"  # applied


def test_static_keys_and_mcp_servers_are_live_inside_their_sections() -> None:
    after = settings(auth={"static_keys": [], "cache_ttl_s": 1.0})
    change = plan(settings(), after)
    assert change.restart == ("auth.cache_ttl_s",)
    assert change.changes == (Change("removed", "key", "one"),)
    assert effective(settings(), after).auth.static_keys == ()
