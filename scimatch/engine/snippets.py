"""Snippets: the sentence window with the most query terms, matched words wrapped in <mark>."""

from __future__ import annotations

import html
import re
from functools import lru_cache

from scimatch.engine.analysis import WORD_RE, analyze

SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str | None:
    """The index term of one word (None for a stopword); cached, as snippets stem the same words often."""
    stems = analyze(word)
    return stems[0] if stems else None


def snippet(text: str, query: str, max_chars: int = 300) -> tuple[str, list[str]]:
    """(HTML-escaped snippet with <mark> tags, matched words). Falls back to the text's start."""
    terms = set(analyze(query))
    sentences = [s for s in SENTENCE_RE.split(text.strip()) if s]
    if not sentences:
        return "", []
    best, best_hits = 0, -1
    if terms:
        for i, sentence in enumerate(sentences):
            hits = sum(1 for w in WORD_RE.findall(sentence.lower()) if _stem(w) in terms)
            if hits > best_hits:
                best, best_hits = i, hits
    chosen = sentences[best]
    if len(chosen) < max_chars // 2 and best + 1 < len(sentences):
        chosen = chosen + " " + sentences[best + 1]
    if len(chosen) > max_chars:
        chosen = chosen[:max_chars].rsplit(" ", 1)[0] + " …"
    matched: list[str] = []
    pieces: list[str] = []
    last = 0
    for match in WORD_RE.finditer(chosen):
        word = match.group(0)
        if _stem(word.lower()) in terms:
            pieces.append(html.escape(chosen[last:match.start()]))
            pieces.append(f"<mark>{html.escape(word)}</mark>")
            last = match.end()
            if word.lower() not in matched:
                matched.append(word.lower())
    pieces.append(html.escape(chosen[last:]))
    prefix = "… " if best > 0 else ""
    return prefix + "".join(pieces), matched
