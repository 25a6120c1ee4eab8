"""``POST /v1/completions`` (legacy text completions): prompt(s), echo, n, stop, max_tokens, SSE."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from simulator.chat import usage
from simulator.pipeline import SimCall
from simulator.streaming import SSE_DONE, json_answer, sse_data, stream_answer
from simulator.text import answer_text, count_tokens, pieces, token_logprob, truncate
from simulator.validate import bad, opt_bool, opt_dict, opt_int, req_str, stop_list
from simulator.wire import JSONObject, new_id, now


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    model: str
    prompts: tuple[str, ...]
    n: int
    echo: bool
    stream: bool
    include_usage: bool
    stops: tuple[str, ...]
    max_tokens: int | None
    logprobs: int | None
    seed: int


@dataclass(frozen=True, slots=True)
class TextChoice:
    index: int
    prompt: str
    text: str
    finish_reason: str


def _prompts(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return (" ".join(map(str, value)),)
    if isinstance(value, list) and value and all(isinstance(v, str | list) for v in value):
        return tuple(v if isinstance(v, str) else " ".join(map(str, v)) for v in value)
    raise bad("prompt", "'prompt' must be a string, an array of strings or an array of token arrays")


def parse_completion(body: dict[str, Any]) -> CompletionRequest:
    return CompletionRequest(
        model=req_str(body, "model"),
        prompts=_prompts(body.get("prompt")),
        n=opt_int(body, "n", 1, 1, 16) or 1,
        echo=opt_bool(body, "echo", False),
        stream=opt_bool(body, "stream", False),
        include_usage=opt_bool(opt_dict(body, "stream_options"), "include_usage", False),
        stops=stop_list(body, "stop"),
        max_tokens=opt_int(body, "max_tokens", None, 0, 1 << 31),
        logprobs=opt_int(body, "logprobs", None, 0, 5),
        seed=opt_int(body, "seed", 0, -(1 << 63), (1 << 64) - 1) or 0,
    )


def build_choices(req: CompletionRequest) -> list[TextChoice]:
    out = []
    for p, prompt in enumerate(req.prompts):
        for j in range(req.n):
            cut = truncate(answer_text(prompt, seed=req.seed, index=j), req.stops, req.max_tokens)
            out.append(
                TextChoice(p * req.n + j, prompt, " " + cut.text if cut.text else "", cut.finish_reason)
            )
    return out


def _legacy_logprobs(text: str, top: int | None) -> JSONObject | None:
    if top is None:
        return None
    tokens = pieces(text)
    entries = [token_logprob(t, top) for t in tokens]
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    return {
        "tokens": tokens,
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [{a["token"]: a["logprob"] for a in e["top_logprobs"]} for e in entries],
        "text_offset": offsets,
    }


def _usage(req: CompletionRequest, choices: list[TextChoice]) -> JSONObject:
    prompt_tokens = sum(count_tokens(p) for p in req.prompts)
    return usage(prompt_tokens, sum(count_tokens(c.text) for c in choices))


def _meta(req: CompletionRequest, fingerprint: str) -> JSONObject:
    return {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": now(),
        "model": req.model,
        "system_fingerprint": fingerprint,
    }


def completion_body(req: CompletionRequest, choices: list[TextChoice], fingerprint: str) -> JSONObject:
    def text_of(c: TextChoice) -> str:
        return c.prompt + c.text if req.echo else c.text

    wire = [
        {
            "index": c.index,
            "text": text_of(c),
            "logprobs": _legacy_logprobs(text_of(c), req.logprobs),
            "finish_reason": c.finish_reason,
        }
        for c in choices
    ]
    return {**_meta(req, fingerprint), "choices": wire, "usage": _usage(req, choices)}


def _choice_pieces(req: CompletionRequest, choice: TextChoice) -> Iterator[tuple[str, str | None]]:
    if req.echo:
        yield choice.prompt, None
    for piece in pieces(choice.text):
        yield piece, None
    yield "", choice.finish_reason


def stream_chunks(req: CompletionRequest, choices: list[TextChoice], fingerprint: str) -> Iterator[bytes]:
    meta = _meta(req, fingerprint)
    extra: JSONObject = {"usage": None} if req.include_usage else {}
    for choice in choices:
        for text, finish in _choice_pieces(req, choice):
            wire = {"index": choice.index, "text": text, "logprobs": None, "finish_reason": finish}
            yield sse_data({**meta, "choices": [wire], **extra})
    if req.include_usage:
        yield sse_data({**meta, "choices": [], "usage": _usage(req, choices)})
    yield SSE_DONE


async def create_completion(call: SimCall) -> Response:
    req = parse_completion(call.body)
    choices = build_choices(req)
    fingerprint = f"sim-{call.state.behaviour.name}"
    if req.stream:
        return stream_answer(stream_chunks(req, choices, fingerprint), call.overrides)
    return json_answer(completion_body(req, choices, fingerprint), call.overrides)
