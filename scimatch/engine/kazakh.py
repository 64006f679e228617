"""Kazakh for the lexical index: one script, light suffix stripping.

Kazakh is written in Cyrillic and, since the 2021 reform, in a Latin alphabet; common analyzers have no
Kazakh stemmer. Words of a Kazakh record or query are transliterated Cyrillic → Latin (the 2021
alphabet, so Latin input meets Cyrillic input on the same terms; Kazakh-only letters keep distinct
Latin forms: ә→ä, ғ→ğ, қ→q, ң→ñ, ө→ö, ұ→ū, ү→ü, һ→h, і→ı) and their inflectional endings (plural,
case, possessive) are stripped, longest first, keeping a stem of at least three letters. Kazakh is
agglutinative, so a word such as "университеттерінің" ("of their universities") carries three endings;
matching the stem "universitet" is what a searcher means.

Why not `kazstem` (PyPI): it needs an HFST/Constraint-Grammar toolchain and apertium-kaz resources
installed outside pip (downloads this machine cannot make) and is GPL-3.0, which this MIT project cannot
bundle. The suffix stripper is measured against plain lower-casing on KazQAD in `scimatch eval crosslingual`.
"""

from __future__ import annotations

CYRILLIC_TO_LATIN = {
    "а": "a", "ә": "ä", "б": "b", "в": "v", "г": "g", "ғ": "ğ", "д": "d", "е": "e", "ё": "io", "ж": "j",
    "з": "z", "и": "i", "й": "i", "к": "k", "қ": "q", "л": "l", "м": "m", "н": "n", "ң": "ñ", "о": "o",
    "ө": "ö", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ұ": "ū", "ү": "ü", "ф": "f", "х": "h",
    "һ": "h", "ц": "ts", "ч": "ch", "ш": "ş", "щ": "şş", "ъ": "", "ы": "y", "і": "ı", "ь": "", "э": "e",
    "ю": "iu", "я": "ia",
}
_TABLE = str.maketrans(CYRILLIC_TO_LATIN)
# Other Latin spellings of the same letters seen in practice (the 2017/2018 alphabets, ASCII fallbacks).
_LATIN_VARIANTS = str.maketrans({"á": "ä", "ǵ": "ğ", "ń": "ñ", "ó": "ö", "ú": "ū", "ý": "ü"})

# Inflectional endings in the Latin spelling, by vowel harmony and the preceding consonant.
SUFFIXES = tuple(sorted({
    # plural
    "lar", "ler", "dar", "der", "tar", "ter",
    # genitive, accusative, dative, locative, ablative, instrumental
    "nyñ", "nıñ", "dyñ", "dıñ", "tyñ", "tıñ", "ny", "nı", "dy", "dı", "ty", "tı",
    "ğa", "ge", "qa", "ke", "na", "ne", "nda", "nde", "da", "de", "ta", "te",
    "nan", "nen", "dan", "den", "tan", "ten", "men", "ben", "pen",
    # possessive
    "ymyz", "ımız", "myz", "mız", "yñyz", "ıñız", "ñyz", "ñız", "sy", "sı", "ym", "ım", "yñ", "ıñ", "y", "ı",
    # "the one in/at"
    "dağy", "degı", "tağy", "tegı", "nağy", "negı",
}, key=len, reverse=True))
MIN_STEM = 3
MAX_STRIPS = 3


def to_latin(word: str) -> str:
    """A lower-cased Kazakh word in the 2021 Latin alphabet (Latin input passes through, normalised)."""
    return word.translate(_TABLE).translate(_LATIN_VARIANTS)


def stem(word: str) -> str:
    """Strip up to three inflectional endings, longest first, never leaving fewer than three letters."""
    for _ in range(MAX_STRIPS):
        for suffix in SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
                word = word[: -len(suffix)]
                break
        else:
            break
    return word
