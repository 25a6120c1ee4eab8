"""The agent loop: model step → server-side tool calls on nodes → ``tool`` messages → next step.

It stops at an answer, at a client-side tool call (handed back to the client, server-side calls of
that message dropped and traced), or at a limit: the last allowed step is sent with
``tool_choice: "none"`` (so the model must answer); running out of time is a 504 and out of budget
a 429. For a client that asked for a stream every step is requested as one: the step that answers
is relayed as it arrives (``stream_step.py``); steps that call tools are read whole. An answer that
ends the loop any other way (a client-side call, the step limit) is sent as SSE built from it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.kernel.chain import Handler
from gateway.kernel.context import Reply, Usage
from gateway.kernel.errors import QuotaExceeded, UpstreamError, UpstreamTimeout
from middleware.tools.calls import CallState, ToolCalls
from middleware.tools.pricing import Price
from middleware.tools.sse import completion_chunks, sse_stream
from middleware.tools.stream_step import AnswerRelay, Assembler, Event, kind_of, sse_events
from middleware.tools.trace import CallTrace, StepTrace, trace_json


@dataclass(slots=True)
class LoopRun:
    state: CallState
    base: dict[str, Any]
    price: Price
    messages: list[Any]
    steps: list[StepTrace] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    @property
    def cost_usd(self) -> float:
        return self.price.cost(self.usage)

    @property
    def model_steps(self) -> int:
        """Steps that asked the model (a step 0 holds the calls a request approved before the loop)."""
        return sum(1 for step in self.steps if step.step > 0)


class AgentLoop:
    def __init__(self, calls: ToolCalls, steps_header: str) -> None:
        self._calls = calls
        self._header = steps_header

    async def run(self, run: LoopRun, call_next: Handler, wants_stream: bool, include_usage: bool) -> Reply:
        options = run.state.options
        for step in range(1, options.max_steps + 1):
            completion = await self._model_step(
                run, call_next, step, last=step == options.max_steps, stream=wants_stream, include_usage=include_usage
            )
            if isinstance(completion, Reply):
                return completion
            message = completion["choices"][0].get("message") or {}
            calls = message.get("tool_calls") or []
            server = [c for c in calls if run.state.offer.is_server(_name(c))]
            if not server or len(server) < len(calls) or step == options.max_steps:
                _hand_back(run, message, completion["choices"][0], server)
                return self._final(run, completion, wants_stream, include_usage)
            self._check_budget(run)
            run.messages.append(message)
            done = await self._calls.run_step(run.state, step, server)
            run.steps[-1].calls = [p.trace for p in done]
            run.messages += [{"role": "tool", "tool_call_id": p.trace.id, "content": p.content} for p in done]
        raise AssertionError("unreachable")  # pragma: no cover

    async def _model_step(
        self, run: LoopRun, call_next: Handler, step: int, *, last: bool, stream: bool, include_usage: bool
    ) -> dict[str, Any] | Reply:
        ctx = run.state.ctx
        ctx.body = {**run.base, "messages": run.messages}
        if last:
            ctx.body["tool_choice"] = "none"
        if stream:
            ctx.body.update(stream=True, stream_options={"include_usage": True})
        ctx.stream = stream
        started = time.perf_counter()
        try:
            async with asyncio.timeout(max(run.state.deadline - time.monotonic(), 0.001)):
                reply = await call_next(ctx)
                if reply.status != 200:
                    return reply
                if reply.stream is not None:
                    outcome = await self._read_stream(run, reply, step, started, include_usage)
                    if isinstance(outcome, Reply):
                        return outcome
                    return self._account(run, outcome, step, started)
        except TimeoutError:
            raise UpstreamTimeout(
                f"The agent loop hit its time limit ({run.state.options.max_time_s:g} s) at step {step}.",
                code="tool_loop_time_limit",
            ) from None
        return self._account(run, _completion(reply.body), step, started)

    async def _read_stream(
        self, run: LoopRun, reply: Reply, step: int, started: float, include_usage: bool
    ) -> dict[str, Any] | Reply:
        """The answer as a relayed stream, or a tool-calling step assembled from its chunks."""
        assert reply.stream is not None
        events = sse_events(reply.stream)
        assembled, buffered = Assembler(), list[Event]()
        async for event in events:
            buffered.append(event)
            if event[1] is not None:
                assembled.add(event[1])
            kind = kind_of(event[1])
            if kind == "answer":
                return self._relay(run, buffered, events, step, started, include_usage)
            if kind == "tools":
                break
        async for _, doc in events:
            if doc is not None:
                assembled.add(doc)
        return assembled.completion()

    def _relay(self, run: LoopRun, buffered: list[Event], rest: AsyncIterator[Event], step: int, started: float,
               include_usage: bool) -> Reply:
        ctx = run.state.ctx
        run.steps.append(StepTrace(step, round((time.perf_counter() - started) * 1000, 2), None))

        def trace(finish: str | None) -> dict[str, Any]:
            run.steps[-1].finish_reason = finish
            return {"steps": run.model_steps, "trace": trace_json(run.steps)}

        def done(total: Usage) -> None:
            ctx.usage = total

        relay = AnswerRelay(buffered, rest, include_usage, run.usage, trace, done)
        headers = {self._header: str(run.model_steps)}
        return Reply(stream=relay.stream(), media_type="text/event-stream", headers=headers)

    def _account(self, run: LoopRun, completion: dict[str, Any], step: int, started: float) -> dict[str, Any]:
        run.usage = _add(run.usage, Usage.from_json(completion.get("usage")))
        finish = completion["choices"][0].get("finish_reason")
        run.steps.append(StepTrace(step, round((time.perf_counter() - started) * 1000, 2), finish))
        return completion

    def _check_budget(self, run: LoopRun) -> None:
        limit = run.state.options.max_cost_usd
        if limit is not None and run.cost_usd >= limit:
            raise QuotaExceeded(
                f"The agent loop spent ${run.cost_usd:.6f} of its ${limit:g} budget after {run.model_steps} step(s).",
                code="tool_loop_cost_limit",
            )

    def _final(self, run: LoopRun, completion: dict[str, Any], wants_stream: bool, include_usage: bool) -> Reply:
        ctx = run.state.ctx
        ctx.usage = run.usage
        completion["usage"] = {"prompt_tokens": run.usage.prompt_tokens,
                               "completion_tokens": run.usage.completion_tokens,
                               "total_tokens": run.usage.total_tokens}
        completion["llmops"] = {"steps": run.model_steps, "trace": trace_json(run.steps)}
        headers = {self._header: str(run.model_steps)}
        if wants_stream:
            chunks = completion_chunks(completion, include_usage)
            return Reply(stream=sse_stream(chunks), media_type="text/event-stream", headers=headers)
        return Reply(body=orjson.dumps(completion), headers=headers)


def _hand_back(run: LoopRun, message: dict[str, Any], choice: dict[str, Any], server: list[Any]) -> None:
    """Trace client-side calls; drop server-side calls the loop will not run from the client's message."""
    kept = [c for c in message.get("tool_calls") or [] if not run.state.offer.is_server(_name(c))]
    step = run.steps[-1]
    step.calls = [CallTrace(str(c.get("id", "")), _name(c), "client") for c in kept]
    why = "client-side tool call returned to the client" if kept else "step limit reached"
    step.calls += [CallTrace(str(c.get("id", "")), _name(c), "error", reason=f"not run: {why}") for c in server]
    if not server:
        return
    if kept:
        message["tool_calls"] = kept
    else:
        message.pop("tool_calls", None)
        choice["finish_reason"] = "length"


def _name(call: Any) -> str:
    fn = call.get("function") if isinstance(call, dict) else None
    return str(fn.get("name", "")) if isinstance(fn, dict) else ""


def _completion(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
        if isinstance(value, dict) and value["choices"] and isinstance(value["choices"][0], dict):
            return value
    except (orjson.JSONDecodeError, KeyError, TypeError):
        pass
    raise UpstreamError("The model returned a body the agent loop cannot read.", code="tool_loop_bad_reply")


def _add(total: Usage, more: Usage | None) -> Usage:
    if more is None:
        return total
    return Usage(total.prompt_tokens + more.prompt_tokens, total.completion_tokens + more.completion_tokens,
                 total.total_tokens + more.total_tokens)
