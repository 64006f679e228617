"""Snippets: the sentence window with the most query terms, matched words wrapped in <mark>.

Words are found with one regular expression built from the query's stems (a stem is a prefix of
the words it came from, in Snowball's English and Russian stemmers for all but rare cases), then
each candidate word is confirmed by stemming it, so only a handful of words are ever stemmed.
"""

from __future__ import annotations

import bisect
import html
import re
from functools import lru_cache

from scimatch.engine.analysis import analyze

SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str | None:
    """The index term of one word (None for a stopword); cached, as snippets meet the same words often."""
    stems = analyze(word)
    return stems[0] if stems else None


@lru_cache(maxsize=4096)
def _query_pattern(query: str) -> tuple[frozenset[str], re.Pattern[str] | None]:
    terms = frozenset(analyze(query))
    if not terms:
        return terms, None
    prefixes = sorted({t[: max(1, len(t) - 1)] for t in terms}, key=len, reverse=True)
    pattern = r"(?<!\w)(?:" + "|".join(re.escape(p) for p in prefixes) + r")\w*"
    return terms, re.compile(pattern, re.IGNORECASE)


def _matches(text: str, terms: frozenset[str], pattern: re.Pattern[str]) -> list[re.Match[str]]:
    return [m for m in pattern.finditer(text) if _stem(m.group(0).lower()) in terms]


def snippet(text: str, query: str, max_chars: int = 300) -> tuple[str, list[str]]:
    """(HTML-escaped snippet with <mark> tags, matched words). Falls back to the text's start."""
    text = text.strip()
    if not text:
        return "", []
    terms, pattern = _query_pattern(query)
    starts = [0] + [m.end() for m in SENTENCE_END_RE.finditer(text)]
    best = 0
    if pattern is not None:
        counts = [0] * len(starts)
        for match in _matches(text, terms, pattern):
            counts[bisect.bisect_right(starts, match.start()) - 1] += 1
        best = max(range(len(counts)), key=lambda i: (counts[i], -i))
    end = starts[best + 1] if best + 1 < len(starts) else len(text)
    if end - starts[best] < max_chars // 2 and best + 2 < len(starts):
        end = starts[best + 2]
    elif end - starts[best] < max_chars // 2:
        end = len(text)
    chosen = text[starts[best]:end].strip()
    if len(chosen) > max_chars:
        chosen = chosen[:max_chars].rsplit(" ", 1)[0] + " …"
    pieces: list[str] = []
    matched: list[str] = []
    last = 0
    for match in _matches(chosen, terms, pattern) if pattern is not None else []:
        pieces.append(html.escape(chosen[last:match.start()]))
        pieces.append(f"<mark>{html.escape(match.group(0))}</mark>")
        last = match.end()
        if match.group(0).lower() not in matched:
            matched.append(match.group(0).lower())
    pieces.append(html.escape(chosen[last:]))
    prefix = "… " if best > 0 else ""
    return prefix + "".join(pieces), matched
