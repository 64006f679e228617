"""Build the hostile input corpus in ``tests/data/hostile/`` from real files, and a huge PDF on demand.

Every file starts from real data (the JOSE PDFs and SciFact abstracts in ``/work/shared/data``, Russian
NTREX news documents from ``parallel/``, CORDIS projects of the bundled sample) and is then broken
on purpose: truncated, emptied, encrypted, stripped of its text, re-encoded (CP1251, UTF-16), nested
too deeply, given control and right-to-left characters or a 100,000-character token. ``MANIFEST.json``
says for each file what is wrong with which line and what a reader must do with it: reject the line
naming ``file:line``, reject the whole file naming it, or store the record (a hostile but valid one).

The huge PDF (a real paper carrying a >50 MB attachment) is not committed: ``huge_pdf(path)``
writes it where a test wants it, or ``--huge PATH`` here.

Usage: python scripts/make_hostile.py [--data /work/shared/data] [--out tests/data/hostile] [--huge /tmp/huge.pdf]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CORDIS = ROOT / "scimatch" / "data" / "sample" / "cordis"
PAPER = "jose-00013.pdf"  # the smallest real paper (3 pages, 133 KB)
DEEP = 5_000  # nesting levels: far past Python's recursion limit
LONG_TOKEN = 100_000  # characters, past tantivy's longest term (65,530 bytes)
RTL_AND_CONTROLS = "\u202e\u200f\u061c\x00\x07\x1b[31m\ufeff"


def scifact(data: Path, start: int, stop: int) -> list[dict]:
    with (data / "scifact" / "corpus.jsonl").open(encoding="utf-8") as handle:
        lines = [line for _, line in zip(range(stop), handle, strict=False)][start:stop]
    return [{"id": f"hostile:{o['_id']}", "title": o["title"], "text": o["text"]} for o in map(json.loads, lines)]


def russian(data: Path, count: int) -> list[dict]:
    """Real Russian news documents (NTREX-128), only those CP1251 can encode."""
    found = []
    with (data / "parallel" / "ntrex128_documents_kk_ru_en.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            obj = json.loads(line)
            text = obj["ru"]
            try:
                text.encode("cp1251")
            except UnicodeEncodeError:
                continue
            title = " ".join(text.split()[:8])
            found.append({"id": f"hostile:{obj['id']}", "title": title, "text": text})
            if len(found) == count:
                break
    return found


# ---- PDFs ----------------------------------------------------------------------------------------------
def first_page_writer(data: Path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(data / "pdfs" / PAPER).pages[0])
    return writer


def pdf_files(data: Path, out: Path) -> dict[str, dict]:
    from pypdf.generic import NameObject

    paper = (data / "pdfs" / PAPER).read_bytes()
    (out / "truncated.pdf").write_bytes(paper[:30_000])
    (out / "empty.pdf").write_bytes(b"")
    (out / "not-a-pdf.pdf").write_bytes((data / "scifact" / "corpus.jsonl").read_bytes()[:4000])
    writer = first_page_writer(data)
    writer.encrypt(user_password="hostile", owner_password="hostile-owner", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    (out / "encrypted.pdf").write_bytes(buffer.getvalue())
    from pypdf import PdfReader, PdfWriter

    page = PdfReader(data / "pdfs" / PAPER).pages[0]
    for key in ("/Contents", "/Resources"):  # the page stays, what draws its text goes
        del page[NameObject(key)]
    writer = PdfWriter()
    writer.add_page(page)
    buffer = io.BytesIO()
    writer.write(buffer)
    (out / "no-text.pdf").write_bytes(buffer.getvalue())
    return {
        "truncated.pdf": {"expect": "file", "reason": "broken PDF", "what": f"first 30,000 bytes of {PAPER}"},
        "empty.pdf": {"expect": "file", "reason": "empty", "what": "0 bytes"},
        "not-a-pdf.pdf": {"expect": "file", "reason": "not a PDF", "what": "SciFact JSONL bytes named .pdf"},
        "encrypted.pdf": {"expect": "file", "reason": "encrypted", "what": f"page 1 of {PAPER}, AES-256, user password"},
        "no-text.pdf": {"expect": "file", "reason": "no extractable text",
                        "what": f"page 1 of {PAPER} without its content stream"},
    }


def huge_pdf(path: Path, data: Path = ROOT.parent / "shared" / "data", min_bytes: int = 52_000_000) -> Path:
    """A real, valid paper (page 1 of jose-00013) that carries a >50 MB attachment of SciFact abstracts."""
    writer = first_page_writer(data)
    corpus = (data / "scifact" / "corpus.jsonl").read_bytes()
    writer.add_attachment("scifact-corpus.jsonl", corpus * (min_bytes // len(corpus) + 1))
    with path.open("wb") as handle:
        writer.write(handle)
    return path


# ---- JSON lines -------------------------------------------------------------------------------------------
def jsonl_files(data: Path, out: Path) -> dict[str, dict]:
    good = scifact(data, 3000, 3012)
    rows: list[tuple[bytes, str | None, str]] = []  # (raw line, expected rejection reason or None, what)

    def add(raw: str | bytes, reason: str | None, what: str) -> None:
        rows.append((raw.encode("utf-8") if isinstance(raw, str) else raw, reason, what))

    add(json.dumps(good[0]), None, "a good record")
    add(json.dumps(good[1])[:70], "invalid JSON", "cut off mid-string")
    add(json.dumps([good[2]]), "expected a JSON object", "an array")
    add(json.dumps({**good[3], "year": 99999}), "year", "year out of range")
    add(json.dumps({k: v for k, v in good[4].items() if k != "id"}), "id", "no id")
    add(json.dumps({**good[5], "kind": "novel"}), "kind", "unknown kind")
    add(json.dumps({**good[6], "colour": "red"}), "colour", "a field the schema does not have")
    add(json.dumps({**good[7], "id": "bad\x01id"}), "control characters", "an id with a control character")
    add("[" * DEEP + "]" * DEEP, "nested too deeply", f"{DEEP} nested arrays")
    add(json.dumps({**good[8], "year": float("nan")}), "year", "year NaN")
    add(json.dumps(good[9])[:40].encode("utf-8") + b"\xff\xfe\xc0\x80 binary", "not UTF-8", "bytes that are not UTF-8")
    add(json.dumps({"id": "hostile:rtl-controls", "title": RTL_AND_CONTROLS + good[10]["title"],
                    "text": good[10]["text"].replace(" ", " \u200f", 5) + RTL_AND_CONTROLS}),
        None, "right-to-left marks, NUL, BEL, ESC and a BOM in title and text (valid: stored)")
    add(json.dumps({"id": "hostile:long-token", "title": good[11]["title"],
                    "text": good[11]["text"] + " " + "autophagy" * (LONG_TOKEN // 9)}),
        None, f"a {LONG_TOKEN:,}-character token in the text (valid: stored)")
    add(json.dumps("just a string"), "expected a JSON object", "a JSON string")
    (out / "malformed.jsonl").write_bytes(b"\n".join(raw for raw, _, _ in rows) + b"\n")
    lines = {str(n): {"reason": reason, "what": what} for n, (_, reason, what) in enumerate(rows, start=1)
             if reason is not None}
    stored = [json.loads(raw)["id"] for raw, reason, _ in rows if reason is None]

    utf16 = scifact(data, 3100, 3103)
    (out / "utf16.jsonl").write_bytes("\n".join(json.dumps(r, ensure_ascii=False) for r in utf16).encode("utf-16"))
    ru = russian(data, 3)
    (out / "cp1251.jsonl").write_bytes(
        ("\n".join(json.dumps(r, ensure_ascii=False) for r in ru) + "\n").encode("cp1251"))
    (out / "empty.jsonl").write_bytes(b"")
    (out / "deep.json").write_bytes(b'{"results": ' + b"[" * DEEP + b"]" * DEEP + b"}")
    return {
        "malformed.jsonl": {"expect": "lines", "lines": lines, "stored": stored,
                            "what": "SciFact records with one fault per broken line"},
        "utf16.jsonl": {"expect": "file", "reason": "UTF-16", "what": "three SciFact records encoded as UTF-16 with a BOM"},
        "cp1251.jsonl": {"expect": "lines", "lines": {str(n): {"reason": "not UTF-8", "what": "CP1251"}
                                                      for n in range(1, len(ru) + 1)},
                         "stored": [], "what": "three Russian NTREX news documents encoded as CP1251"},
        "empty.jsonl": {"expect": "file", "reason": "empty", "what": "0 bytes"},
        "deep.json": {"expect": "file", "reason": "nested too deeply", "what": f"OpenAlex page with {DEEP} nested arrays"},
    }


# ---- CSV -------------------------------------------------------------------------------------------------
def csv_files(data: Path, out: Path) -> dict[str, dict]:
    with (SAMPLE_CORDIS / "projects.csv").open(encoding="utf-8", newline="") as handle:
        projects = [r for r in csv.DictReader(handle) if r["objective"].strip()][200:206]

    def row(p: dict) -> list[str]:
        return [f"hostile:cordis-{p['id']}", p["title"], p["objective"], p["startDate"][:4]]

    def encoded(cells: list[str]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(cells)
        return buffer.getvalue().encode("utf-8")

    # (raw row, expected rejection reason or None, what); objectives are quoted and span several lines
    rows: list[tuple[bytes, str | None, str]] = [
        (encoded(["id", "title", "abstract", "year"]), None, "header"),
        (encoded(row(projects[0])), None, "a good project"),
        (encoded([*row(projects[1]), "surplus"]), "fields", "an extra field"),
        (encoded([*row(projects[2])[:3], "MMXXI"]), "year", "year MMXXI"),
        (encoded(row(projects[3])), None, "a good project"),
        (encoded([row(projects[4])[0], "Title with a \x00 NUL", projects[4]["objective"], "2022"]), None,
         "a NUL byte in the title (valid: stored)"),
        (b"hostile:cordis-bin,\xff\xfe\xc0 title,text,2022\n", "not UTF-8", "bytes that are not UTF-8"),
        (f'hostile:cordis-{projects[5]["id"]},"{projects[5]["title"]},never closed,2022\n'.encode(), "invalid CSV",
         "a quote never closed"),
    ]
    (out / "malformed.csv").write_bytes(b"".join(raw for raw, _, _ in rows))
    lines: dict[str, dict] = {}
    line = 1
    for raw, reason, what in rows:
        if reason is not None:
            lines[str(line)] = {"reason": reason, "what": what}
        line += raw.count(b"\n")
    stored = [row(projects[0])[0], row(projects[3])[0], row(projects[4])[0]]

    ru = russian(data, 3)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "title", "text"])
    for r in ru:
        writer.writerow([r["id"], r["title"], r["text"]])
    (out / "cp1251.csv").write_bytes(buffer.getvalue().encode("cp1251"))
    (out / "utf16.csv").write_bytes(buffer.getvalue().encode("utf-16"))
    (out / "empty.csv").write_bytes(b"")
    return {
        "malformed.csv": {"expect": "lines", "lines": lines, "stored": stored,
                          "what": "CORDIS projects (id, title, abstract, year) with one fault per broken row"},
        "cp1251.csv": {"expect": "lines", "lines": {str(n): {"reason": "not UTF-8", "what": "CP1251"}
                                                    for n in range(2, len(ru) + 2)},
                       "stored": [], "what": "three Russian NTREX documents encoded as CP1251"},
        "utf16.csv": {"expect": "file", "reason": "UTF-16", "what": "the same CSV encoded as UTF-16 with a BOM"},
        "empty.csv": {"expect": "file", "reason": "empty", "what": "0 bytes"},
    }


def build(data: Path, out: Path) -> dict[str, dict]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    manifest = {**pdf_files(data, out), **jsonl_files(data, out), **csv_files(data, out)}
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "hostile")
    parser.add_argument("--huge", type=Path, default=None, help="also write the huge PDF here (not committed)")
    args = parser.parse_args()
    manifest = build(args.data, args.out)
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"{len(manifest)} hostile files in {args.out} ({total:,} bytes)")
    if args.huge:
        path = huge_pdf(args.huge, args.data)
        print(f"huge PDF {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
