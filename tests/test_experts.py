"""Experts: people found through the documents they wrote, with evidence and affiliation.

The records are real JOSE papers (text from their PDFs); their authors and DOIs are the ones given in
shared/data/pdfs/SOURCE.md (from each paper's Crossref record).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scimatch.engine.engine import Engine
from scimatch.errors import ScimatchError
from scimatch.pdftext import extract_pdf
from scimatch.records import Author, OrganizationRef, Publication

PDFS = Path(__file__).resolve().parents[1] / "scimatch" / "data" / "sample" / "pdfs"
PAPERS = {  # file stem -> (first author as in SOURCE.md, DOI)
    "jose-00013": ("Schloss", "10.21105/jose.00013"),
    "jose-00029": ("Román", "10.21105/jose.00029"),
    "jose-00161": ("Brown", "10.21105/jose.00161"),
    "jose-00090": ("Rising", "10.21105/jose.00090"),
}


@pytest.fixture(scope="module")
def papers() -> list[Publication]:
    records = []
    for stem, (author, doi) in PAPERS.items():
        pdf = extract_pdf(PDFS / f"{stem}.pdf")
        records.append(Publication(
            id=doi, title=pdf.title or stem, text=pdf.text, doi=doi,
            authors=[Author(name=author, organizations=[OrganizationRef(name="Journal of Open Source Education")])],
        ))
    return records


@pytest.fixture
def engine(make_engine, papers: list[Publication]) -> Engine:
    return make_engine(papers)


def test_expert_is_the_author_of_the_matching_paper(engine: Engine, papers: list[Publication]) -> None:
    lambda_paper = next(p for p in papers if p.doi == "10.21105/jose.00029")
    topic = lambda_paper.title
    result = engine.match_experts(topic, limit=3)
    assert not result.no_strong_match
    top = result.experts[0]
    assert top.name == "Román"
    assert top.evidence[0].id == "10.21105/jose.00029"
    assert top.affiliations == ["Journal of Open Source Education"]
    assert 0.0 <= top.confidence <= 1.0
    assert all(e.confidence >= result.min_confidence for e in result.experts)
    scores = [e.score for e in result.experts]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0, "the shown score is the order"


def test_experts_come_from_the_bundled_papers_as_the_indexer_reads_them(make_engine) -> None:
    """No hand-set authors: the PDF reader takes them, with affiliations, from each paper's first page."""
    from scimatch.indexer.readers.pdf import read_pdf

    engine = make_engine([record for pdf in sorted(PDFS.glob("*.pdf")) for record in read_pdf(pdf)])
    result = engine.match_experts("reproducible data analysis tutorials for microbial ecology", limit=3)
    assert not result.no_strong_match
    top = result.experts[0]
    assert top.name == "Patrick D Schloss" and top.evidence[0].id == "pdf:jose-00013"
    assert "University of Michigan" in top.affiliations[0]


def test_no_strong_match_instead_of_padding(engine: Engine) -> None:
    # a real text from another field: a SciFact abstract on newborn brain imaging
    unrelated = Path("/work/shared/data/scifact/corpus.jsonl")
    if not unrelated.exists():
        pytest.skip("shared data not mounted")
    import json

    text = json.loads(unrelated.open().readline())["text"]
    result = engine.match_experts(text)
    assert result.experts == [] and result.no_strong_match and "no strong match" in result.message


def test_blank_text_is_an_error(engine: Engine) -> None:
    with pytest.raises(ScimatchError):
        engine.match_experts("   ")


def test_experts_endpoint(tmp_path: Path, encoder, papers: list[Publication]) -> None:
    from fastapi.testclient import TestClient

    from scimatch.api.main import create_app
    from scimatch.settings import Settings

    settings = Settings(home=tmp_path / "api")
    with Engine(settings, encoder=encoder) as engine:
        engine.upsert(papers)
    with TestClient(create_app(settings, encoder=encoder)) as client:
        ok = client.post("/match/experts", json={"text": papers[1].title, "limit": 2})
        assert ok.status_code == 200
        assert ok.json()["experts"][0]["name"] == "Román"
        assert client.post("/match/experts", json={"text": " "}).status_code == 422
        assert client.post("/match/experts", json={"limit": 2}).status_code == 422
        assert client.post("/match/enterprises", json={"organization": "nobody"}).status_code == 404
