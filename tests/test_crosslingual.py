"""Kazakh, Russian and English: language detection on real records, the Kazakh analyzer on KazQAD text,
and cross-lingual search with the multilingual model over aligned sentences of ``parallel/``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import DATA

from scimatch.engine.analysis import analyze
from scimatch.engine.engine import Engine
from scimatch.engine.filters import Filters
from scimatch.engine.fusion import fuse
from scimatch.engine.kazakh import to_latin
from scimatch.errors import IndexMismatchError
from scimatch.models import Encoder, get_spec
from scimatch.records import OrganizationRef, Participant, Project, Publication
from scimatch.settings import Settings

KAZQAD = DATA / "kazqad" / "corpus.jsonl"
LANGS = ("kk", "ru", "en")


def kazqad_passages(n: int) -> list[str]:
    with KAZQAD.open(encoding="utf-8") as handle:
        return [json.loads(next(handle))["text"] for _ in range(n)]


def aligned(parallel_rows: list[dict], start: int, n: int, language: str | None = "from data") -> list[Publication]:
    rows = parallel_rows[start:start + n]
    return [Publication(id=f"{lang}:{r['id']}", text=r[lang], language=lang if language == "from data" else language)
            for r in rows for lang in LANGS]


def test_kazakh_in_latin_script_meets_kazakh_in_cyrillic():
    for passage in kazqad_passages(5):
        assert analyze(to_latin(passage.lower()), "kk") == analyze(passage, "kk")


def test_kazakh_analyzer_joins_inflected_forms_that_plain_words_keep_apart():
    """The same stem in different cases and numbers within real KazQAD passages becomes one term."""
    text = " ".join(kazqad_passages(40))
    words = set(w for w in text.lower().split() if w.isalpha())
    stems = {analyze(w, "kk")[0] for w in words if analyze(w, "kk")}
    assert len(stems) < 0.8 * len(words)
    assert analyze("университеттерінің", "kk") == analyze("университет", "kk") == ["universitet"]


def test_a_kazakh_need_meets_kazakh_documents_in_the_partner_evidence(make_engine, parallel_rows):
    """Partner matching analyses a Kazakh need as Kazakh, as search does: its key terms (the BM25 query, and the
    words highlighted in the evidence passages) are the index's Kazakh terms, and BM25 finds the Kazakh record
    it came from."""
    engine = make_engine(aligned(parallel_rows, 0, 10))
    row = parallel_rows[3]
    fused, terms = engine.partners.evidence_pool(row["kk"], frozenset(), mode="bm25")
    assert set(terms.split()) <= set(analyze(row["kk"], "kk")), terms
    assert sum(term.isalpha() for term in terms.split()) >= 3, terms  # words, not only the numbers both share
    own = engine.catalog.get(f"kk:{row['id']}").rowid
    assert fused and fused[0].key == own and fused[0].lexical_score is not None



def test_a_kazakh_institute_is_matched_to_enterprises_in_kazakh(make_engine, parallel_rows):
    """The reverse direction analyses a Kazakh institute's documents as Kazakh too: its key terms are the index's
    Kazakh terms and BM25 brings back the Kazakh projects it shares with an enterprise (participants: real Kazakh
    CORDIS organisations)."""
    university = OrganizationRef(id="953676162", name="NAZARBAYEV UNIVERSITY", kind="university", country="KZ")
    company = OrganizationRef(id="952778330", name="JSC National Agency for Technological Development",
                              kind="enterprise", country="KZ")
    rows = parallel_rows[:6]
    records = [Project(id=f"kk:{r['id']}", text=r["kk"], language="kk",
                       participants=[Participant(organization=university), Participant(organization=company)])
               for r in rows]
    records += [Project(id=f"{lang}:{r['id']}", text=r[lang], language=lang) for r in rows for lang in ("ru", "en")]
    engine = make_engine(records)
    engine.partners.graph.refresh()
    candidates, terms, text, _ = engine.partners.enterprise_candidates("NAZARBAYEV UNIVERSITY")
    assert set(terms.split()) <= set(analyze(text, "kk")), terms
    assert sum(term.isalpha() for term in terms.split()) >= 3, terms
    [found] = [c for c in candidates if c.info.key == company.id]
    kazakh = {engine.catalog.get(f"kk:{r['id']}").rowid for r in rows}
    assert {doc for doc, _ in found.evidence_docs} <= kazakh and found.evidence_docs

def test_languages_are_detected_stored_and_filterable(make_engine, parallel_rows, encoder):
    engine = make_engine(aligned(parallel_rows, 0, 10, language=None))
    stats = engine.stats()["by_language"]
    assert stats == {"kk": 10, "ru": 10, "en": 10}
    assert engine.get(f"kk:{parallel_rows[3]['id']}").language == "kk"
    result = engine.search(parallel_rows[3]["ru"], mode="bm25", filters=Filters(languages=("ru",)))
    assert result.hits[0].id == f"ru:{parallel_rows[3]['id']}" and {h.language for h in result.hits} == {"ru"}
    assert engine.search(parallel_rows[3]["ru"]).facets["language"]["ru"] >= 1


def test_other_language_documents_are_not_drowned_by_weak_lexical_matches():
    """A translation found only by the vector side keeps its vector score instead of a lexical zero."""
    lexical = [(1, 5.0), (2, 4.0)]  # same-language documents sharing a few words
    vector = [(3, 0.9), (1, 0.5), (2, 0.45)]  # document 3: the translation, in another language
    plain = fuse(lexical, vector, "weighted", 0.45)
    aware = fuse(lexical, vector, "weighted", 0.45, cross_language=frozenset({3}))
    assert plain[0].key == 1 and aware[0].key == 3


def test_a_stray_lexical_match_does_not_rank_a_translation_below_its_vector_part():
    lexical = [(1, 9.0), (3, 1.0)]  # document 3, the translation, shares one name with the query
    vector = [(3, 0.9), (1, 0.5)]
    assert fuse(lexical, vector, "weighted", 0.45, cross_language=frozenset({3}))[0].key == 3


def test_when_every_candidate_is_in_another_language_hybrid_ranks_as_vector():
    """A pool of one other language: a wrong document that shares a name or a loanword with the query (BM25
    finds it, alone or with the vector side) must not climb above the answer the vector side ranks higher."""
    lexical = [(2, 9.0), (5, 8.0), (3, 1.0)]  # 2 and 5 share a name with the query (5 only BM25 found), 3 a number
    vector = [(9, 0.70), (1, 0.62), (2, 0.61), (3, 0.58), (4, 0.40)]  # document 1: the translation
    fused = fuse(lexical, vector, "weighted", 0.45, cross_language=frozenset({1, 2, 3, 4, 5, 9}), lexical_floor=10.0)
    assert [f.key for f in fused] == [9, 1, 2, 3, 4]  # 5, found by a stray match alone, is no candidate
    assert all(f.lexical_score is None for f in fused), "a stray cross-language match is not shown as lexical evidence"


def test_the_best_of_weak_lexical_matches_is_not_scaled_to_a_full_match():
    """With a floor (a share of the query's BM25 upper bound), a top BM25 hit that shares only a word or two
    with the query stays well below 1, so the vector side's clear winner is not outvoted."""
    lexical = [(1, 2.0), (2, 1.0)]  # same-language records sharing a word; the query could reach 40
    vector = [(2, 0.9), (1, 0.2), (3, 0.1)]
    assert fuse(lexical, vector, "weighted", 0.45)[0].key == 1  # min-max alone: 2.0 counts as a full match
    assert fuse(lexical, vector, "weighted", 0.45, lexical_floor=0.3 * 40)[0].key == 2


@contextmanager
def engine_with_multilingual_model(home: Path, cache_root: Path, records: list) -> Iterator[Engine]:
    """An engine on ``home`` embedding with multilingual-e5 (from the session's converted cache)."""
    from scimatch.models import multilingual

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(multilingual.CACHE_ENV, str(cache_root))
        encoder = Encoder(get_spec("multilingual"))
        with Engine(Settings(home=home, model="multilingual"), encoder=encoder) as engine:
            engine.upsert(records)
            yield engine


@pytest.fixture(scope="module")
def multilingual_engine(tmp_path_factory, converted, cache_root, parallel_rows):
    home = tmp_path_factory.mktemp("multilingual") / "home"
    # NTREX news sentences
    with engine_with_multilingual_model(home, cache_root, aligned(parallel_rows, 1004, 40, language=None)) as engine:
        yield engine


@pytest.mark.parametrize("source,target", [("kk", "en"), ("kk", "ru"), ("ru", "en"), ("en", "kk")])
def test_query_in_one_language_finds_the_aligned_record_in_another(multilingual_engine, parallel_rows, source, target):
    """The query's own sentence and its third-language translation are left out, so the answer is found
    across languages and not through a translation pivot (engine/translations.py)."""
    found = 0
    rows = parallel_rows[1004:1044]
    rowid = multilingual_engine.catalog.rowid_of
    third = next(lang for lang in LANGS if lang not in (source, target))
    for row in rows:
        same_item = (rowid(f"{source}:{row['id']}"), rowid(f"{third}:{row['id']}"))
        for mode in ("vector", "hybrid"):
            filters = Filters(languages=(target,), exclude_rowids=same_item)
            hits = multilingual_engine.search(row[source], mode=mode, filters=filters, page_size=1).hits
            found += hits[0].id == f"{target}:{row['id']}"
    assert found >= 0.9 * 2 * len(rows)


def test_mixed_index_ranks_the_translation_above_every_other_record(multilingual_engine, parallel_rows):
    """One index of all three languages, no language filter: a Kazakh sentence's Russian (or English)
    translation beats every other record of any language, the query's own sentence and its third-language
    translation set aside (they are the same item, so neither is a wrong answer)."""
    rows = parallel_rows[1004:1044]
    rowid = multilingual_engine.catalog.rowid_of
    first = 0
    for row in rows:
        for target, third in (("ru", "en"), ("en", "ru")):
            exclude = Filters(exclude_rowids=(rowid(f"kk:{row['id']}"), rowid(f"{third}:{row['id']}")))
            top = multilingual_engine.search(row["kk"], mode="hybrid", filters=exclude, page_size=1).hits
            first += top[0].id == f"{target}:{row['id']}"
    assert first >= 0.9 * 2 * len(rows)


def test_an_index_refuses_another_model(multilingual_engine, encoder):
    with pytest.raises(IndexMismatchError, match="multilingual"):
        Engine(Settings(home=multilingual_engine.home, model="minilm"), encoder=encoder)


def test_an_index_refuses_vectors_centred_on_other_language_means(multilingual_engine, tmp_path):
    """Vectors made with other language means (or none) are not comparable: such an index is refused."""
    import shutil

    home = tmp_path / "copy"
    shutil.copytree(multilingual_engine.home, home, ignore=shutil.ignore_patterns("write.lock"))
    manifest = json.loads((home / "manifest.json").read_text())
    assert manifest["centering"], manifest  # the multilingual model ships fitted means
    (home / "manifest.json").write_text(json.dumps({**manifest, "centering": None}))
    with pytest.raises(IndexMismatchError, match="centering"):
        Engine(Settings(home=home, model="multilingual"))


def test_same_language_bias_lets_translations_compete_and_leaves_one_language_pools_alone(
        multilingual_engine, parallel_rows):
    """The bias centering leaves (models/centering.py) is taken off same-language documents: in the mixed
    index at least as many Kazakh queries find their translation first as without it, and where every
    candidate is in one language (a language filter) the ranking is exactly the same."""
    searcher = multilingual_engine.searcher
    shipped = searcher.same_language_bias
    assert shipped > 0, "the multilingual model ships a fitted same-language bias"
    rows = parallel_rows[1004:1044]
    rowid = multilingual_engine.catalog.rowid_of

    def first_hits(bias: float) -> tuple[int, list[list[str]]]:
        searcher.same_language_bias = bias
        first, monolingual = 0, []
        for row in rows:
            exclude = Filters(exclude_rowids=(rowid(f"kk:{row['id']}"), rowid(f"en:{row['id']}")))
            first += multilingual_engine.search(row["kk"], mode="vector", filters=exclude, page_size=1).hits[0].id \
                == f"ru:{row['id']}"
            hits = multilingual_engine.search(row["kk"], mode="hybrid", filters=Filters(languages=("kk",))).hits
            monolingual.append([h.id for h in hits])
        return first, monolingual

    try:
        with_bias, mono_with = first_hits(shipped)
        without, mono_without = first_hits(0.0)
    finally:
        searcher.same_language_bias = shipped
    assert with_bias >= without
    assert mono_with == mono_without


XQUAD = DATA / "xquad_r_ru_en"
XQUAD_PARAGRAPHS = 240  # all 240 parallel paragraph pairs (48 articles), Russian and English


def xquad_keys() -> list[str]:
    """The indexed paragraphs' keys ("AA-PP": article, paragraph), the same for both languages."""
    with (XQUAD / "corpus.jsonl").open(encoding="utf-8") as handle:
        return sorted({json.loads(line)["_id"][3:] for line in handle})[:XQUAD_PARAGRAPHS]


@pytest.fixture(scope="module")
def xquad_engine(tmp_path_factory, converted, cache_root):
    """Russian and English versions of the same paragraphs in one index, and the Russian questions on them."""
    from scimatch.models import multilingual

    corpus = [json.loads(line) for line in (XQUAD / "corpus.jsonl").open(encoding="utf-8")]
    keys = set(xquad_keys())
    kept = [d for d in corpus if d["_id"][3:] in keys]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(multilingual.CACHE_ENV, str(cache_root))
        home = tmp_path_factory.mktemp("xquad") / "home"
        with Engine(Settings(home=home, model="multilingual"), encoder=Encoder(get_spec("multilingual"))) as engine:
            engine.upsert([Publication(id=d["_id"], text=d["text"], language=d["metadata"]["lang"]) for d in kept])
            yield engine


def xquad_questions(n: int) -> list[tuple[str, str]]:
    """(Russian question, the paragraph key it is about) for the indexed paragraphs, n of them."""
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in (XQUAD / "queries.jsonl").open(encoding="utf-8")}
    wanted = set(xquad_keys())
    pairs = []
    for line in (XQUAD / "qrels" / "ru2en.tsv").read_text().splitlines()[1:]:
        qid, doc, _ = line.split("\t")
        if doc[3:] in wanted and qid in queries:
            pairs.append((queries[qid], doc[3:]))
    return pairs[:n]


