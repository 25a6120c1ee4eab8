"""An OPA-REST-compatible server over the same regorus engine (no OPA binary exists here).

``POST /v1/data/{path}`` with ``{"input": ...}`` → ``{"result": value}``, or ``{}`` when undefined,
as OPA answers. Runs uvicorn in a thread so gateway processes (and the test loop) can reach it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import orjson
import regorus
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.services.policy.rego import compile_engine, policy_files
from tests.support.processes import ROOT


def opa_app(paths: tuple[str, ...]) -> Starlette:
    engines: list[regorus.Engine] = []  # built in the server thread: a regorus Engine is unsendable

    async def data(request: Request) -> Response:
        if not engines:
            engines.append(compile_engine(policy_files(paths)))
        engine = engines[0]
        body = orjson.loads(await request.body() or b"{}")
        engine.set_input_json(orjson.dumps(body.get("input", {})).decode())
        rule = "data." + request.path_params["path"].strip("/").replace("/", ".")
        try:
            value = engine.eval_rule(rule)
        except RuntimeError:
            value = None
        payload = {} if value is None else {"result": value}
        return Response(orjson.dumps(payload, default=sorted), media_type="application/json")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        engines.clear()  # drop it in the thread that made it

    return Starlette(routes=[Route("/v1/data/{path:path}", data, methods=["POST"])], lifespan=lifespan)


@contextmanager
def running_opa(paths: tuple[str, ...] = (str(ROOT / "config/policies"),)) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(opa_app(paths), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
