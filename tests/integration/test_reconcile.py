"""Issue 14, item 4: declarative state reconciled live, against real gateway processes, two simulators and
the ``openai`` SDK. Changes go through ``llmops apply``, SIGHUP and the file watch; the clients never see a
failure, in-flight streams finish on the configuration they started with, and an invalid change changes
nothing while the gateway reports every error."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests.conftest import SimFactory
from tests.support.processes import ROOT, ServerProcess, python_module

ADMIN, USER, NEW = "sk-reconcile-admin-000000", "sk-reconcile-user-0000000", "sk-reconcile-new-00000000"
OPEN_RULE = 'package llmops.authz\n\ndeny contains "nothing is closed" if {\n\tinput.resource.model == "none"\n}\n'
CLOSED_RULE = ('package llmops.authz\n\ndeny contains "sim-other is closed" if {\n'
               '\tinput.resource.model == "sim-other"\n}\n')
BROKEN_RULE = "package llmops.authz\n\nthis is not rego\n"
DEADLINE_S = 2.0  # each change takes effect within this, once applied


@pytest.fixture(scope="module")
def sims(start_sim: SimFactory) -> tuple[ServerProcess, ServerProcess]:
    return start_sim("--name", "a", "--itl-ms", "15"), start_sim("--name", "b", "--itl-ms", "15")


def desired(sims: tuple[ServerProcess, ServerProcess], *, serve_from: str = "a", rule: str = OPEN_RULE,
            new_key: bool = False, watch_s: float = 0.0) -> dict[str, Any]:
    a, b = sims
    keys = [{"key": ADMIN, "key_id": "admin", "tenant": "ops", "roles": ["admin"]},
            {"key": USER, "key_id": "user", "tenant": "t1"}]
    if new_key:
        keys.append({"key": NEW, "key_id": "added", "tenant": "t2"})
    return {
        "backends": [{"name": "a", "base_url": f"{a.url}/v1"}, {"name": "b", "base_url": f"{b.url}/v1"}],
        "models": [{"name": "sim-chat", "deployments": [{"backend": serve_from}]},
                   {"name": "sim-other", "deployments": [{"backend": "a"}]}],
        "chain": ["authn", "authz"],
        "auth": {"static_keys": keys},
        "policy": {"paths": ["config/policies"], "modules": {"rotate.rego": rule}, "reload_interval_s": 0},
        "reconcile": {"watch_interval_s": watch_s},
    }


def write(directory: Path, document: dict[str, Any]) -> None:
    """The desired state as a directory: backends and models in one file, the rest in another."""
    directory.mkdir(parents=True, exist_ok=True)
    serving = {k: document[k] for k in ("backends", "models") if k in document}
    (directory / "10-serving.yaml").write_text(yaml.safe_dump(serving))
    (directory / "20-access.yaml").write_text(yaml.safe_dump({k: v for k, v in document.items() if k not in serving}))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], tuple[ServerProcess, Path]]]:
    started: list[ServerProcess] = []

    def serve(document: dict[str, Any]) -> tuple[ServerProcess, Path]:
        directory = tmp_path / "desired"
        write(directory, document)
        argv = python_module("gateway.cli", "serve", "--config", str(directory), "--port", "0")
        proc = ServerProcess(argv, stream="stderr").start()
        started.append(proc)
        return proc, directory

    yield serve
    for proc in started:
        proc.stop()


def llmops(gateway: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLMOPS_URL": gateway.url, "LLMOPS_ADMIN_KEY": ADMIN}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True,
                          timeout=60, env=env, cwd=ROOT)


def state(gateway: ServerProcess) -> dict[str, Any]:
    reply = httpx.get(f"{gateway.url}/admin/state", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def put(gateway: ServerProcess, document: dict[str, Any]) -> dict[str, Any]:
    """Apply through the admin API directly (``llmops apply`` does the same two calls)."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    base = state(gateway)["version"]
    reply = httpx.put(f"{gateway.url}/admin/state", headers=headers, json={"desired": document, "base": base},
                      timeout=30)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def eventually(check: Callable[[], Any], within_s: float = DEADLINE_S) -> None:
    """Poll ``check`` (true when the change shows) until it is, or fail after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, f"the change did not take effect within {within_s} s"
        await asyncio.sleep(0.05)


class Load:
    """A few concurrent streams and non-streams, in a loop, each failure recorded."""

    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self.client = client
        self.failures: list[str] = []
        self.done = 0
        self._stop = asyncio.Event()

    async def _one(self, stream: bool) -> None:
        messages: Any = [{"role": "user", "content": "Count slowly to twenty, please."}]
        try:
            if stream:
                chunks = await self.client.chat.completions.create(model="sim-chat", messages=messages, stream=True)
                text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
                assert text, "an empty stream"
            else:
                reply = await self.client.chat.completions.create(model="sim-chat", messages=messages)
                assert reply.choices[0].message.content
            self.done += 1
        except Exception as exc:  # every failure counts, whatever its kind
            self.failures.append(f"{type(exc).__name__}: {exc}")

    async def _loop(self, stream: bool) -> None:
        while not self._stop.is_set():
            await self._one(stream)

    async def run(self) -> None:
        await asyncio.gather(*(self._loop(stream) for stream in (True, True, False, False)))

    def stop(self) -> None:
        self._stop.set()


def client_for(gateway: ServerProcess, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


async def apply(gateway: ServerProcess, directory: Path, document: dict[str, Any]) -> str:
    write(directory, document)
    done = await asyncio.to_thread(llmops, gateway, "apply", "-f", str(directory))
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_under_load_backends_policy_and_keys_change_live_with_no_failed_request(
        sims: tuple[ServerProcess, ServerProcess], served: Callable[..., tuple[ServerProcess, Path]]) -> None:
    gateway, directory = served(desired(sims))
    user, newcomer = client_for(gateway, USER), client_for(gateway, NEW)
    load = Load(user)
    running = asyncio.create_task(load.run())
    await asyncio.sleep(0.5)

    async def served_by_b() -> bool:
        reply = await user.chat.completions.create(model="sim-chat", messages=[{"role": "user", "content": "x"}])
        return reply.system_fingerprint == "sim-b"

    assert not await served_by_b()
    out = await apply(gateway, directory, desired(sims, serve_from="b"))
    assert "~ model/sim-chat" in out
    await eventually(served_by_b)
    await asyncio.sleep(0.3)

    async def other_denied() -> bool:
        try:
            await user.chat.completions.create(model="sim-other", messages=[{"role": "user", "content": "x"}])
        except openai.PermissionDeniedError as exc:
            return "sim-other is closed" in str(exc)
        return False

    assert not await other_denied()
    out = await apply(gateway, directory, desired(sims, serve_from="b", rule=CLOSED_RULE))
    assert "~ policy/modules/rotate.rego" in out
    await eventually(other_denied)
    await asyncio.sleep(0.3)

    async def newcomer_served() -> bool:
        try:
            await newcomer.chat.completions.create(model="sim-chat", messages=[{"role": "user", "content": "x"}])
        except openai.AuthenticationError:
            return False
        return True

    assert not await newcomer_served()
    out = await apply(gateway, directory, desired(sims, serve_from="b", rule=CLOSED_RULE, new_key=True))
    assert "+ key/added" in out
    await eventually(newcomer_served)
    await asyncio.sleep(0.3)
    load.stop()
    await running
    assert load.failures == [], load.failures[:5]
    assert load.done > 20
    report = state(gateway)
    assert report["generation"] == 4 and report["rejected"] is None
    assert {(r["kind"], r["name"]): r["state"] for r in report["resources"]}[("key", "added")] == "ready"


async def test_a_stream_in_flight_finishes_on_the_configuration_it_started_with(
        start_sim: SimFactory, sims: tuple[ServerProcess, ServerProcess],
        served: Callable[..., tuple[ServerProcess, Path]]) -> None:
    sims = (start_sim("--name", "a", "--itl-ms", "150"), sims[1])  # a slow backend a: its stream outlasts the changes
    gateway, _ = served(desired(sims))
    user = client_for(gateway, USER)
    words = " ".join(f"word{i}" for i in range(40))
    stream = await user.chat.completions.create(model="sim-chat", stream=True,
                                                messages=[{"role": "user", "content": words}])
    chunks = aiter(stream)
    first = await anext(chunks)
    # the model moves to backend b, then backend a is removed altogether: the stream keeps reading from a
    assert put(gateway, desired(sims, serve_from="b"))["generation"] == 2
    gone = desired(sims, serve_from="b")
    gone["backends"] = gone["backends"][1:]
    gone["models"] = gone["models"][:1]
    changes = put(gateway, gone)["changes"]
    assert {"action": "removed", "kind": "backend", "name": "a"} in changes
    # generation 1 still serves the stream; generation 2 (no request) has closed, or closes now
    assert {"generation": 1, "in_flight": 1} in state(gateway)["draining"]
    rest = [c async for c in chunks]
    assert {c.system_fingerprint for c in [first, *rest]} == {"sim-a"}
    assert rest[-1].choices[0].finish_reason == "stop"
    reply = await user.chat.completions.create(model="sim-chat", messages=[{"role": "user", "content": "x"}])
    assert reply.system_fingerprint == "sim-b"

    async def closed() -> bool:
        return not state(gateway)["draining"]

    await eventually(closed)  # the replaced generations closed once their last request was done


async def test_an_invalid_change_is_rejected_whole_with_its_errors_and_changes_nothing(
        sims: tuple[ServerProcess, ServerProcess], served: Callable[..., tuple[ServerProcess, Path]]) -> None:
    gateway, directory = served(desired(sims))
    bad = desired(sims, serve_from="b", new_key=True)
    bad["models"] += [{"name": "lost", "deployments": [{"backend": "nowhere"}]},
                      {"name": "lost-too", "deployments": [{"backend": "elsewhere"}]}]
    write(directory, bad)
    done = llmops(gateway, "apply", "-f", str(directory))
    assert done.returncode == 1
    assert "unknown backend 'nowhere'" in done.stderr and "unknown backend 'elsewhere'" in done.stderr
    write(directory, desired(sims, serve_from="b", rule=BROKEN_RULE, new_key=True))
    done = llmops(gateway, "apply", "-f", str(directory))
    assert done.returncode == 1
    assert "policy.modules.rotate.rego" in done.stderr and "Stack backtrace" not in done.stderr

    report = state(gateway)
    assert report["generation"] == 1
    assert any("policy.modules.rotate.rego" in e for e in report["rejected"]["errors"])
    policy = [r for r in report["resources"] if r["kind"] == "policy"]
    assert policy and all(r["state"] == "failed" and "previous policy still runs" in r["reason"] for r in policy)
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert 'llmops_resource_ready{kind="policy",name="modules/rotate.rego"} 0.0' in metrics
    user = client_for(gateway, USER)
    reply = await user.chat.completions.create(model="sim-chat", messages=[{"role": "user", "content": "x"}])
    assert reply.system_fingerprint == "sim-a"  # untouched: still backend a, and the new key was not added
    with pytest.raises(openai.AuthenticationError):
        await client_for(gateway, NEW).models.list()

    put = httpx.put(f"{gateway.url}/admin/state", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10,
                    json={"desired": bad, "base": report["version"]})
    assert put.status_code == 400
    error = put.json()["error"]
    assert error["code"] == "invalid_configuration" and error["param"].startswith("desired.models.")
    assert len(error["errors"]) == 2
    stale = httpx.put(f"{gateway.url}/admin/state", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10,
                      json={"desired": desired(sims), "base": "0-stale"})
    assert stale.status_code == 409 and stale.json()["error"]["param"] == "base"
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert 'llmops_config_applies_total{result="rejected"} 3.0' in metrics
    assert "llmops_config_generation 1.0" in metrics


async def test_sighup_applies_the_edited_file(sims: tuple[ServerProcess, ServerProcess],
                                              served: Callable[..., tuple[ServerProcess, Path]]) -> None:
    gateway, directory = served(desired(sims))
    write(directory, desired(sims, new_key=True))
    newcomer = client_for(gateway, NEW)
    with pytest.raises(openai.AuthenticationError):  # the watch is off: nothing happens by itself
        await newcomer.models.list()
    gateway.signal(signal.SIGHUP)

    async def works() -> bool:
        try:
            await newcomer.models.list()
        except openai.AuthenticationError:
            return False
        return True

    await eventually(works, within_s=10)
    assert state(gateway)["generation"] == 2


async def test_the_file_watch_applies_an_edit_and_reports_what_needs_a_restart(
        sims: tuple[ServerProcess, ServerProcess], served: Callable[..., tuple[ServerProcess, Path]]) -> None:
    gateway, directory = served(desired(sims, watch_s=0.2))
    edited = desired(sims, serve_from="b", watch_s=0.2)
    edited["reconcile"]["expected_nodes"] = [{"name": "gpu", "labels": {"gpu": "a100"}}]
    edited["backends"].append({"name": "dead", "base_url": "http://127.0.0.1:9/v1"})  # nothing listens there
    edited["models"].append({"name": "sim-dead", "deployments": [{"backend": "dead"}]})
    write(directory, edited)
    (directory / "30-restart.yaml").write_text(yaml.safe_dump({"server": {"max_body_bytes": 4096}}))
    user = client_for(gateway, USER)

    async def served_by_b() -> bool:
        reply = await user.chat.completions.create(model="sim-chat", messages=[{"role": "user", "content": "x"}])
        return reply.system_fingerprint == "sim-b"

    await eventually(served_by_b, within_s=10)
    report = state(gateway)
    assert report["restart_required"] == ["server.max_body_bytes"]
    states = {(r["kind"], r["name"]): r for r in report["resources"]}
    assert states[("node_labels", "gpu")]["state"] == "failed"
    assert "no node plane" in states[("node_labels", "gpu")]["reason"]
    assert states[("backend", "b")]["state"] == "ready" and states[("model", "sim-chat")]["state"] == "ready"
    assert states[("backend", "dead")]["state"] == "failed" and "health check" in states[("backend", "dead")]["reason"]
    assert states[("model", "sim-dead")]["state"] == "failed"
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert 'llmops_resource_ready{kind="backend",name="dead"} 0.0' in metrics
    assert 'llmops_resource_ready{kind="backend",name="b"} 1.0' in metrics
    assert "llmops_config_restart_required 1.0" in metrics


def test_diff_prints_what_would_change(sims: tuple[ServerProcess, ServerProcess],
                                       served: Callable[..., tuple[ServerProcess, Path]], tmp_path: Path) -> None:
    gateway, directory = served(desired(sims))
    same = llmops(gateway, "diff", "-f", str(directory))
    assert (same.returncode, same.stdout) == (0, ""), same.stderr
    changed = desired(sims, serve_from="b", rule=CLOSED_RULE, new_key=True)
    changed["auth"]["static_keys"] = [k for k in changed["auth"]["static_keys"] if k["key_id"] != "user"]
    changed["backends"].append({"name": "c", "base_url": "http://127.0.0.1:9/v1"})
    changed["redis"] = {"url": "redis://127.0.0.1:9/0"}
    other = tmp_path / "other"
    write(other, changed)
    diff = llmops(gateway, "diff", "-f", str(other))
    assert diff.returncode == 1, diff.stderr
    assert diff.stdout.splitlines() == [
        "+ backend/c",
        "+ key/added",
        "- key/user",
        "~ model/sim-chat",
        "~ policy/modules/rotate.rego",
        "! redis.url (needs a restart)",
    ]
    assert "sk-" not in diff.stdout  # names, never secrets
    assert state(gateway)["generation"] == 1  # a diff applies nothing
    write(other, {"models": [{"name": "m", "deployments": [{"backend": "nowhere"}]}]})
    invalid = llmops(gateway, "diff", "-f", str(other))
    assert invalid.returncode == 2 and "unknown backend 'nowhere'" in invalid.stderr