def test_a_record_in_the_query_language_leads_to_its_translation_under_a_language_filter(xquad_engine):
    """Russian questions, English records only: the Russian version of a paragraph pivots the search to the
    English one, so more questions find their English paragraph first than by cross-lingual similarity
    alone; with each question's Russian paragraph removed (the record exists in English only), the other
    records' translations do not push the answer down."""
    questions = xquad_questions(200)
    assert len(questions) >= 100
    searcher, shipped = xquad_engine.searcher, xquad_engine.searcher.settings
    rowid = xquad_engine.catalog.rowid_of

    def firsts(pivots: int, hide_russian: bool) -> int:
        searcher.settings = shipped.model_copy(update={"translation_pivots": pivots})
        found = 0
        for question, key in questions:
            hidden = (rowid(f"ru-{key}"),) if hide_russian else ()
            hits = xquad_engine.search(question, filters=Filters(languages=("en",), exclude_rowids=hidden)).hits
            assert {h.language for h in hits} == {"en"}
            found += hits[0].id == f"en-{key}"
        return found

    try:
        direct, pivoted = firsts(0, False), firsts(5, False)
        direct_hidden, pivoted_hidden = firsts(0, True), firsts(5, True)
    finally:
        searcher.settings = shipped
    assert pivoted >= direct + 0.015 * len(questions), (direct, pivoted)
    assert pivoted_hidden >= direct_hidden - 0.005 * len(questions), (direct_hidden, pivoted_hidden)


