"""What the simulator reads from a conversation, normalised across OpenAI and Anthropic shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.text import answer_text, count_tokens
from simulator.validate import bad


@dataclass(frozen=True, slots=True)
class Conversation:
    """``tool_result`` is set when the last message carries a tool's output."""

    last_user_text: str
    images: int
    audio: int
    prompt_tokens: int
    tool_result: str | None = None


@dataclass(frozen=True, slots=True)
class Parts:
    text: str
    images: int = 0
    audio: int = 0


_IMAGE_PARTS = frozenset({"image_url", "image", "input_image"})
_AUDIO_PARTS = frozenset({"input_audio", "audio"})


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and isinstance(part.get("text"), str):
        return str(part["text"])
    return ""


def read_parts(content: Any, param: str) -> Parts:
    """Content as a string, ``None`` or a list of typed parts (text / image_url / input_audio ...)."""
    if content is None or isinstance(content, str):
        return Parts(content or "")
    if not isinstance(content, list):
        raise bad(param, f"'{param}' must be a string or an array of content parts")
    kinds = [p.get("type") if isinstance(p, dict) else "text" for p in content]
    text = " ".join(t for t in (_part_text(p) for p in content) if t)
    return Parts(text, sum(k in _IMAGE_PARTS for k in kinds), sum(k in _AUDIO_PARTS for k in kinds))


def _message(msg: Any, index: int) -> tuple[str, Parts]:
    param = f"messages[{index}]"
    if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
        raise bad(param, f"'{param}' must be an object with a 'role'")
    return msg["role"], read_parts(msg.get("content"), f"{param}.content")


def read_chat_messages(messages: list[Any]) -> Conversation:
    """OpenAI chat ``messages``: the prompt is the last user message (else the last message)."""
    parsed = [_message(m, i) for i, m in enumerate(messages)]
    users = [parts for role, parts in parsed if role == "user"]
    last = users[-1] if users else parsed[-1][1]
    tokens = sum(count_tokens(parts.text) for _, parts in parsed)
    role, final = parsed[-1]
    tool_result = final.text.strip() if role in ("tool", "function") else None
    return Conversation(last.text, last.images, last.audio, tokens, tool_result)


def reply_text(conv: Conversation, *, seed: int = 0, index: int = 0) -> str:
    """The plain-text answer: echo a tool result, else the deterministic simulated answer."""
    if conv.tool_result is not None:
        return f"The tool returned: {conv.tool_result}"
    return answer_text(conv.last_user_text, seed=seed, index=index, images=conv.images, audio=conv.audio)
