"""Upstream connections that do not go stale: a burst after the backend closed its idle connections
loses nothing (idle connections are dropped before the server's keep-alive; one that was closed
under us is retried once on a fresh connection, and counted)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time

import httpx
import pytest

from tests.conftest import GatewayFactory, SimFactory
from tests.support.configs import sim_config

pytestmark = pytest.mark.integration
BODY = {"model": "sim-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


async def bursts(url: str, count: int, size: int, gap_s: float) -> list[int]:
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        for _ in range(count):
            replies = await asyncio.gather(*(client.post("/v1/chat/completions", json=BODY) for _ in range(size)))
            statuses += [r.status_code for r in replies]
            await asyncio.sleep(gap_s + random.uniform(-0.05, 0.05))
    return statuses


def test_bursts_past_the_backends_keep_alive_lose_nothing(start_sim: SimFactory,
                                                          start_gateway: GatewayFactory) -> None:
    # The backend drops idle connections after 1 s; this gateway keeps them for 30 s (the worst case:
    # every burst finds its pooled connections closed by the server).
    sim = start_sim("--name", "stale", "--keep-alive-s", "1")
    config = sim_config(sim.url, "sim-chat")
    config["backends"][0]["keepalive_s"] = 30  # type: ignore[index]
    gateway = start_gateway(config)
    started = time.monotonic()
    statuses = asyncio.run(bursts(gateway.url, 8, 100, 1.0))
    assert len(statuses) == 800 and statuses.count(200) == 800, {s: statuses.count(s) for s in set(statuses)}
    assert time.monotonic() - started < 60


def test_the_default_keep_alive_is_below_uvicorns() -> None:
    from gateway.kernel.config import BackendSettings

    assert BackendSettings(name="b", base_url="http://h/v1").keepalive_s < 5.0


ANSWERS = {
    "openai": (b'{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
               b'"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],'
               b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'),
    "anthropic": (b'{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text",'
                  b'"text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,'
                  b'"usage":{"input_tokens":1,"output_tokens":1}}'),
}


class ClosesReusedConnections:
    """An upstream that answers the first request on a connection and closes the connection when a
    second one arrives on it: what a server does when its idle timer fires as the request lands."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.connections = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the client closed the connection
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            if served:
                writer.close()  # the request on a reused connection: closed, nothing answered
                return
            served += 1
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(len(self.answer)).encode() + b"\r\nconnection: keep-alive\r\n\r\n" + self.answer)
            await writer.drain()


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_request_on_a_connection_the_server_closed_is_retried_once_fresh(start_gateway: GatewayFactory,
                                                                          kind: str) -> None:
    upstream = ClosesReusedConnections(ANSWERS[kind])
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
        upstream.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await server.serve_forever()

    def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(serve())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    config = sim_config(f"http://127.0.0.1:{upstream.port}", "sim-chat")
    config["backends"][0]["type"] = kind  # type: ignore[index]
    config["routing"] = {"max_attempts": 1, "health": {"interval_s": 0}}
    gateway = start_gateway(config)
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        statuses = [client.post("/v1/chat/completions", json=BODY).status_code for _ in range(6)]
    assert statuses == [200] * 6
    metrics = httpx.get(f"{gateway.url}/metrics").text
    retried = [line for line in metrics.splitlines()
               if line.startswith("llmops_upstream_errors_total") and "stale_connection_retried" in line]
    assert retried and float(retried[0].rsplit(" ", 1)[1]) >= 1
    loop.call_soon_threadsafe(lambda: [task.cancel() for task in asyncio.all_tasks(loop)])