def test_a_russian_record_sharing_the_questions_words_hands_on_even_when_slightly_behind(xquad_engine, monkeypatch):
    """A Russian paragraph whose BM25 reaches the shipped share of the question's upper bound hands its place
    to its English version even when it trails the best English record a little: more questions find their
    English paragraph first than with the clear-lead rule alone, and where the Russian version is missing
    (English only) hardly any fewer."""
    from scimatch.engine import translations

    questions = xquad_questions(300)
    assert len(questions) >= 200
    rowid = xquad_engine.catalog.rowid_of

    def firsts(hide_russian: bool) -> int:
        found = 0
        for question, key in questions:
            hidden = (rowid(f"ru-{key}"),) if hide_russian else ()
            hits = xquad_engine.search(question, filters=Filters(languages=("en",), exclude_rowids=hidden)).hits
            found += hits[0].id == f"en-{key}"
        return found

    worded, worded_hidden = firsts(False), firsts(True)
    monkeypatch.setattr(translations, "LEXICAL_SHARE", float("inf"))  # the clear-lead rule alone
    lead_only, lead_only_hidden = firsts(False), firsts(True)
    assert worded >= lead_only + 0.025 * len(questions), (lead_only, worded)
    assert worded_hidden >= lead_only_hidden - 0.015 * len(questions), (lead_only_hidden, worded_hidden)


