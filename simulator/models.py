"""``GET /v1/models`` and ``GET /v1/models/{id}`` (any id is answered: the sim serves every name)."""

from __future__ import annotations

from starlette.responses import Response

from simulator.pipeline import SimCall
from simulator.streaming import json_answer
from simulator.wire import JSONObject

MODEL_CREATED = 1_700_000_000


def model_object(model_id: str) -> JSONObject:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": "llmops-sim"}


async def list_models(call: SimCall) -> Response:
    data = [model_object(m) for m in call.state.behaviour.models]
    return json_answer({"object": "list", "data": data}, call.overrides)


async def get_model(call: SimCall) -> Response:
    return json_answer(model_object(call.request.path_params["model_id"]), call.overrides)
