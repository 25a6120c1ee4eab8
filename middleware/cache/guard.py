"""The semantic cache's guard: two prompts may share an answer only if they carry the same values.

An embedding captures the topic and phrasing of a prompt but is nearly blind to the tokens that
carry its *values*: all-MiniLM scores "Convert 10 USD to EUR" against "Convert 10 EUR to USD" at
0.978. So the embedding decides whether two prompts say the same kind of thing, and this
signature decides whether they say it about the same things. The signature is the ordered
sequence of value-bearing tokens:

* literals: numbers (with number words folded to digits), quoted strings, URLs, inline and fenced code;
* polarity: negations (not, no, never, n't, without, except, ...) and comparatives (more, less, before, ...);
* names: tokens written with a capital that are not sentence-initial, upper-case codes (USD, EUR),
  and the direction words (from, to, into, ...) directly before a literal or a name when there are
  two or more values, since they bind roles ("from USD to EUR").

What remains free is everything whose change rarely flips an answer: function words, casing of
sentence-initial words, punctuation, and paraphrase. Being conservative costs only a miss.
"""

from __future__ import annotations

import re

_URL = r"https?://[^\s<>\"'`]+"
_FENCE = r"```.*?```"
_CODE = r"`[^`\n]+`"
_QUOTE = r"\"[^\"\n]+\"|“[^”\n]+”|(?<!\w)'[^'\n]+'(?!\w)"
_NUMBER = r"[-+]?\d+(?:[.,]\d+)*%?"
_WORD = r"[A-Za-z][A-Za-z']*"
_SYMBOL = r"[<>=≠≤≥+*/^-]"
_SENTENCE_END = r"[.!?:\n]"
_TOKENS = re.compile(
    f"(?P<fence>{_FENCE})|(?P<url>{_URL})|(?P<code>{_CODE})|(?P<quote>{_QUOTE})|(?P<number>{_NUMBER})"
    f"|(?P<word>{_WORD})|(?P<symbol>{_SYMBOL})|(?P<end>{_SENTENCE_END})",
    re.DOTALL,
)
NEGATIONS = frozenset({
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "without", "except",
    "unless", "cannot", "cant", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont",
    "shouldnt", "wouldnt", "couldnt", "hasnt", "havent", "hadnt", "mustnt",
})
COMPARATIVES = frozenset({
    "more", "less", "fewer", "most", "least", "greater", "smaller", "larger", "bigger", "higher", "lower",
    "above", "below", "over", "under", "before", "after", "earlier", "later", "increase", "decrease",
    "maximum", "minimum", "max", "min", "first", "last", "best", "worst", "oldest", "newest", "same",
    "different", "only", "all", "any", "every", "each",
})
DIRECTIONS = {"from": "from", "to": "to", "into": "to", "vs": "vs", "versus": "vs", "than": "than", "per": "per"}
NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000",
                     "million": "1000000", "billion": "1000000000", "half": "0.5", "twice": "2x"})


def signature(text: str) -> tuple[str, ...]:
    out: list[str] = []
    pending_direction: str | None = None
    sentence_start = True
    for match in _TOKENS.finditer(text):
        kind, value = match.lastgroup, match.group()
        if kind == "end":
            sentence_start = True
            pending_direction = None
            continue
        token = _significant(kind, value, sentence_start)
        sentence_start = False
        if token is None:
            lowered = value.lower()
            pending_direction = DIRECTIONS.get(lowered) if kind == "word" else None
            continue
        if pending_direction is not None and token[0] in "#\"@$":
            out.append(">" + pending_direction)
        pending_direction = None
        out.append(token)
    return _without_lone_directions(out)


def _without_lone_directions(tokens: list[str]) -> tuple[str, ...]:
    """A direction only binds roles between two or more values; alone it is phrasing."""
    values = sum(1 for t in tokens if t[0] in "#\"@$")
    return tuple(t for t in tokens if values >= 2 or not t.startswith(">"))


def _significant(kind: str | None, value: str, sentence_start: bool) -> str | None:
    if kind in ("fence", "code"):
        return "`" + value.strip("`").strip()
    if kind == "url":
        return "@" + value.rstrip(".,;:!?)").lower()
    if kind == "quote":
        return '"' + value[1:-1].strip().casefold()
    if kind == "number":
        return "#" + value.replace(",", "")
    if kind == "symbol":
        return "~" + value
    return _word(value, sentence_start)


def _word(value: str, sentence_start: bool) -> str | None:
    lowered = value.lower()
    plain = lowered.replace("'", "")
    if plain in NEGATIONS or lowered.endswith("n't"):
        return "!not"
    if lowered in NUMBER_WORDS:
        return "#" + NUMBER_WORDS[lowered]
    if lowered in COMPARATIVES:
        return "^" + lowered
    if len(value) < 2:  # "I", "A"
        return None
    is_code = value.isupper()
    is_name = value[0].isupper() and not sentence_start
    if is_code or is_name:
        return "$" + lowered
    return None