def test_translation_links_pass_the_margin_only_for_real_translations(xquad_engine):
    """Each Russian paragraph links to its own English version; with that version out of reach it links to
    no other paragraph in nine cases of ten or more."""
    from scimatch.engine.translations import Pivot, link_translations

    searcher, catalog = xquad_engine.searcher, xquad_engine.catalog
    english = searcher.allowed_pids(Filters(languages=("en",)))
    russian = searcher.allowed_pids(Filters(languages=("ru",)))
    keys = xquad_keys()
    right, wrong = 0, 0
    for key in keys:
        ru_doc, en_doc = catalog.rowid_of(f"ru-{key}"), catalog.rowid_of(f"en-{key}")
        pivot = Pivot(ru_doc, catalog.doc_vectors(ru_doc)[0])
        links = link_translations([pivot], searcher.vector, english, russian, searcher._passage)
        right += [link.translation for link in links] == [en_doc]
        others = searcher.allowed_pids(Filters(languages=("en",), exclude_rowids=(en_doc,)))
        wrong += len(link_translations([pivot], searcher.vector, others, russian, searcher._passage))
    assert right >= 0.95 * len(keys) and wrong <= 0.1 * len(keys), (right, wrong)


def test_a_pivoted_search_says_which_record_led_to_each_translation_and_keeps_its_length(xquad_engine):
    """A translation reached through a pivot names its Russian version and shows its own scores (no BM25
    part, its own cosine); the list is as long as without pivots (the plain ranking fills the tail),
    and the bm25 mode stays plain BM25."""
    searcher, shipped = xquad_engine.searcher, xquad_engine.searcher.settings
    english = Filters(languages=("en",))
    translated = 0
    for question, _ in xquad_questions(60):
        pivoted = xquad_engine.search(question, filters=english)
        for hit in pivoted.hits:
            if hit.translation_of is not None:
                translated += 1
                assert hit.translation_of == f"ru-{hit.id[3:]}" and hit.breakdown.bm25_score is None
                assert 0 < hit.breakdown.vector_score < 1
        searcher.settings = shipped.model_copy(update={"translation_pivots": 0})
        try:
            plain = xquad_engine.search(question, filters=english)
            plain_bm25 = xquad_engine.search(question, mode="bm25", filters=english)
        finally:
            searcher.settings = shipped
        assert pivoted.total >= plain.total, (pivoted.total, plain.total)
        assert [h.id for h in xquad_engine.search(question, mode="bm25", filters=english).hits] == \
            [h.id for h in plain_bm25.hits]
    assert translated >= 6, translated  # 10 of these 60 questions reach a translation through its Russian version


