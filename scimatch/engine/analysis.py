"""Text analysis shared by indexing and querying, so both sides always see the same terms.

Words are lower-cased Unicode word runs; Latin-script words get the English Snowball stemmer and
Cyrillic ones the Russian stemmer (PyStemmer). Common English and Russian function words are
dropped, which is what BEIR's BM25 baselines do (Pyserini's default analyzer). Text known to be
Kazakh (the record's or query's language is ``kk``) goes through ``kazakh.py`` instead: one script
(Latin), inflectional endings stripped, Kazakh function words dropped.
"""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

from scimatch.engine import kazakh

WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
CYRILLIC_RE = re.compile(r"[\u0400-\u04FF]")
MAX_TOKEN_CHARS = 64

ENGLISH_STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with"]
)
RUSSIAN_STOPWORDS = frozenset(
    ["и", "в", "во", "не", "что", "он", "на", "я", "с", "со", "как", "а", "то", "все", "она", "так", "его", "но", "да", "ты", "к", "у", "же", "вы", "за", "бы", "по", "только", "ее", "мне", "было", "вот", "от", "меня", "еще", "нет", "о", "из", "ему", "теперь", "когда", "даже", "ну", "вдруг", "ли", "если", "уже", "или", "ни", "быть", "был", "него", "до", "вас", "нибудь", "опять", "уж", "вам", "ведь", "там", "потом", "себя", "ничего", "ей", "может", "они", "тут", "где", "есть", "надо", "ней", "для", "мы", "тебя", "их", "чем", "была", "сам", "чтоб", "без", "будто", "чего", "раз", "тоже", "себе", "под", "будет", "ж", "тогда", "кто", "этот", "того", "потому", "этого", "какой", "совсем", "ним", "здесь", "этом", "один", "почти", "мой", "тем", "чтобы", "нее", "сейчас", "были", "куда", "зачем", "всех", "никогда", "можно", "при", "наконец", "два", "об", "другой", "хоть", "после", "над", "больше", "тот", "через", "эти", "нас", "про", "всего", "них", "какая", "много", "разве", "три", "эту", "моя", "впрочем", "хорошо", "свою", "этой", "перед", "иногда", "лучше", "чуть", "том", "нельзя", "такой", "им", "более", "всегда", "конечно", "всю", "между"]
)
STOPWORDS = ENGLISH_STOPWORDS | RUSSIAN_STOPWORDS
KAZAKH_STOPWORDS = frozenset(kazakh.to_latin(w) for w in
    ["және", "мен", "бен", "пен", "да", "де", "та", "те", "бұл", "ол", "осы", "сол", "үшін", "арқылы", "деген",
     "бойынша", "туралы", "немесе", "бірақ", "ал", "ма", "ме", "ба", "бе", "па", "пе", "ғана", "қана", "еді", "екен",
     "болып", "болды", "болады", "бар", "жоқ", "не", "қандай", "қай", "кім", "қашан", "қалай", "неше", "қанша",
     "нешінші", "мен", "сен", "біз", "сіз", "олар", "бір", "әр", "барлық", "кейін", "дейін", "соң", "сияқты"])
ANALYSIS_VERSION = 2  # 2: Kazakh (kk) texts transliterated to Latin and suffix-stripped


@lru_cache(maxsize=1)
def _stemmers() -> tuple[Stemmer.Stemmer, Stemmer.Stemmer]:
    return Stemmer.Stemmer("english"), Stemmer.Stemmer("russian")


def words(text: str) -> list[str]:
    """Lower-cased word tokens, unstemmed (used for snippets and highlighting)."""
    return [w for w in WORD_RE.findall(text.lower()) if len(w) <= MAX_TOKEN_CHARS]


def analyze(text: str, language: str | None = None) -> list[str]:
    """Index/query terms: words minus stopwords, stemmed by their script's language (or as Kazakh)."""
    if language == "kk":
        return analyze_kazakh(text)
    english, russian = _stemmers()
    latin_words: list[str] = []
    cyrillic_words: list[str] = []
    order: list[tuple[bool, int]] = []
    for word in words(text):
        if word in STOPWORDS:
            continue
        if CYRILLIC_RE.search(word):
            order.append((True, len(cyrillic_words)))
            cyrillic_words.append(word.replace("ё", "е"))
        else:
            order.append((False, len(latin_words)))
            latin_words.append(word)
    latin_stems = english.stemWords(latin_words)
    cyrillic_stems = russian.stemWords(cyrillic_words)
    return [cyrillic_stems[i] if is_cyr else latin_stems[i] for is_cyr, i in order]


def analyze_kazakh(text: str) -> list[str]:
    """Kazakh terms: Latin script, function words dropped, inflectional endings stripped."""
    terms = []
    for word in words(text):
        latin = kazakh.to_latin(word)
        if latin not in KAZAKH_STOPWORDS:
            terms.append(kazakh.stem(latin))
    return terms


def is_topic_stem(stem: str) -> bool:
    """Whether a stem can name a topic: three characters or more and at least one letter (not "11", "x")."""
    return len(stem) >= 3 and any(ch.isalpha() for ch in stem)
