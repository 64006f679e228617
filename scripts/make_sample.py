"""Build the bundled sample in ``scimatch/data/sample`` from the real data in ``/work/shared/data``.

A deterministic slice of the CORDIS Horizon Europe export (projects with objective text, with
all their participant rows, plus every project with a Kazakh participant) and four CC BY JOSE
papers, small enough to ship with the package (about 8 MB) so the portal runs out of the box.

Usage: python scripts/make_sample.py [--data /work/shared/data] [--out scimatch/data/sample]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import random
import shutil
import sys
from collections import Counter, defaultdict
from pathlib import Path

SEED = 20240601
TARGET_PROJECTS = 1500
MIXED_SHARE = 0.4  # share of projects with >= 1 PRC and >= 1 HES/REC participant
CORDIS_PARTS = (("projects.csv", "organizations.csv"),
                ("projects_he_2025_added.csv.gz", "organizations_he_2025_added.csv.gz"))
PDFS = {
    "jose-00013.pdf": "Schloss (2018), The Riffomonas Reproducible Research Tutorial Series, "
    "doi:10.21105/jose.00013",
    "jose-00029.pdf": "Román (2018), Mikrokosmos: an educational lambda calculus interpreter, "
    "doi:10.21105/jose.00029",
    "jose-00090.pdf": "Rising et al. (2024), A practical guide to climate econometrics: Navigating key "
    "decision points in weather and climate data analysis, doi:10.21105/jose.00090",
    "jose-00161.pdf": "Brown et al. (2022), Auto-eD: A visual learning tool for automatic differentiation, "
    "doi:10.21105/jose.00161",
}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a plain or gzipped CSV."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8"), newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


Rows = list[dict[str, str]]


def load_cordis(folder: Path) -> tuple[list[str], list[str], Rows, dict[str, Rows]]:
    projects: list[dict[str, str]] = []
    orgs: dict[str, list[dict[str, str]]] = defaultdict(list)
    project_fields: list[str] = []
    org_fields: list[str] = []
    for projects_name, orgs_name in CORDIS_PARTS:
        fields, rows = read_rows(folder / projects_name)
        project_fields = project_fields or fields
        assert fields == project_fields, f"{projects_name}: columns differ"
        projects.extend(rows)
        fields, rows = read_rows(folder / orgs_name)
        org_fields = org_fields or fields
        assert fields == org_fields, f"{orgs_name}: columns differ"
        for row in rows:
            orgs[row["projectID"]].append(row)
    return project_fields, org_fields, projects, orgs


def is_mixed(org_rows: list[dict[str, str]]) -> bool:
    kinds = {row["activityType"] for row in org_rows}
    return "PRC" in kinds and bool(kinds & {"HES", "REC"})


def choose(projects: list[dict[str, str]], orgs: dict[str, list[dict[str, str]]]) -> list[dict[str, str]]:
    """Every KZ project, then a seeded draw of HE projects with objectives, mixed consortia preferred."""
    kz = [p for p in projects if p["has_KZ"].strip().lower() == "true"]
    kz_ids = {p["id"] for p in kz}
    pool = sorted(
        (p for p in projects
         if p["frameworkProgramme"] == "HORIZON" and p["objective"].strip() and p["id"] not in kz_ids),
        key=lambda p: int(p["id"]),
    )
    mixed = [p for p in pool if is_mixed(orgs[p["id"]])]
    other = [p for p in pool if not is_mixed(orgs[p["id"]])]
    rng = random.Random(SEED)
    remaining = TARGET_PROJECTS - len(kz)
    n_mixed = round(remaining * MIXED_SHARE)
    chosen = kz + rng.sample(mixed, n_mixed) + rng.sample(other, remaining - n_mixed)
    return sorted(chosen, key=lambda p: int(p["id"]))


def write_csv(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def source_md(stats: dict[str, object]) -> str:
    pdf_lines = "\n".join(f"- `pdfs/{name}`: {ref}" for name, ref in sorted(PDFS.items()))
    return f"""# Bundled sample data

Real records only, copied unchanged from the project's shared data (`/work/shared/data`) by
`scripts/make_sample.py` (deterministic: seed {SEED}). Nothing here was written or edited by hand.

