"""Instructions aimed at the model, hidden in text a model will read: tool descriptions, their parameters'
descriptions, and (issue 16) retrieved chunks and tool results.

``scan_text`` is a pure function over one text; ``scan_tool`` runs it over a tool's description and every
string in its input schema. Each ``Finding`` names its rule, where it was found and a short excerpt (hidden
characters shown escaped). The rules look for what "tool poisoning" attacks use, not for words: an
ordinary description ("Reads a file", "Returns all environment variables") must not trigger.

======================  =====================================================================
rule                    what it catches
======================  =====================================================================
override                "ignore previous instructions", "new instructions:", "you are now ..."
concealment             "do not tell the user", "the user must not know", "keep this secret"
markup                  ``<IMPORTANT>``, ``<SYSTEM>``, ``[INST]``, ``<|im_start|>``, "SYSTEM:" lines
secrets                 ``~/.ssh``, ``id_rsa``, ``.env``, ``~/.aws/credentials``, "send the private key"
exfiltration            "send/post/upload ... to https://...", curl/wget piping, webhooks
covert_call             "secretly call ...", "call the X tool with the conversation ..."
hidden_unicode          zero-width and other format characters, bidi overrides, tag characters
padding                 long runs of blanks that push text out of a reader's view
======================  =====================================================================
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_EXCERPT = 80
_MAX_TEXT = 100_000  # longer texts are scanned up to here


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    where: str
    excerpt: str

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "where": self.where, "excerpt": self.excerpt}


_VERBS_TELL = r"(?:tell|telling|inform|informing|mention|mentioning|reveal|revealing|notify|notifying|alert|" \
              r"alerting|show|showing|disclose|disclosing|warn|warning|let)"
_WHO = r"(?:the\s+)?(?:user|human|operator|person|customer|requester)s?"
_SECRET_FILES = (r"~/\.ssh|\.ssh/|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\.aws/credentials|\.netrc\b|\.npmrc\b|"
                 r"\.pgpass\b|\.git-credentials\b|/etc/(?:passwd|shadow)\b|\.kube/config\b|\.docker/config\.json|"
                 r"(?:^|[\s'\"`(/])\.env(?:\.[a-z]+)?\b(?!\w)|\bmcp\.json\b|\bcredentials\.json\b")
_SECRET_THINGS = r"(?:private\s+keys?|ssh\s+keys?|api[\s_-]?keys?|access\s+tokens?|passwords?|secrets?|" \
                 r"credentials?|session\s+cookies?)"

RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(pattern, re.I | re.S)) for name, pattern in (
    ("override", r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
                 r"(?:previous|prior|above|earlier|preceding|former|original|other|system|safety)\s+"
                 r"(?:instructions?|prompts?|rules|directions|directives|messages|guidelines|policies)"),
    ("override", r"\b(?:new|updated|real|actual|secret|hidden)\s+(?:system\s+)?instructions?\s*:"),
    ("override", r"\byou\s+are\s+now\s+(?:a|an|in|the|no\s+longer)\b|\bfrom\s+now\s+on,?\s+(?:you|the\s+assistant)\b"),
    ("override", r"\b(?:reveal|print|repeat|output)\s+(?:your|the)\s+system\s+prompt\b"),
    ("concealment", rf"\b(?:do\s+not|don'?t|never|without)\s+{_VERBS_TELL}\s+(?:(?:it|this|that)\s+)?(?:to\s+)?{_WHO}"),
    ("concealment", rf"\b{_WHO}\s+(?:must|should|need|needs|may)\s+(?:not|never)\s+(?:know|see|notice|be\s+told|"
                    r"find\s+out|learn)\b"),
    ("concealment", rf"\b(?:keep|hide)\s+(?:this|it|these|that)\s+(?:secret|hidden|confidential|private)?\s*"
                    rf"(?:from\s+{_WHO})"),
    ("concealment", r"\b(?:this|these)\s+(?:is|are)\s+(?:an?\s+)?(?:implementation\s+detail|not\s+important)s?\s+"
                    r"(?:and\s+)?(?:need|needs|should)\s+not\s+be\s+(?:mentioned|shown|told)"),
    ("markup", r"</?\s*(?:important|system|instructions?|assistant|hidden|critical|system[-_ ]?prompt|"
               r"override)\s*>"),
    ("markup", r"\[/?(?:inst|system|sys)\]|<<\s*/?sys\s*>>|<\|(?:im_start|im_end|system|endoftext|start_header_id)\|>"),
    ("markup", r"(?:^|\n)\s*#*\s*(?:system|assistant|developer)\s*(?:message|prompt)?\s*:\s"),
    ("secrets", _SECRET_FILES),
    ("secrets", rf"\b(?:read|cat|open|send|upload|include|attach|pass|copy|collect|extract|exfiltrate|leak|dump)\s+"
                rf"(?:the\s+|all\s+|any\s+|your\s+|their\s+|its\s+)?(?:contents?\s+of\s+(?:the\s+)?)?"
                rf"(?:user'?s\s+)?{_SECRET_THINGS}\s+(?:to|into|in|as|with)\b"),
    ("exfiltration", r"\b(?:send|post|upload|forward|transmit|exfiltrate|leak|report|submit|relay|beacon)\w*\b"
                     r"[^.\n]{0,80}?\b(?:to|at|via)\s+(?:https?://|ftp://|wss?://|\S+@\S+\.\w+)"),
    ("exfiltration", r"\b(?:curl|wget|nc|netcat)\s+[^\n]{0,80}(?:https?://|\|\s*(?:sh|bash)|-d\s|--data)"),
    ("exfiltration", rf"\b(?:append|add|include|embed|encode|put)\s+[^.\n]{{0,40}}?(?:{_SECRET_THINGS}|"
                     r"conversation|chat\s+history|previous\s+messages|system\s+prompt|user'?s\s+(?:messages|data))"
                     r"[^.\n]{0,40}?\b(?:to|in|into)\s+(?:the\s+|an?\s+)?(?:url|query|link|image|markdown)"),
    ("covert_call", r"\b(?:secretly|covertly|silently|quietly|discreetly|invisibly|stealthily)\s+(?:also\s+)?"
                    r"(?:call|invoke|use|run|execute|send|read|pass|forward|include|upload|fetch|add|copy)\b"),
    ("covert_call", r"\b(?:call|invoke|use|run|execute)\b[^.\n]{0,60}\bwithout\s+(?:asking|telling|informing|"
                    r"notifying|confirming|mentioning|showing)\b"),
    ("covert_call", r"\b(?:call|invoke|use|run)\s+(?:the\s+)?[\w.-]+\s+tool\b[^.\n]{0,60}\b(?:with|passing|"
                    r"including)\s+(?:the\s+|all\s+)?(?:conversation|chat\s+history|previous\s+messages|"
                    r"system\s+prompt|user'?s\s+(?:messages|data|files|credentials))"),
    ("covert_call", r"\bwhen(?:ever)?\s+(?:the\s+)?(?!this\b)[\w.-]+(?:\s+tool)?\s+is\s+(?:called|invoked|used|run)\b"
                    r"[^.\n]{0,60}?\b(?:change|set|replace|redirect|add|include|send|copy|forward|make\s+sure)\b"),
    ("covert_call", r"\b(?:before|after|instead\s+of)\s+(?:using|calling|answering|responding)\b[^.\n]{0,40}"
                    r"\b(?:always|must|first)\s+(?:call|invoke|use|run|read|send)\b[^.\n]{0,40}"
                    rf"(?:{_SECRET_THINGS}|{_SECRET_FILES}|https?://)"),
))
_PADDING = re.compile(r"[ \t\u00a0]{48,}|(?:[ \t]*\n){12,}")


def hidden(ch: str) -> bool:
    """Format characters (zero-width, bidi controls, tags) and other invisible code points."""
    return unicodedata.category(ch) == "Cf" or ch in "\u115f\u1160\u3164\uffa0" or 0xE0000 <= ord(ch) <= 0xE007F


def scan_text(text: str, where: str = "text") -> tuple[Finding, ...]:
    """Every rule that ``text`` triggers, once per rule (the first match's excerpt)."""
    text = text[:_MAX_TEXT]
    found: dict[str, Finding] = {}
    invisible = [i for i, ch in enumerate(text) if hidden(ch)]
    if invisible:
        found["hidden_unicode"] = Finding("hidden_unicode", where, _excerpt(text, invisible[0], invisible[0] + 1))
    pad = _PADDING.search(text)
    if pad is not None:
        found["padding"] = Finding("padding", where, f"{pad.end() - pad.start()} blank characters")
    plain = normalize(text)
    for rule, pattern in RULES:
        if rule in found:
            continue
        match = pattern.search(plain)
        if match is not None:
            found[rule] = Finding(rule, where, _excerpt(plain, match.start(), match.end()))
    return tuple(found.values())


def scan_tool(description: str, input_schema: Mapping[str, Any]) -> tuple[Finding, ...]:
    """``scan_text`` over the description and every string in the input schema (``where`` is its path)."""
    out = list(scan_text(description, "description"))
    for path, value in strings(input_schema, "inputSchema"):
        out.extend(scan_text(value, path))
    return tuple(out)


def strings(value: Any, path: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """Every string value (and object key) in a JSON document, with its dotted path."""
    if depth > 32:
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield f"{path}.{key} (name)", str(key)
            yield from strings(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for i, item in enumerate(value):
            yield from strings(item, f"{path}[{i}]", depth + 1)


def normalize(text: str) -> str:
    """What the rules read: compatibility forms folded (full-width letters and the like), invisible
    characters dropped (``ig\\u200bnore`` reads ``ignore``), blanks collapsed."""
    folded = unicodedata.normalize("NFKC", text)
    visible = "".join(ch for ch in folded if not hidden(ch))
    return re.sub(r"[ \t\u00a0]+", " ", visible)


def summary(findings: Sequence[Finding]) -> str:
    """One line for a reason or a log: ``scan: override (description: "..."); ...``."""
    return "scan: " + "; ".join(f"{f.rule} ({f.where}: {f.excerpt!r})" for f in findings)


def _excerpt(text: str, start: int, end: int) -> str:
    lo = max(0, start - 20)
    hi = min(len(text), max(end, lo + 1), lo + _EXCERPT)
    shown = "".join(ch if ch.isprintable() and not hidden(ch) else f"\\u{ord(ch):04x}" for ch in text[lo:hi])
    return ("…" if lo > 0 else "") + " ".join(shown.split()) + ("…" if hi < len(text) else "")