def test_hubness_correction_lifts_translations_in_the_mixed_index_and_leaves_one_language_lists_alone(
        multilingual_engine, parallel_rows):
    """Every direction, the mixed index of 120 news sentences: with the shipped hubness weight
    (engine/hubness.py) more queries find their translation first than without it; where a language
    filter leaves one language, the ranking and its scores are exactly the same."""
    searcher = multilingual_engine.searcher
    shipped = searcher.hubness_weight
    assert shipped > 0, "the multilingual model ships a fitted hubness weight"
    rows = parallel_rows[1004:1044]
    rowid = multilingual_engine.catalog.rowid_of
    directions = [(s, t) for s in LANGS for t in LANGS if s != t]

    def first_hits(weight: float) -> tuple[int, list[list[tuple[str, float]]]]:
        searcher.hubness_weight = weight
        first, monolingual = 0, []
        for source, target in directions:
            third = next(lang for lang in LANGS if lang not in (source, target))
            for row in rows:
                exclude = Filters(exclude_rowids=(rowid(f"{source}:{row['id']}"), rowid(f"{third}:{row['id']}")))
                hits = multilingual_engine.search(row[source], mode="vector", filters=exclude, page_size=1).hits
                first += hits[0].id == f"{target}:{row['id']}"
        for row in rows[:10]:
            hits = multilingual_engine.search(row["ru"], filters=Filters(languages=("ru",))).hits
            monolingual.append([(h.id, round(h.score, 6)) for h in hits])
        return first, monolingual

    try:
        with_weight, mono_with = first_hits(shipped)
        without, mono_without = first_hits(0.0)
    finally:
        searcher.hubness_weight = shipped
    assert with_weight > without, (with_weight, without)
    assert mono_with == mono_without


