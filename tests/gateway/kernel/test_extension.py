"""``llmops.workspace`` is one strict name: anything else is a 400 ``invalid_value`` naming the param."""

from __future__ import annotations

import io
from typing import Any

import pytest
from starlette.testclient import TestClient

from executors.spec import WORKSPACE_NAME as NODE_PATTERN
from gateway.app import build_app
from gateway.kernel.config import settings_from_mapping
from gateway.kernel.errors import InvalidRequest
from gateway.kernel.extension import WORKSPACE_NAME, parse_extension
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.observability.metrics import Metrics
from gateway.wiring import Gateway

BAD = ["../etc", "a/b", ".hidden", "a.b", "x" * 65, "x" * 10_000, "", "sp ace", "é", "a\x00b", 7, ["w"], True]


@pytest.mark.parametrize("name", ["w", "w1", "My_Work-space", "x" * 64])
def test_valid_workspace_names_pass(name: str) -> None:
    assert parse_extension({"llmops": {"workspace": name}}).workspace == name


@pytest.mark.parametrize("name", BAD)
def test_invalid_workspace_names_are_400_invalid_value(name: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_extension({"llmops": {"workspace": name}})
    error = caught.value
    assert (error.status, error.code, error.param) == (400, "invalid_value", "llmops.workspace")
    assert "1-64" in error.message


def test_the_gateway_and_the_node_accept_the_same_names() -> None:
    assert WORKSPACE_NAME.pattern == NODE_PATTERN.pattern


def test_other_extension_errors_carry_invalid_value_too() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_extension({"llmops": {"max_steps": -1}})
    assert (caught.value.code, caught.value.param) == ("invalid_value", "llmops.max_steps")


def test_an_overlong_workspace_is_a_400_over_http_not_a_502() -> None:
    config = {"backends": [{"name": "nowhere", "base_url": "http://127.0.0.1:9/v1"}],
              "models": [{"name": "m", "deployments": [{"backend": "nowhere"}]}]}
    gateway = Gateway(settings_from_mapping(config, {}), JsonLog(io.BytesIO()), Metrics())
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "llmops": {"workspace": "w" * 300}}
    with TestClient(build_app(gateway), raise_server_exceptions=False) as http:
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "llmops.workspace"
    assert response.json()["error"]["code"] == "invalid_value"
