"""Readers for CSV, OpenAlex, CORDIS and PDF, and the registry that picks one, on real data slices."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from scimatch.errors import PdfError, UnknownChoiceError
from scimatch.indexer.readers.base import Rejection
from scimatch.indexer.readers.cordis import read_cordis_dir
from scimatch.indexer.readers.csv_reader import load_mapping, read_csv
from scimatch.indexer.readers.openalex import institution_ref, read_openalex
from scimatch.indexer.readers.pdf import read_pdf
from scimatch.indexer.readers.registry import FORMATS, read_path
from scimatch.pdftext import extract_pdf, guess_title, mojibake_share
from scimatch.records import OrgKind, Project, Publication

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "scimatch" / "data" / "sample"
DATA = Path("/work/shared/data")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared data folder not mounted")


def _split(results: list) -> tuple[list, list[Rejection]]:
    return [r for r in results if not isinstance(r, Rejection)], [r for r in results if isinstance(r, Rejection)]


@pytest.fixture(scope="module")
def scifact() -> list[dict]:
    with (DATA / "scifact" / "corpus.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(next(handle)) for _ in range(3)]


# --- CSV -------------------------------------------------------------------------------------------


def _write_scifact_csv(path: Path, docs: list[dict]) -> None:
    """Three real SciFact docs under other column names; the first abstract spans two physical lines."""
    first = docs[0]["text"]
    cut = first.index(". ") + 1
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["doc", "name", "abstract", "year"])
        writer.writerow([docs[0]["_id"], docs[0]["title"], first[:cut] + "\n" + first[cut + 1:], ""])
        writer.writerow([docs[1]["_id"], docs[1]["title"], docs[1]["text"], ""])
        writer.writerow(["", docs[2]["title"], docs[2]["text"], ""])  # no id: rejected
        writer.writerow([docs[2]["_id"], docs[2]["title"], docs[2]["text"], ""])


@needs_data
def test_csv_mapping_and_bad_row_line(tmp_path: Path, scifact: list[dict]) -> None:
    path = tmp_path / "docs.csv"
    _write_scifact_csv(path, scifact)
    records, rejections = _split(list(read_csv(path, load_mapping("id=doc,title=name"))))
    assert [r.id for r in records] == [scifact[0]["_id"], scifact[1]["_id"], scifact[2]["_id"]]
    assert records[1].title == scifact[1]["title"] and records[1].text == scifact[1]["text"]  # abstract alias
    assert records[0].year is None and isinstance(records[0], Publication)
    assert len(rejections) == 1
    assert rejections[0].line == 5  # header 1, first row lines 2-3, second row 4
    assert "id" in rejections[0].reason


@needs_data
def test_csv_non_utf8_row_rejected_rest_read(tmp_path: Path, scifact: list[dict]) -> None:
    path = tmp_path / "latin.csv"
    lines = [b"id,title,text"]
    for doc in scifact:
        lines.append(f'{doc["_id"]},"{doc["title"]}",x'.encode())
    lines[2] = lines[2].replace(b",x", b",\xe9t\xe9")  # Latin-1 bytes in the second data row
    path.write_bytes(b"\n".join(lines) + b"\n")
    records, rejections = _split(list(read_csv(path)))
    assert [r.id for r in records] == [scifact[0]["_id"], scifact[2]["_id"]]
    assert [(r.line, "UTF-8" in r.reason) for r in rejections] == [(3, True)]
    assert str(path) in str(rejections[0])


def test_load_mapping_checks_fields() -> None:
    assert load_mapping("text=abstract, title=name") == {"text": "abstract", "title": "name"}
    with pytest.raises(UnknownChoiceError, match="valid:"):
        load_mapping("txt=abstract")
    with pytest.raises(ValueError):
        load_mapping("text")


# --- OpenAlex ----------------------------------------------------------------------------------------


def _inverted_index(text: str) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for position, word in enumerate(text.split()):
        index.setdefault(word, []).append(position)
    return index


def _jose_work() -> dict:
    """jose-00013 as OpenAlex shapes it; values from pdfs/SOURCE.md and the paper's page 1 (no abstract)."""
    return {
        "id": "https://openalex.org/W0000013",  # placeholder key: the real OpenAlex id is not on disk
        "doi": "https://doi.org/10.21105/jose.00013",
        "title": "The Riffomonas Reproducible Research Tutorial Series",
        "publication_year": 2018,
        "publication_date": "2018-08-30",
        "language": "en",
        "primary_location": {"source": {"display_name": "Journal of Open Source Education"}},
        "authorships": [{
            "author": {"display_name": "Patrick D Schloss", "orcid": None},
            "institutions": [{"display_name": "University of Michigan", "country_code": "US",
                              "type": "education"}],
        }],
        "abstract_inverted_index": None,
    }


