"""``count_tokens``: the gateway's estimate of a Messages request's input tokens.

The gateway serves many model families, each with its own tokenizer, and has none of them; it counts
the way its rate limits and router estimate prompts (``middleware/limits/tokens.py``,
``routers/needs.py``): **one token per 4 characters**, rounded up, of everything the model reads —
the system prompt, text blocks, tool results, each ``tool_use`` input and each tool definition (name,
description, ``input_schema``) as compact JSON — plus **3 tokens per message** for the turn markers
and **1,600 per image** (images are not decoded; 1,600 is what Anthropic bills an image at the largest
size it takes without resizing, so the estimate errs high). The same request always gives the same
count, and adding text never lowers it.
"""

from __future__ import annotations

import orjson

from gateway.http.messages.request import system_text
from gateway.http.messages.schema import (
    Block,
    ImageBlock,
    MessagesInput,
    TextBlock,
    ToolDef,
    ToolResultBlock,
    ToolUseBlock,
)

CHARS_PER_TOKEN = 4
PER_MESSAGE = 3
PER_IMAGE = 1600


def count_input_tokens(inp: MessagesInput) -> int:
    chars = len(system_text(inp.system)) + sum(_tool_chars(t) for t in inp.tools or ())
    images = 0
    for message in inp.messages:
        if isinstance(message.content, str):
            chars += len(message.content)
            continue
        for block in message.content:
            block_chars, block_images = _block(block)
            chars += block_chars
            images += block_images
    return -(-chars // CHARS_PER_TOKEN) + PER_MESSAGE * len(inp.messages) + PER_IMAGE * images


def _block(block: Block) -> tuple[int, int]:
    """(characters, images) of one content block."""
    if isinstance(block, TextBlock):
        return len(block.text), 0
    if isinstance(block, ImageBlock):
        return 0, 1
    if isinstance(block, ToolUseBlock):
        return len(block.name) + len(orjson.dumps(block.input)), 0
    if isinstance(block, ToolResultBlock):
        if isinstance(block.content, list):
            parts = [_block(b) for b in block.content]
            return sum(c for c, _ in parts), sum(i for _, i in parts)
        return len(block.content or ""), 0
    return 0, 0  # thinking: not read again by the model


def _tool_chars(tool: ToolDef) -> int:
    return len(tool.name) + len(tool.description or "") + len(orjson.dumps(tool.input_schema or {}))
