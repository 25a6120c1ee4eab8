from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.checks import check
from gateway.commands.schema import schema_text
from gateway.kernel.config import ConfigError, load_settings, settings_from_mapping
from tests.support.processes import ROOT

BACKEND = {"name": "a", "base_url": "http://127.0.0.1:1/v1"}


def test_example_config_is_valid() -> None:
    settings = load_settings(ROOT / "config" / "gateway.example.yaml", {"OPENAI_API_KEY": "x"})
    assert settings.models[0].name == "gpt-4o-mini"


def test_schema_file_is_up_to_date() -> None:
    assert (ROOT / "config" / "schema.json").read_text() == schema_text()


def test_env_interpolation_with_default_and_required() -> None:
    raw = {"backends": [{"name": "a", "base_url": "${URL:-http://h/v1}", "api_key": "${KEY}"}]}
    settings = settings_from_mapping(raw, {"KEY": "sk-1"})
    assert settings.backends[0].base_url == "http://h/v1"
    assert settings.backends[0].api_key is not None and settings.backends[0].api_key.get_secret_value() == "sk-1"
    with pytest.raises(ConfigError, match=r"backends\.0\.api_key: environment variable KEY is not set"):
        settings_from_mapping(raw, {})


def test_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"server\.port: Input should be a valid integer"):
        settings_from_mapping({"server": {"port": "eighty"}}, {})
    with pytest.raises(ConfigError, match=r"server\.colour: Extra inputs are not permitted"):
        settings_from_mapping({"server": {"colour": "red"}}, {})
    with pytest.raises(ConfigError, match=r"models\.0\.deployments\.0\.backend: unknown backend 'b'"):
        settings_from_mapping({"backends": [BACKEND], "models": [{"name": "m", "deployments": [{"backend": "b"}]}]}, {})
    with pytest.raises(ConfigError, match=r"chain\.0: unknown stage 'firewall'"):
        check(settings_from_mapping({"chain": ["firewall"]}, {}))
    with pytest.raises(ConfigError, match=r"backends: duplicate name 'a'"):
        settings_from_mapping({"backends": [BACKEND, BACKEND]}, {})


def test_environment_overrides_file_values() -> None:
    env = {"LLMOPS_SERVER__PORT": "9001", "LLMOPS_BACKENDS__0__BASE_URL": "http://other/v1", "LLMOPS_CHAIN": "[]"}
    settings = settings_from_mapping({"backends": [BACKEND]}, env)
    assert settings.server.port == 9001
    assert settings.backends[0].base_url == "http://other/v1"


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("server:\n  port: [1,\n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        load_settings(path, {})


def test_settings_are_frozen() -> None:
    settings = settings_from_mapping({}, {})
    with pytest.raises(ValidationError):
        settings.server.port = 1  # type: ignore[misc]


def test_process_variables_are_not_settings_keys() -> None:
    env = {"LLMOPS_CONFIG": "/x.yaml", "LLMOPS_CONFIG_DIR": "/etc", "LLMOPS_NODE_SECRET": "s"}
    assert settings_from_mapping({}, env).server.port == 8080


def test_embedded_default_adds_openai_only_with_a_key() -> None:
    from gateway.embedded import default_config

    plain = settings_from_mapping(default_config("http://127.0.0.1:1", {}), {})
    assert [b.name for b in plain.backends] == ["sim"]
    with_key = settings_from_mapping(default_config("http://127.0.0.1:1", {"OPENAI_API_KEY": "sk-x"}), {})
    assert [b.name for b in with_key.backends] == ["sim", "openai"]
    assert with_key.backends[1].api_key_env == "OPENAI_API_KEY" and with_key.backends[1].api_key is None
    assert "gpt-4o-mini" in {m.name for m in with_key.models}


def test_fallbacks_must_name_known_models() -> None:
    models = [{"name": "m", "deployments": [{"backend": "a"}]}]
    with pytest.raises(ConfigError, match=r"routing.fallbacks.m: unknown model 'gpt-9'"):
        settings_from_mapping({"backends": [BACKEND], "models": models, "routing": {"fallbacks": {"m": ["gpt-9"]}}}, {})


def test_native_responses_need_an_openai_backend() -> None:
    native = {**BACKEND, "responses": "native"}
    assert settings_from_mapping({"backends": [native]}, {}).backends[0].responses == "native"
    with pytest.raises(ConfigError, match=r"backends.0.responses: native needs type openai"):
        settings_from_mapping({"backends": [{**native, "type": "anthropic"}]}, {})


def test_a_directory_merges_its_yaml_files_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "20-more.yaml").write_text("backends: [{name: b, base_url: 'http://b/v1'}]\nserver: {port: 9002}\n")
    (tmp_path / "10-base.yml").write_text("backends: [{name: a, base_url: 'http://a/v1'}]\n"
                                          "server: {port: 9001, host: 127.0.0.2}\n")
    (tmp_path / "notes.txt").write_text("not configuration")
    settings = load_settings(tmp_path, {})
    assert [b.name for b in settings.backends] == ["a", "b"]  # lists concatenate
    assert (settings.server.host, settings.server.port) == ("127.0.0.2", 9002)  # mappings merge, later wins


def test_a_directory_file_that_is_not_a_mapping_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"a\.yaml: the configuration must be a mapping"):
        load_settings(tmp_path, {})


def test_every_broken_reference_is_listed_at_once() -> None:
    models = [{"name": "m", "deployments": [{"backend": "x"}]}, {"name": "n", "deployments": [{"backend": "y"}]}]
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"backends": [BACKEND], "models": models}, {})
    assert str(caught.value).splitlines() == [
        "models.0.deployments.0.backend: unknown backend 'x' (known: a)",
        "models.1.deployments.0.backend: unknown backend 'y' (known: a)",
    ]