@needs_data
def test_openalex_work_from_scifact_record(tmp_path: Path, scifact: list[dict]) -> None:
    doc = scifact[0]
    work = {"id": f"https://openalex.org/W{doc['_id']}", "display_name": doc["title"],
            "abstract_inverted_index": _inverted_index(doc["text"])}
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"meta": {"count": 2}, "results": [work, _jose_work()]}), encoding="utf-8")
    records, rejections = _split(list(read_openalex(path)))
    assert rejections == []
    first, second = records
    assert first.id == f"W{doc['_id']}" and first.title == doc["title"]
    assert first.text == " ".join(doc["text"].split())  # rebuilt word order
    assert first.authors == [] and first.year is None and first.venue is None
    assert second.doi == "10.21105/jose.00013" and second.year == 2018
    assert second.venue == "Journal of Open Source Education" and second.text == ""
    author = second.authors[0]
    assert author.name == "Patrick D Schloss" and author.orcid is None
    assert author.organizations[0].kind == OrgKind.university and author.organizations[0].country == "US"


@needs_data
def test_openalex_layouts_and_broken_work(tmp_path: Path, scifact: list[dict]) -> None:
    works = [{"id": f"https://openalex.org/W{d['_id']}", "title": d["title"],
              "abstract_inverted_index": _inverted_index(d["text"])} for d in scifact]
    single = tmp_path / "one.json"
    single.write_text(json.dumps(works[0]), encoding="utf-8")
    assert [r.id for r in read_openalex(single)] == [f"W{scifact[0]['_id']}"]
    lines = [json.dumps(w) for w in works]
    lines.insert(1, json.dumps({"id": "https://openalex.org/W1", "abstract_inverted_index": {"a": "x"}}))
    jsonl = tmp_path / "works.jsonl"
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records, rejections = _split(list(read_openalex(jsonl)))
    assert len(records) == 3
    assert [(r.line, "abstract_inverted_index" in r.reason) for r in rejections] == [(2, True)]


