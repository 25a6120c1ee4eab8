"""``http_request`` reads the body up to its output limit however the server chunks it."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from executors.http_tool import http_request
from executors.spec import Grants, Job, Limits

CHUNK = b"a" * 16_384


async def test_a_chunked_body_larger_than_the_limit_is_truncated_to_the_limit() -> None:
    async def dribble(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(40):  # 640 KiB in small writes with pauses: many reads on the client
            await response.write(CHUNK)
            await asyncio.sleep(0.001)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/big", dribble)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/big"
        job = Job(id="o1", tool="http_request", runtime="http", stdin=json.dumps({"url": url}),
                  limits=Limits(output_bytes=300_000), grants=Grants(egress=("127.0.0.1/32",)))
        result = await http_request(job)
    finally:
        await runner.cleanup()
    assert result.exit_code == 0 and result.truncated and result.limit == "output"
    assert len(json.loads(result.stdout)["body"]) == 300_000
