"""A bounded schemathesis run over the gateway's own ``/openapi.json``, against a real gateway with the
full chain (authn, authz, limits, cache, rag, tools), Redis and PostgreSQL, and the simulator as backend.

It fails on any 5xx, on an answer slower than the request timeout, on a status the description does
not declare, and on a body that does not match its declared schema. The gateway's own counters say how
many requests the run made and how many were 5xx. A longer run: ``scripts/fuzz`` (same checks).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import GatewayFactory
from tests.support.processes import ROOT, ServerProcess

KEY, ADMIN_KEY = "sk-fuzz-user-0123456789", "sk-fuzz-admin-0123456789"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
EXAMPLES = int(os.environ.get("LLMOPS_FUZZ_EXAMPLES", "25"))
_REQUESTS = re.compile(r'^llmops_requests_total\{[^}]*status="(\d+)"[^}]*\} ([0-9.e+]+)$', re.M)


def fuzz_config(sim_url: str, redis_url: str, postgres_dsn: str) -> dict[str, object]:
    return {
        "backends": [{"name": "sim", "type": "openai", "base_url": f"{sim_url}/v1"}],
        "models": [{"name": m, "deployments": [{"backend": "sim"}]}
                   for m in ("sim-chat", "sim-embed", "sim-image", "sim-tts", "sim-stt")],
        "chain": ["authn", "authz", "limits", "cache", "rag", "tools"],
        "auth": {"static_keys": [{"key": KEY, "key_id": "fuzz", "tenant": "fuzz"},
                                 {"key": ADMIN_KEY, "key_id": "fuzz-admin", "tenant": "fuzz",
                                  "roles": ["admin"]}]},
        "limits": {"key": {"rpm": 1_000_000, "tpm": 1_000_000_000}},
        "tools": {"enrollment": {"enabled": True}, "max_steps": 2},
        "redis": {"url": redis_url},
        "postgres": {"dsn": postgres_dsn},
        "mcp": {"servers": [{"name": "fuzz-mcp", "url": "http://127.0.0.1:9/mcp", "credential": "per_subject",
                             "oauth": {"authorize_url": "http://127.0.0.1:9/authorize",
                                       "token_url": "http://127.0.0.1:9/token", "client_id": "fuzz",
                                       "redirect_uri": "http://127.0.0.1:9/v1/mcp/oauth/callback"}}],
                "credentials_key": "ZnV6ei1rZXktZnV6ei1rZXktZnV6ei1rZXktZnV6ei0="},
    }


def counted(gateway: ServerProcess) -> dict[int, int]:
    """Requests the gateway answered so far, by status (its own ``llmops_requests_total``)."""
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    out: dict[int, int] = {}
    for status, value in _REQUESTS.findall(text):
        out[int(status)] = out.get(int(status), 0) + int(float(value))
    return out


def run_schemathesis(url: str, key: str, examples: int, report: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # One worker: schemathesis' generation is not thread-safe on this Python (3.11: its threads raced
    # into "dictionary changed size during iteration" and CPython's ast.parse SystemError, gh-106905,
    # failing runs in which the gateway answered no 5xx); one worker takes about as long.
    argv = [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json", "--url", url,
            "--checks", CHECKS, "--max-examples", str(examples), "--seed", "20261203",
            "--request-timeout", "30", "--max-response-time", "30", "--workers", "1",
            "--suppress-health-check", "all", "--header", f"Authorization: Bearer {key}",
            "--report", "junit", "--report-dir", str(report), "--no-color", *extra]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "SCHEMATHESIS_HOOKS": ""})


@pytest.fixture(scope="module")
def fuzz_gateway(start_gateway: GatewayFactory, sim: ServerProcess, redis_url: str,
                 postgres_dsn: str) -> ServerProcess:
    return start_gateway(fuzz_config(sim.url, redis_url, postgres_dsn))


@pytest.mark.parametrize("key", [KEY, ADMIN_KEY], ids=["user", "admin"])
def test_fuzzing_the_description_finds_no_5xx_and_no_mismatch(fuzz_gateway: ServerProcess, key: str,
                                                               tmp_path: Path) -> None:
    before = counted(fuzz_gateway)
    result = run_schemathesis(fuzz_gateway.url, key, EXAMPLES, tmp_path)
    after = counted(fuzz_gateway)
    made = {s: after.get(s, 0) - before.get(s, 0) for s in after}
    errors = sum(n for s, n in made.items() if s >= 500)
    print(f"fuzz ({key[:12]}...): {sum(made.values())} requests, {errors} x 5xx, by status {sorted(made.items())}")
    assert result.returncode == 0, result.stdout[-12_000:] + result.stderr[-4_000:]
    assert errors == 0, made
    assert sum(made.values()) >= 200, f"the run made too few requests to mean anything: {made}"
