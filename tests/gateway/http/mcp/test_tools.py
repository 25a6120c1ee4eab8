"""Progress notifications of one MCP tool call: increasing, and the last one complete."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from gateway.http.mcp.tools import Progress


@dataclass
class Session:
    sent: list[tuple[float, float | None, str | None]] = field(default_factory=list)

    async def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        self.sent.append((progress, total, message))


@dataclass
class Context:
    session: Session = field(default_factory=Session)


async def test_a_start_ticks_and_an_end_each_higher_than_the_last() -> None:
    ctx: Any = Context()
    progress = Progress(ctx)
    await progress.send("python: started")
    ticker = asyncio.create_task(progress.every(0.01))
    while len(ctx.session.sent) < 3:
        await asyncio.sleep(0.01)
    ticker.cancel()
    await progress.send("python: ok", last=True)
    sent = ctx.session.sent
    assert sent[0] == (0.0, None, "python: started")
    assert all(message.startswith("running (") for _, _, message in sent[1:-1])
    values = [value for value, _, _ in sent]
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    assert sent[-1][1] == sent[-1][0] and sent[-1][2] == "python: ok"