@needs_data
def test_openalex_institution_kinds_from_ror() -> None:
    expected = {"education": OrgKind.university, "company": OrgKind.enterprise,
                "government": OrgKind.government, "facility": OrgKind.research_institute,
                "healthcare": OrgKind.other, "nonprofit": OrgKind.other}
    with (DATA / "kz_regions" / "ror_kz_organisations.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["types"] in expected]
    seen = set()
    for row in rows:
        ref = institution_ref({"id": row["ror_id"], "display_name": row["name"], "country_code": "KZ",
                               "type": row["types"]})
        assert ref is not None and ref.kind == expected[row["types"]], row["name"]
        assert ref.id == row["ror_id"].rsplit("/", 1)[-1]
        seen.add(row["types"])
    assert seen == set(expected)
    assert institution_ref({"display_name": rows[0]["name"], "type": "unheard-of"}).kind is None


# --- CORDIS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_projects() -> list:
    return list(read_cordis_dir(SAMPLE / "cordis"))


def test_cordis_sample_links_participants(sample_projects: list) -> None:
    projects, rejections = _split(sample_projects)
    assert rejections == []
    assert len(projects) == 1500 and all(isinstance(p, Project) for p in projects)
    with (SAMPLE / "cordis" / "organizations.csv").open(encoding="utf-8", newline="") as handle:
        org_rows = list(csv.DictReader(handle))
    assert sum(len(p.participants) for p in projects) == len(org_rows)
    by_id = {p.id: p for p in projects}
    row = next(r for r in org_rows if len(r["nutsCode"]) == 5 and r["ecContribution"])
    match = [pp for pp in by_id[f"cordis:{row['projectID']}"].participants
             if pp.organization.id == f"cordis-org:{row['organisationID']}" and pp.role == row["role"]]
    assert match and match[0].organization.region == row["nutsCode"][:4]
    assert match[0].contribution == float(row["ecContribution"])
    kinds = Counter(pp.organization.kind for p in projects for pp in p.participants)
    assert {OrgKind.university, OrgKind.research_institute, OrgKind.enterprise, OrgKind.government,
            OrgKind.other} <= set(kinds)


def test_cordis_kazakh_project(sample_projects: list) -> None:
    project = next(p for p in sample_projects if p.id == "cordis:101131146")
    assert project.acronym == "UPGRADE" and project.funder == "European Commission"
    assert project.programme == "HORIZON / Marie Skłodowska-Curie Actions (MSCA)"
    assert project.currency == "EUR" and project.amount == 892400.0 and project.year == 2024
    assert project.url == "https://cordis.europa.eu/project/id/101131146" and project.text
    kz = [pp.organization for pp in project.participants if pp.organization.country == "KZ"]
    assert [(o.name, o.kind, o.city, o.region) for o in kz] == [
        ("NAZARBAYEV UNIVERSITY", OrgKind.university, "Astana", "KZ-71")  # no NUTS: KATO region from the city
    ]
    kz_projects = {p.id for p in sample_projects if any(o.country == "KZ" for o in p.organizations())}
    assert len(kz_projects) == 22


def test_cordis_gzip_pair_and_bad_row(tmp_path: Path) -> None:
    src = SAMPLE / "cordis"
    project_lines = (src / "projects.csv").read_text(encoding="utf-8")
    head = list(csv.reader(io.StringIO(project_lines)))[:4]  # header + 3 projects
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(head)
    ids = {row[0] for row in head[1:]}
    with (src / "organizations.csv").open(encoding="utf-8", newline="") as handle:
        orgs = [r for i, r in enumerate(csv.reader(handle)) if i == 0 or r[0] in ids]
    orgs.append(orgs[1][:5])  # a cut-off participant row
    obuf = io.StringIO()
    csv.writer(obuf, lineterminator="\n").writerows(orgs)
    (tmp_path / "projects_part.csv.gz").write_bytes(gzip.compress(buf.getvalue().encode()))
    (tmp_path / "organizations_part.csv.gz").write_bytes(gzip.compress(obuf.getvalue().encode()))
    projects, rejections = _split(list(read_cordis_dir(tmp_path)))
    assert sorted(p.id for p in projects) == sorted(f"cordis:{i}" for i in ids)
    assert sum(len(p.participants) for p in projects) == len(orgs) - 2
    assert [(Path(r.source).name, r.line) for r in rejections] == [("organizations_part.csv.gz", len(orgs))]


# --- PDF ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jose13() -> bytes:
    return (SAMPLE / "pdfs" / "jose-00013.pdf").read_bytes()


@pytest.fixture(scope="module")
def legacy() -> object:
    try:
        return extract_pdf(DATA / "pdfs" / "ru-lshortru-legacy-encoding.pdf", max_pages=4)
    except PdfError as exc:
        return exc


def test_pdf_title_pages_and_dehyphenation(jose13: bytes) -> None:
    result = extract_pdf(jose13, name="jose-00013.pdf")
    assert result.title == "The Riffomonas Reproducible Research Tutorial Series"
    assert result.pages == 3
    assert "collection of tutorials that focuses on the improvement of reproducible data analysis" in result.text
    # page 1 has "a Cre-\native Commons Attribution 4.0 In-\nternational License"
    assert "release the work under a Creative Commons Attribution 4.0 International License" in result.text
    assert "Cre- ative" not in result.text and "\n" not in result.text.split("\n\n")[0]


def test_read_pdf_yields_publication() -> None:
    (record,) = list(read_pdf(SAMPLE / "pdfs" / "jose-00029.pdf"))
    assert isinstance(record, Publication)
    assert record.id == "pdf:jose-00029" and record.source == "pdf" and record.pages == 4
    assert record.title == "Mikrokosmos: an educational lambda calculus interpreter"


def test_title_guess_falls_back_to_first_line(jose13: bytes) -> None:
    first_page = PdfReader(io.BytesIO(jose13)).pages[0].extract_text()
    assert guess_title("", first_page) == "The Riffomonas Reproducible Research Tutorial Series"
    assert guess_title("untitled.dvi", first_page) == "The Riffomonas Reproducible Research Tutorial Series"


def test_encrypted_pdf(tmp_path: Path, jose13: bytes) -> None:
    writer = PdfWriter(clone_from=io.BytesIO(jose13))
    writer.encrypt("a-password", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(PdfError, match="encrypted PDF"):
        extract_pdf(out.getvalue(), name="locked.pdf")
    path = tmp_path / "locked.pdf"
    path.write_bytes(out.getvalue())
    (rejection,) = list(read_pdf(path))
    assert isinstance(rejection, Rejection) and "password required" in rejection.reason


@pytest.mark.parametrize(
    ("cut", "reason"),
    [(2048, "broken PDF"), (0, "not a PDF"), (-1, "not a PDF")],
    ids=["truncated", "empty", "text-file"],
)
def test_broken_inputs_raise_pdf_error(jose13: bytes, cut: int, reason: str) -> None:
    data = (SAMPLE / "SOURCE.md").read_bytes() if cut < 0 else jose13[:cut]
    with pytest.raises(PdfError, match=reason) as info:
        extract_pdf(data, name="x.pdf")
    assert info.value.source == "x.pdf"


def test_pdf_timeout(jose13: bytes) -> None:
    with pytest.raises(PdfError, match="timed out"):
        extract_pdf(jose13, name="slow.pdf", timeout_s=1e-6)


@needs_data
def test_legacy_encoding_recovered_or_refused(legacy: object) -> None:
    if isinstance(legacy, PdfError):
        assert "legacy font encoding" in legacy.reason
        return
    assert legacy.pages == 153
    assert legacy.title == "Не очень краткое введение в LATEX 2 ε"
    assert "Не очень краткое" in legacy.text and "Íå î÷åíü" not in legacy.text
    assert mojibake_share(legacy.text) < 0.01 and "re-decoded" in legacy.note
    cyrillic = sum(1 for ch in legacy.text if "а" <= ch.lower() <= "я")
    assert cyrillic > 300


# --- registry ----------------------------------------------------------------------------------------


@needs_data
def test_registry_dispatch_by_extension(tmp_path: Path, scifact: list[dict]) -> None:
    beir = tmp_path / "docs.jsonl"
    beir.write_text("\n".join(json.dumps(d) for d in scifact) + "\n", encoding="utf-8")
    native = tmp_path / "native.ndjson"
    native.write_text("\n".join(json.dumps({"id": d["_id"], "title": d["title"]}) for d in scifact),
                      encoding="utf-8")
    works = tmp_path / "works.jsonl"
    works.write_text(json.dumps({"id": "https://openalex.org/W" + scifact[0]["_id"],
                                 "title": scifact[0]["title"]}), encoding="utf-8")
    table = tmp_path / "table.csv"
    _write_scifact_csv(table, scifact)
    assert [r.source for r in read_path(beir)] == ["beir"] * 3
    assert [r.id for r in read_path(native)] == [d["_id"] for d in scifact]
    assert [(r.id, r.source) for r in read_path(works)] == [("W" + scifact[0]["_id"], "openalex")]
    assert len(_split(list(read_path(table, csv_mapping={"id": "doc"})))[0]) == 3
    (pdf,) = list(read_path(SAMPLE / "pdfs" / "jose-00161.pdf"))
    assert pdf.id == "pdf:jose-00161"
    (odd,) = list(read_path(SAMPLE / "SOURCE.md"))
    assert isinstance(odd, Rejection) and "unsupported" in odd.reason
    (missing,) = list(read_path(tmp_path / "nope.csv"))
    assert isinstance(missing, Rejection) and missing.reason == "no such file"


def test_registry_folder_and_explicit_format(tmp_path: Path, sample_projects: list) -> None:
    results = list(read_path(SAMPLE))
    records, rejections = _split(results)
    assert rejections == []
    assert Counter(r.source for r in records) == {"cordis": len(sample_projects), "pdf": 4}
    as_txt = tmp_path / "table.txt"
    as_txt.write_bytes((SAMPLE / "cordis" / "projects.csv").read_bytes()[:200_000])
    explicit = list(read_path(as_txt, fmt="csv", csv_mapping={"text": "objective"}))
    assert explicit and all(not isinstance(r, Rejection) for r in explicit[:-1])
    assert explicit[0].id == sample_projects[0].id.removeprefix("cordis:")


def test_unknown_format_lists_valid_ones() -> None:
    with pytest.raises(UnknownChoiceError) as info:
        read_path(SAMPLE, fmt="xml")
    assert all(name in str(info.value) for name in FORMATS) and "'xml'" in str(info.value)


# --- authors, DOI and year of a PDF (pdfmeta.py), checked against pdfs/SOURCE.md (from Crossref) ----------
def _source_rows() -> list[tuple[str, str, bool, int, str]]:
    """(file stem, first author's surname, several authors?, year, DOI) of each JOSE paper in SOURCE.md."""
    from conftest import DATA as SHARED

    text = (SHARED / "pdfs" / "SOURCE.md").read_text(encoding="utf-8")
    pattern = r"\| `(jose-\d+)\.pdf` \|[^|]*\|[^|]*\|[^|]*\| (\S+?)( et al\.)? \((\d{4})\)\..*?doi:(10\.\S+?) \|"
    return [(stem, surname, bool(many), int(year), doi) for stem, surname, many, year, doi in re.findall(pattern, text)]


def test_pdf_authors_doi_and_year_match_crossref() -> None:
    from conftest import DATA as SHARED

    rows = _source_rows()
    assert len(rows) == 12
    for stem, surname, several, year, doi in rows:
        extracted = extract_pdf(SHARED / "pdfs" / f"{stem}.pdf")
        assert extracted.authors and extracted.authors[0].name.split()[-1] == surname, (stem, extracted.authors)
        assert (len(extracted.authors) > 1) == several, stem
        assert extracted.doi == doi and extracted.year == year, stem


def test_pdf_authors_come_with_their_affiliations_and_from_metadata_when_given() -> None:
    from conftest import DATA as SHARED

    (record,) = list(read_pdf(SAMPLE / "pdfs" / "jose-00013.pdf"))
    assert [a.name for a in record.authors] == ["Patrick D Schloss"]
    assert "University of Michigan" in record.authors[0].organizations[0].name
    assert record.doi == "10.21105/jose.00013" and record.year == 2018
    scotti = extract_pdf(SHARED / "pdfs" / "jose-00075.pdf").authors
    assert [a.name for a in scotti][-1] == "Alexander Huth" and len(scotti) == 6
    assert scotti[-1].organizations == scotti[-2].organizations  # both marked 5
    # ReScience's PDF names its author in /Author; the Russian manual's adds "and the MetaPost team"
    for stem, name in (("rescience-c-broman-2020", "Karl W. Broman"), ("ru-mpman-ru", "John D. Hobby")):
        assert [a.name for a in extract_pdf(SHARED / "pdfs" / f"{stem}.pdf", max_pages=2).authors] == [name]