# ---- related grants with the multilingual model ---------------------------------------------------
@pytest.fixture(scope="module")
def multilingual_projects(tmp_path_factory, converted, cache_root, cordis_records):
    """Real CORDIS projects embedded with multilingual-e5 (the model a Kazakh or Russian portal runs)."""
    home = tmp_path_factory.mktemp("multilingual-cordis") / "home"
    with engine_with_multilingual_model(home, cache_root, [r for r in cordis_records if r.text][:40]) as engine:
        yield engine


def test_related_grants_with_the_multilingual_model_have_calibrated_confidence(multilingual_projects, cordis_records,
                                                                               parallel_rows):
    """The multilingual model has its own fitted curve (its cosines mean something else than MiniLM's): a
    project's own text finds it first with a high confidence, every listed record has a confidence at or above
    the cut-off that follows its cosine, and a Kazakh or Russian text is matched, not refused."""
    project = next(r for r in cordis_records if r.text and len(r.text.split()) > 100)
    own = multilingual_projects.related_grants_for_text(project.text, 5)
    assert own.min_confidence is not None and "not calibrated" not in own.message
    assert own.grants[0].id == project.id and own.grants[0].confidence > 0.5
    assert all(g.confidence is not None and g.confidence >= own.min_confidence for g in own.grants)
    by_cosine = sorted(own.grants, key=lambda g: g.cosine)
    assert [g.confidence for g in by_cosine] == sorted(g.confidence for g in own.grants)
    for language in ("kk", "ru"):
        other = multilingual_projects.related_grants_for_text(parallel_rows[0][language], 5)
        assert other.min_confidence == own.min_confidence
        assert all(g.confidence is not None and g.confidence >= other.min_confidence for g in other.grants)
