"""Fuzz every operation of the API's own OpenAPI schema with schemathesis, and print what it found.

The app is ``create_app(Settings(admin_key=...))`` on a copy of an index (by default, a fresh index
of the first 300 real CORDIS projects of the bundled sample and two JOSE papers), loaded in-process
through ASGI from its live ``/openapi.json``. Every operation, writes included, gets schema-valid
(positive) and schema-breaking (negative) examples, sent with the admin key in ``X-API-Key``;
the rate limit is off so that every example reaches its route. Each response is checked for:

- server errors (any 5xx: ``not_a_server_error``);
- schema violations: the body does not match the declared response schema
  (``response_schema_conformance``), an undeclared content type (``content_type_conformance``) or
  declared headers that are wrong (``response_headers_conformance``).

Status codes the schema does not list (401, 404, 413, 422...) are counted for information only.

Prints operations, examples, status codes, 5xx count and schema violations (with a curl command
for the first of each). Exit status 1 when there is a 5xx or a violation.

Usage: python scripts/fuzz_api.py [--examples 30] [--seed 1] [--home INDEX] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "scimatch" / "data" / "sample"
ADMIN_KEY = "fuzz-admin-key"


def check_functions() -> dict[str, Callable]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return {"server_error": not_a_server_error, "response_schema": response_schema_conformance,
            "content_type": content_type_conformance, "response_headers": response_headers_conformance,
            "undocumented_status": status_code_conformance}


VIOLATIONS = ("response_schema", "content_type", "response_headers")


def fuzz(app, admin_key: str, examples: int = 30, seed: int = 1, modes: tuple[str, ...] = ("positive", "negative"),
         log: Callable[[str], None] = print, exclude: Callable[[str], bool] = lambda label: False) -> dict:
    """Run the examples against ``app`` (in-process) and return the figures."""
    import schemathesis
    from hypothesis.errors import HypothesisException
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = check_functions()
    figures: dict = {"operations": 0, "examples": 0, "server_errors": 0, "schema_violations": 0,
                     "undocumented_statuses": 0, "status": Counter(), "by_operation": {}, "failures": [],
                     "skipped": []}
    seen_failures: set[tuple[str, str]] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label
        if exclude(label):
            figures["skipped"].append(f"{label}: excluded")
            continue
        figures["operations"] += 1
        per_op = figures["by_operation"].setdefault(label, {"examples": 0, "5xx": 0, "violations": 0, "status": Counter()})
        for mode in modes:
            run = _runner(operation.as_strategy(generation_mode=GenerationMode(mode)), examples, seed,
                          lambda case, label=label, mode=mode, per_op=per_op: _example(
                              case, label, mode, per_op, admin_key, checks, figures, seen_failures))
            started = time.monotonic()
            before = dict(per_op)
            try:
                run()
            except HypothesisException as exc:  # e.g. no negative example exists for an operation without inputs
                figures["skipped"].append(f"{label} ({mode}): {type(exc).__name__}")
            log(f"{label:<45} {mode:<8} examples {per_op['examples'] - before['examples']:>4}  "
                f"5xx {per_op['5xx'] - before['5xx']}  violations {per_op['violations'] - before['violations']}  "
                f"({time.monotonic() - started:.1f} s)")
    figures["status"] = dict(sorted(figures["status"].items()))
    for per_op in figures["by_operation"].values():
        per_op["status"] = dict(sorted(per_op["status"].items()))
    return figures


def _runner(strategy, examples: int, seed: int, body: Callable) -> Callable[[], None]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(case=strategy)
    def run(case) -> None:
        body(case)

    return run


def _example(case, label: str, mode: str, per_op: dict, admin_key: str, checks: dict, figures: dict,
             seen_failures: set) -> None:
    try:
        response = case.call(headers={"X-API-Key": admin_key})
    except Exception as exc:  # the app raised instead of answering: a server error
        figures["examples"] += 1
        per_op["examples"] += 1
        figures["server_errors"] += 1
        per_op["5xx"] += 1
        _note(figures, seen_failures, label, mode, "server_error", f"{type(exc).__name__}: {exc}", "")
        return
    figures["examples"] += 1
    per_op["examples"] += 1
    figures["status"][response.status_code] += 1
    per_op["status"][response.status_code] += 1
    for name, check in checks.items():
        try:
            case.validate_response(response, checks=[check], headers={"X-API-Key": admin_key})
        except (Exception, BaseExceptionGroup) as exc:  # a FailureGroup from the check
            if name == "server_error":
                figures["server_errors"] += 1
                per_op["5xx"] += 1
            elif name in VIOLATIONS:
                figures["schema_violations"] += 1
                per_op["violations"] += 1
            else:
                figures["undocumented_statuses"] += 1
            found = getattr(exc, "exceptions", None) or [exc]
            message = "; ".join(f"{getattr(f, 'title', type(f).__name__)}: {' '.join(str(getattr(f, 'message', f)).split())}"
                                for f in found)
            _note(figures, seen_failures, label, mode, name, f"[{response.status_code}] {message}",
                  case.as_curl_command(headers={"X-API-Key": admin_key}))


def _note(figures: dict, seen: set, label: str, mode: str, check: str, message: str, curl: str) -> None:
    if (label, check) in seen:
        return
    seen.add((label, check))
    figures["failures"].append({"operation": label, "mode": mode, "check": check, "message": message[:300],
                                "curl": curl[:600]})


def build_home(home: Path, encoder) -> None:
    """A small real index: 300 CORDIS projects (with their participants) and two JOSE papers."""
    import csv

    from scimatch.engine.engine import Engine
    from scimatch.indexer.pipeline import index_paths
    from scimatch.settings import Settings

    source = home.parent / "source" / "cordis"
    source.mkdir(parents=True, exist_ok=True)
    with (SAMPLE / "cordis" / "projects.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, chosen = rows[0], rows[1:301]
    with (source / "projects.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *chosen])
    ids = {row[0] for row in chosen}
    with (SAMPLE / "cordis" / "organizations.csv").open(encoding="utf-8", newline="") as handle:
        orgs = list(csv.reader(handle))
    with (source / "organizations.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([orgs[0], *(r for r in orgs[1:] if r[0] in ids)])
    pdfs = sorted((SAMPLE / "pdfs").glob("*.pdf"))[:2]
    with Engine(Settings(home=home), encoder=encoder) as engine:
        index_paths(engine, [source, *pdfs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=30, help="examples per operation and mode")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--home", type=Path, default=None, help="an index to copy and fuzz (default: build one)")
    parser.add_argument("--negative", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from scimatch.api.main import create_app
    from scimatch.models import load_encoder
    from scimatch.settings import Settings

    defaults = Settings()
    encoder = load_encoder(defaults.model, defaults.dtype, defaults.encode_batch_size)
    workdir = Path(tempfile.mkdtemp(prefix="scimatch-fuzz-"))
    started = time.monotonic()
    try:
        home = workdir / "home"
        if args.home:
            shutil.copytree(args.home, home, ignore=shutil.ignore_patterns("write.lock"))
        else:
            build_home(home, encoder)
        app = create_app(Settings(home=home, admin_key=ADMIN_KEY, rate_limit_per_minute=0), encoder=encoder)
        modes = ("positive", "negative") if args.negative else ("positive",)
        figures = fuzz(app, ADMIN_KEY, args.examples, args.seed, modes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\noperations {figures['operations']}  examples {figures['examples']}  5xx {figures['server_errors']}  "
          f"schema violations {figures['schema_violations']}  (undocumented status codes "
          f"{figures['undocumented_statuses']}, for information)  in {time.monotonic() - started:.0f} s")
    print(f"status codes: {figures['status']}")
    by_op = {op: (f["5xx"], f["violations"]) for op, f in figures["by_operation"].items() if f["5xx"] or f["violations"]}
    if by_op:
        print("operations with failures (5xx, violations):", "; ".join(f"{op} {v}" for op, v in sorted(by_op.items())))
    undocumented = {f["operation"]: f["message"].split("]")[0].strip("[") for f in figures["failures"]
                    if f["check"] == "undocumented_status"}
    if undocumented:
        print("undocumented status codes (first seen):",
              "; ".join(f"{op} {status}" for op, status in sorted(undocumented.items())))
    for failure in figures["failures"]:
        if failure["check"] != "undocumented_status":
            print(f"- {failure['check']} on {failure['operation']} ({failure['mode']}): {failure['message']}\n"
                  f"  {failure['curl']}")
    if figures["skipped"]:
        print("skipped:", "; ".join(figures["skipped"]))
    if args.json:
        print(json.dumps(figures, default=str))
    sys.exit(1 if figures["server_errors"] or figures["schema_violations"] else 0)


if __name__ == "__main__":
    main()