## `cordis/projects.csv`, `cordis/organizations.csv`

- Origin: the CORDIS export described in `cordis/SOURCE.md` of the shared data: `projects.csv` +
  `organizations.csv` (Horizon Europe participant table of June 2024, objectives from the December-2025
  CORDIS XML) and `projects_he_2025_added.csv.gz` + `organizations_he_2025_added.csv.gz` (Horizon Europe
  projects added up to December 2025). Same 40 / 26 columns as the source, UTF-8, comma-separated;
  the `dataset_part` column tells the parts apart.
- Licence: CORDIS data, European Commission, CC BY 4.0 (reuse under Commission Decision 2011/833/EU).
  Source: CORDIS, © European Union, CC BY 4.0
- How chosen:
  - every project with a participant from Kazakhstan (`has_KZ` true) in either part,
    {stats["kz"]} projects (including {stats["kz_no_objective"]} FP7 projects that have no objective text);
  - plus a seeded random draw of Horizon Europe projects that have objective text:
    {stats["mixed"]} from the projects with at least one company (PRC) and one university or research
    organisation (HES/REC) participant, and {stats["other"]} from the rest;
  - every participant row of each chosen project is kept.
  - The size budget of the package (about 8 MB with the PDFs) is why there are {stats["projects"]} projects
    and not more.
- Counts: {stats["projects"]} projects ({stats["with_objective"]} with objective text),
  {stats["org_rows"]} participant rows, {stats["orgs"]} distinct organisations (PIC),
  {stats["countries"]} countries. Activity types: {stats["activity"]}.
  Parts: {stats["parts"]}.

## `pdfs/`

Four papers from the Journal of Open Source Education (Open Journals, GitHub `openjournals/jose-papers`),
copied unchanged from the shared data folder `pdfs/`. Licence: CC BY 4.0 (each states on page 1 that the
authors release the work under a Creative Commons Attribution 4.0 International License).

{pdf_lines}

Total size: {stats["bytes"]:,} bytes.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    repo = Path(__file__).resolve().parent.parent
    parser.add_argument("--out", type=Path, default=repo / "scimatch/data/sample")
    args = parser.parse_args()

    project_fields, org_fields, projects, orgs = load_cordis(args.data / "cordis")
    chosen = choose(projects, orgs)
    org_rows = [row for p in chosen for row in orgs[p["id"]]]
    (args.out / "cordis").mkdir(parents=True, exist_ok=True)
    (args.out / "pdfs").mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "cordis/projects.csv", project_fields, chosen)
    write_csv(args.out / "cordis/organizations.csv", org_fields, org_rows)
    for name in PDFS:
        shutil.copyfile(args.data / "pdfs" / name, args.out / "pdfs" / name)

    kz = [p for p in chosen if p["has_KZ"].strip().lower() == "true"]
    stats: dict[str, object] = {
        "projects": len(chosen),
        "with_objective": sum(1 for p in chosen if p["objective"].strip()),
        "kz": len(kz),
        "kz_no_objective": sum(1 for p in kz if not p["objective"].strip()),
        "mixed": sum(1 for p in chosen if p not in kz and is_mixed(orgs[p["id"]])),
        "other": sum(1 for p in chosen if p not in kz and not is_mixed(orgs[p["id"]])),
        "org_rows": len(org_rows),
        "orgs": len({r["organisationID"] for r in org_rows}),
        "countries": len({r["country"] for r in org_rows if r["country"]}),
        "activity": ", ".join(f"{k or 'empty'} {v:,}" for k, v in Counter(
            r["activityType"] for r in org_rows).most_common()),
        "parts": ", ".join(f"{k} {v:,}" for k, v in Counter(p["dataset_part"] for p in chosen).most_common()),
    }
    files = [*(args.out / "cordis").iterdir(), *(args.out / "pdfs").iterdir()]
    stats["bytes"] = sum(f.stat().st_size for f in files)
    (args.out / "SOURCE.md").write_text(source_md(stats), encoding="utf-8")
    print({k: v for k, v in stats.items()})


if __name__ == "__main__":
    main()
