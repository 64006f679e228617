"""Hubness correction for mixed-language candidate lists, measured against the query's language.

In a high-dimensional space some texts ("hubs") sit close to very many others and turn up near the top
for queries they do not answer. With one language that costs little, but in an index of several
languages a hub wins over the translation a query asks for: on the parallel set's training items, most
wrong first hits of Russian queries seeking English were unrelated *Kazakh* sentences, which sit nearer
to Russian text in general than English text does. CSLS (Lample, Conneau et al., "Word translation
without parallel data", ICLR 2018) lowers each candidate's score by its mean cosine to its nearest
neighbours. Here the neighbours are taken among the passages *in the query's language*: how near a
candidate sits to that language's texts in general is exactly the advantage it has over the right answer
for this query, whatever the candidate's own language. (Neighbours taken over the whole index, tried
first, helped sentence lookup but cost Russian questions over Russian and English paragraphs 0.019
nDCG@10 on XQuAD-R: a paragraph's own translation counts as a neighbour there.)

Applied only when the leading candidates span more than one language (a one-language list keeps its
plain cosines), to the first ``RERANKED`` candidates, where the order matters and the cost stays small.
The weight is fitted on training data (``scimatch eval crosslingual --fit-hubness``: the best sentence
lookup among the weights that do not cost question-to-paragraph search) and shipped beside the
same-language bias in ``scimatch/data/centroids/<model>.json``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scimatch.engine.vector import FaissIndex

NEIGHBOURS = 4
SIBLINGS = 4  # extra neighbours drawn, so a candidate's own other passages can be left out
RERANKED = 20


def hubness(vector: FaissIndex, pids: list[int], language_pids: np.ndarray,
            document_of: Callable[[list[int]], dict[int, int]]) -> np.ndarray:
    """Mean cosine of each passage to its ``NEIGHBOURS`` nearest passages among ``language_pids`` that belong
    to other documents (a long record's own passages overlap it and say nothing about hubness); 0 where a
    passage is gone or the language has no other passages. ``document_of`` maps passage ids to documents."""
    out = np.zeros(len(pids), dtype=np.float32)
    rows: list[np.ndarray] = []
    present: list[int] = []
    for i, pid in enumerate(pids):
        try:
            rows.append(vector.index.reconstruct(int(pid)))
        except RuntimeError:  # removed since the candidates were drawn
            continue
        present.append(i)
    if not present or len(language_pids) == 0:
        return out
    scores, found = vector.search(np.stack(rows), NEIGHBOURS + SIBLINGS, language_pids)
    documents = document_of([int(p) for p in found.ravel() if p >= 0] + [int(pids[i]) for i in present])
    for at, i in enumerate(present):
        own = documents.get(int(pids[i]))
        others = [s for s, p in zip(scores[at], found[at], strict=True)
                  if p >= 0 and documents.get(int(p)) not in (None, own)]
        out[i] = float(np.mean(others[:NEIGHBOURS])) if others else 0.0
    return out


def correct(hits: list[tuple[int, float, int]], vector: FaissIndex, language_pids: np.ndarray,
            document_of: Callable[[list[int]], dict[int, int]], weight: float) -> list[tuple[int, float, int]]:
    """(doc, score, pid) best first -> the same with the first ``RERANKED`` rescored and re-sorted."""
    if weight <= 0 or not hits:
        return hits
    head, tail = hits[:RERANKED], hits[RERANKED:]
    penalty = hubness(vector, [pid for _, _, pid in head], language_pids, document_of)
    rescored = [(doc, score - weight * float(h), pid) for (doc, score, pid), h in zip(head, penalty, strict=True)]
    rescored.sort(key=lambda hit: (-hit[1], hit[0]))
    # The rest take the head's largest penalty, so every score still reads in list order (fusion uses them).
    most = weight * float(penalty.max())
    return rescored + [(doc, score - most, pid) for doc, score, pid in tail]
