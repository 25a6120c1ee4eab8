"""The thinnest useful OpenAI chat proxy: a reference row for bench/core_bench.py.

Starlette on uvicorn (uvloop + httptools, no access log) with one shared aiohttp client session.
It reads the body, picks the upstream base_url by the JSON "model", forwards the raw bytes and
relays the answer (whole for non-stream, chunk by chunk for "stream": true). No auth, no
validation, no metrics, no logs: whatever a real gateway costs on top of this is its own work.

    python bench/thin_proxy.py --port 8081 \
        --route bench-chat=http://127.0.0.1:8090/v1 --route bench-stream=http://127.0.0.1:8090/sse/v1
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route


def build_app(routes: dict[str, str]) -> Starlette:
    session: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        nonlocal session
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=300, ttl_dns_cache=None)
        session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                        headers={"Content-Type": "application/json"})
        try:
            yield
        finally:
            await session.close()

    async def chat(request: Request) -> Response:
        assert session is not None
        body = await request.body()
        payload = orjson.loads(body)
        base = routes.get(payload.get("model", ""))
        if base is None:
            return JSONResponse({"error": {"message": "unknown model", "type": "invalid_request_error"}}, 404)
        url = base + "/chat/completions"
        if not payload.get("stream"):
            async with session.post(url, data=body) as upstream:
                data = await upstream.read()
                return Response(data, upstream.status, media_type="application/json")
        upstream = await session.post(url, data=body)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.content.iter_any():
                    yield chunk
            finally:
                upstream.release()

        return StreamingResponse(relay(), upstream.status, media_type="text/event-stream")

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/healthz", healthz)], lifespan=lifespan)


def parse_routes(items: list[str]) -> dict[str, str]:
    routes = {}
    for item in items:
        model, sep, base = item.partition("=")
        if not sep:
            raise SystemExit(f"--route wants MODEL=BASE_URL, got {item!r}")
        routes[model] = base.rstrip("/")
    return routes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--route", action="append", default=[], metavar="MODEL=BASE_URL",
                        help="public model name to an OpenAI base_url (repeatable)")
    args = parser.parse_args()
    app = build_app(parse_routes(args.route))
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
