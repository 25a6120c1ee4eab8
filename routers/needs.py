"""What a request needs from a deployment, detected from the endpoint and the body.

Needs and offers are bit masks so that "can this deployment serve it" is one ``&``:
a deployment is eligible when ``needs & ~offers == 0`` and the prompt fits its context window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.kernel.context import RequestContext, Route
from gateway.kernel.responses import as_items, content_text, is_message

TEXT = 1
VISION = 2
AUDIO_INPUT = 4
EMBEDDINGS = 8
IMAGE_GENERATION = 16
SPEECH = 32
TRANSCRIPTION = 64
TOOLS = 128
JSON_MODE = 256
# Not a modality: the legacy /v1/completions protocol, which some backend types (Anthropic) lack.
LEGACY_COMPLETIONS = 512
ALL = 1023

BITS: dict[str, int] = {
    "text": TEXT,
    "vision": VISION,
    "audio_input": AUDIO_INPUT,
    "embeddings": EMBEDDINGS,
    "image_generation": IMAGE_GENERATION,
    "speech": SPEECH,
    "transcription": TRANSCRIPTION,
    "tools": TOOLS,
    "json_mode": JSON_MODE,
    "legacy_completions": LEGACY_COMPLETIONS,
}
MODALITY_BITS = TEXT | VISION | AUDIO_INPUT | EMBEDDINGS | IMAGE_GENERATION | SPEECH | TRANSCRIPTION
CAPABILITY_BITS = TOOLS | JSON_MODE
PROTOCOL_BITS = LEGACY_COMPLETIONS  # given by the backend type, never declared in config

ROUTE_BITS: dict[Route, int] = {
    "chat": TEXT,
    "completions": TEXT | LEGACY_COMPLETIONS,
    "messages": TEXT,
    "responses": TEXT,
    "embeddings": EMBEDDINGS,
    "images": IMAGE_GENERATION,
    "speech": SPEECH,
    "transcriptions": TRANSCRIPTION,
}

_PART_BITS = {"image_url": VISION, "image": VISION, "input_audio": AUDIO_INPUT}
_CODE = re.compile(
    r"```|\bdef \w+\(|\bclass \w+[:(]|\bfunction\s*\w*\(|#include\b|\bimport \w+|=>|\bSELECT\b.+\bFROM\b"
    r"|\b(?:python|javascript|typescript|golang|rust|java|c\+\+|sql|regex|bash|code|function|compile|debug)\b",
    re.IGNORECASE,
)


def mask_of(names: Iterable[str] | None, family: int) -> int:
    """Offers of one family (modalities or capabilities); undeclared offers everything."""
    if names is None:
        return family
    mask = 0
    for name in names:
        mask |= BITS[name]
    return mask


@dataclass(slots=True)
class Needs:
    """One request's requirements. ``tokens`` is a rough prompt+completion estimate (chars / 4)."""

    mask: int
    tokens: int = 0
    text: str = ""


def needs_of(ctx: RequestContext, count_tokens: bool) -> Needs:
    """Detect modality and capability needs; ``count_tokens`` only when some window is declared."""
    mask = ROUTE_BITS[ctx.route]
    body = ctx.body
    if ctx.route == "responses":
        return responses_needs(body, mask)
    if ctx.route != "chat":
        return Needs(mask, _text_tokens(body.get("prompt") or body.get("input")) if count_tokens else 0)
    if body.get("tools"):
        mask |= TOOLS
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        mask |= JSON_MODE
    chars = 0
    last_user = ""
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
            if message.get("role") == "user":
                last_user = content
        elif isinstance(content, list):
            mask, length = _scan_parts(content, mask)
            chars += length
            if message.get("role") == "user":
                last_user = _parts_text(content)
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return Needs(mask, chars // 4 + (limit if isinstance(limit, int) else 0), last_user)


def responses_needs(body: dict[str, Any], mask: int) -> Needs:
    """A Responses request: function tools, a JSON ``text.format``, images among the input parts."""
    if any(isinstance(t, dict) and t.get("type") == "function" for t in body.get("tools") or ()):
        mask |= TOOLS
    if ((body.get("text") or {}).get("format") or {}).get("type") in ("json_object", "json_schema"):
        mask |= JSON_MODE
    chars = len(body.get("instructions") or "")
    last_user = ""
    for item in as_items(body.get("input")):
        content = item.get("content") if is_message(item) else None
        if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "input_image" for p in content):
            mask |= VISION
        text = content_text(content)
        chars += len(text)
        last_user = text if item.get("role") == "user" else last_user
    limit = body.get("max_output_tokens") or 0
    return Needs(mask, chars // 4 + (limit if isinstance(limit, int) else 0), last_user)


def _scan_parts(parts: list[Any], mask: int) -> tuple[int, int]:
    length = 0
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            length += len(text) if isinstance(text, str) else 0
        else:
            mask |= _PART_BITS.get(kind, 0) if isinstance(kind, str) else 0
    return mask, length


def _parts_text(parts: list[Any]) -> str:
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return "\n".join(texts)


def _text_tokens(value: Any) -> int:
    if isinstance(value, str):
        return len(value) // 4
    if isinstance(value, list):
        return sum(len(v) // 4 if isinstance(v, str) else 1 for v in value)
    return 0


def looks_like_code(text: str) -> bool:
    """A cheap rule: code fences, definitions, imports or programming words."""
    return _CODE.search(text) is not None
