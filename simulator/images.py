"""``POST /v1/images/generations`` and ``GET /_sim/images/{id}.png`` (URL-mode images)."""

from __future__ import annotations

import base64
import re

from starlette.requests import Request
from starlette.responses import Response

from simulator.errors import SimError
from simulator.media import make_png
from simulator.pipeline import SimCall, sim_state
from simulator.streaming import json_answer
from simulator.validate import bad, opt_int, opt_str, req_str
from simulator.wire import now

_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")


def parse_size(size: str) -> tuple[int, int]:
    """``"WxH"`` (or ``"auto"``) -> pixels; the PNG itself is capped at 64x64 by ``make_png``."""
    if size == "auto":
        return 1024, 1024
    match = _SIZE.match(size)
    if not match or not int(match[1]) or not int(match[2]):
        raise bad("size", "'size' must look like '1024x1024'")
    return int(match[1]), int(match[2])


def _image_entry(call: SimCall, png: bytes, url_mode: bool) -> dict[str, str]:
    if not url_mode:
        return {"b64_json": base64.b64encode(png).decode()}
    image_id = call.state.store_image(png)
    return {"url": f"{str(call.request.base_url).rstrip('/')}/_sim/images/{image_id}.png"}


async def create_image(call: SimCall) -> Response:
    prompt = req_str(call.body, "prompt")
    n = opt_int(call.body, "n", 1, 1, 10) or 1
    width, height = parse_size(opt_str(call.body, "size", "1024x1024"))
    mode = opt_str(call.body, "response_format", "b64_json")
    if mode not in ("b64_json", "url"):
        raise bad("response_format", "'response_format' must be 'b64_json' or 'url'")
    images = [make_png(width, height, f"{prompt}\x1f{i}") for i in range(n)]
    data = [_image_entry(call, png, mode == "url") for png in images]
    return json_answer({"created": now(), "data": data}, call.overrides)


async def get_image(request: Request) -> Response:
    png = sim_state(request).images.get(request.path_params["image_id"])
    if png is None:
        raise SimError(404, "No such simulated image.")
    return Response(png, media_type="image/png")
