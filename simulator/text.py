"""Deterministic answers, whitespace "tokens", stop/length truncation and plausible logprobs."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

FinishReason = Literal["stop", "length"]

PROMPT_WORDS = 30
EXTRA_WORDS = 6
_PIECE = re.compile(r"\s*\S+")
_VOCAB = tuple(
    (
        "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
        "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu "
        "amber basalt cobalt dune ember fjord"
    ).split()
)


@dataclass(frozen=True, slots=True)
class Truncated:
    text: str
    finish_reason: FinishReason
    stop_sequence: str | None = None


def digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def count_tokens(text: str) -> int:
    return len(text.split())


def pieces(text: str) -> list[str]:
    """Stream units: each non-space run with its leading whitespace, so ``"".join(pieces(t)) == t``."""
    return _PIECE.findall(text)


def deterministic_words(*parts: str, count: int = EXTRA_WORDS) -> list[str]:
    return [_VOCAB[b % len(_VOCAB)] for b in digest(*parts)[:count]]


def _media_note(images: int, audio: int) -> str:
    if not images and not audio:
        return ""
    return f" [saw {images} image(s) and {audio} audio part(s)]"


def answer_text(prompt: str, *, seed: int = 0, index: int = 0, images: int = 0, audio: int = 0) -> str:
    """``Simulated answer to: <first 30 prompt words>`` + media note + hash(prompt, seed, index) words."""
    head = " ".join(prompt.split()[:PROMPT_WORDS])
    extra = " ".join(deterministic_words(prompt, str(seed), str(index)))
    return f"Simulated answer to: {head}{_media_note(images, audio)} {extra}."


def _apply_stop(text: str, stops: tuple[str, ...]) -> tuple[str, str | None]:
    hits = [(text.find(s), s) for s in stops if s and s in text]
    if not hits:
        return text, None
    pos, stop = min(hits)
    return text[:pos], stop


def truncate(text: str, stops: tuple[str, ...], max_tokens: int | None) -> Truncated:
    """Cut at the earliest stop string, then at ``max_tokens`` stream pieces."""
    cut, stop = _apply_stop(text, stops)
    units = pieces(cut)
    if max_tokens is not None and len(units) > max_tokens:
        return Truncated("".join(units[:max_tokens]), "length")
    return Truncated(cut, "stop", stop)


def _logprob(*parts: str) -> float:
    fraction = int.from_bytes(digest(*parts)[:4], "big") / 2**32
    return round(math.log(0.35 + 0.65 * fraction), 6)


def token_logprob(token: str, top: int) -> dict[str, Any]:
    """One ``ChatCompletionTokenLogprob``: the chosen token is always the most likely."""
    best = _logprob("lp", token)
    alts = [
        {"token": alt, "logprob": round(best - 1.0 - i, 6), "bytes": list(alt.encode())}
        for i, alt in enumerate(deterministic_words("alt", token, count=max(top - 1, 0)))
    ]
    head = {"token": token, "logprob": best, "bytes": list(token.encode())}
    return {**head, "top_logprobs": ([head, *alts] if top else [])}
