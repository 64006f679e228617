"""Split long texts into overlapping word windows for embedding.

The model sees at most ``max_seq_length`` word pieces (256 for MiniLM, roughly 180-200 English
words); anything past that would be silently truncated, so long texts are cut into passages and
a document's vector score is its best passage (MaxP, Dai & Callan, SIGIR 2019).
"""

from __future__ import annotations


def split_passages(text: str, words_per_passage: int = 200, overlap: int = 30) -> list[str]:
    """Windows of ``words_per_passage`` words stepping by ``words_per_passage - overlap``.

    Texts up to twice the window (an abstract, a project objective: CORDIS's longest is ~570 words,
    its median ~280) stay one passage: the model reads their first ~200 words, as any single-vector
    engine does, and indexing costs one encode per record. Longer texts (papers, PDFs, proposals)
    are split. A short last window is merged into the previous one, so no passage is a stray tail.
    """
    words = text.split()
    if not words:
        return [""]
    if len(words) <= 2 * words_per_passage:
        return [" ".join(words)]
    step = max(1, words_per_passage - overlap)
    passages: list[str] = []
    start = 0
    while start < len(words):
        end = start + words_per_passage
        if len(words) - end < words_per_passage // 2:
            end = len(words)
        passages.append(" ".join(words[start:end]))
        if end >= len(words):
            break
        start += step
    return passages
