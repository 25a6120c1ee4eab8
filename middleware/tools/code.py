"""Code mode: the ``code`` tool runs a Python script on a node whose calls to the request's other tools
come back here, one at a time, and are run as the model's own calls would be.

``for_offer`` gives ``code`` the description the model sees: the other server-side tools offered in the
same request, with their parameters. ``InnerCalls`` answers one code job's calls (``executors/inner.py``):
each is a normal call through ``ToolCalls`` with the request's ``CallState`` (same offer, caller and
deadline), so the policy decides it as if the model had made it (its ``tool_call`` resource carries
``via: "code"``). ``code`` cannot call itself, and only offered tools can be called. Every inner call is
traced in the parent's ``CallTrace.inner`` (a denial with its decision id); the script gets the text a
model would have read, and only what the script prints goes back to the model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import replace
from typing import Any

from executors.inner import MAX_ANSWER_BYTES, InnerAnswer, InnerCall
from gateway.kernel.errors import GatewayError
from middleware.tools.catalog import ToolEntry
from middleware.tools.trace import CallTrace

CODE = "code"
VIA = "code"

# Runs one inner call (an OpenAI tool call dict) and returns the text a model would read, and its trace.
RunOne = Callable[[dict[str, Any], str], Awaitable[tuple[str, CallTrace]]]


def for_offer(entry: ToolEntry, offered: Iterable[ToolEntry]) -> ToolEntry:
    """``entry`` as the model sees it: ``code``'s description also lists the other tools offered with it."""
    if entry.name != CODE:
        return entry
    others = [e for e in offered if e.name != CODE]
    listing = "\n".join(f"- {e.name}({_signature(e)}): {e.spec.description}" for e in others)
    text = f"{entry.spec.description}\nTools the script can call:\n{listing}" if others else (
        f"{entry.spec.description}\nNo other tool is offered with it in this request.")
    return replace(entry, spec=replace(entry.spec, description=text))


def _signature(entry: ToolEntry) -> str:
    properties = entry.spec.parameters.get("properties") or {}
    required = set(entry.spec.parameters.get("required") or ())
    parts = []
    for name, schema in properties.items():
        kind = schema.get("type", "any") if isinstance(schema, dict) else "any"
        parts.append(f"{name}: {kind}" + ("" if name in required else " (optional)"))
    return ", ".join(parts)


class InnerCalls:
    """The ``Answerer`` of one code job: runs each call of its script through ``run_one``, traced in ``parent``."""

    def __init__(self, run_one: RunOne, offered: Collection[str], parent: CallTrace) -> None:
        self._run_one = run_one
        self._offered = offered
        self._parent = parent

    async def __call__(self, call: InnerCall) -> InnerAnswer:
        trace_id = f"{self._parent.id}.{call.call_id}"
        if call.name == CODE or call.name not in self._offered:
            why = ("code cannot call itself" if call.name == CODE
                   else f"tool {call.name!r} is not offered in this request (offered: {self._names()})")
            return self._traced(CallTrace(trace_id, call.name, "error", reason=why), f"error: {why}")
        function = {"name": call.name, "arguments": dict(call.arguments)}
        request = {"id": trace_id, "type": "function", "function": function}
        try:
            content, trace = await self._run_one(request, call.call_id)
        except GatewayError as exc:  # no node, queue or job timeout: the script may carry on
            return self._traced(CallTrace(trace_id, call.name, "error", reason=exc.message), f"error: {exc.message}")
        return self._traced(trace, content)

    def _traced(self, trace: CallTrace, content: str) -> InnerAnswer:
        trace.via = VIA
        self._parent.inner = [*(self._parent.inner or []), trace]
        status = trace.status if trace.status in ("ok", "denied") else "error"
        return InnerAnswer(status, _fit(content))

    def _names(self) -> str:
        return ", ".join(sorted(n for n in self._offered if n != CODE)) or "none"


def _fit(text: str) -> str:
    data = text.encode()
    return text if len(data) <= MAX_ANSWER_BYTES else data[:MAX_ANSWER_BYTES].decode(errors="ignore")
