"""Schemathesis against the live OpenAPI schema of ``create_app``: every operation, writes included (admin
key), a few schema-valid and schema-breaking examples each. No 5xx anywhere, and every response matches
the schema it is documented with. ``scripts/fuzz_api.py`` is the larger run with the same checks."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from scimatch.api.main import create_app
from scimatch.settings import Settings

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
KEY = "fuzz-admin-key"
EXAMPLES = 6  # per operation and generation mode


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"scimatch_scripts_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fuzz_api = _script("fuzz_api")
OPERATIONS = sorted(f"{method.upper()} {path}"
                    for path, methods in create_app(Settings(home=Path("/nonexistent"))).openapi()["paths"].items()
                    for method in methods)


@pytest.fixture(scope="module")
def figures(tmp_path_factory, index_home, engine, encoder) -> dict:
    engine.catalog.execute("PRAGMA wal_checkpoint(FULL)")
    home = tmp_path_factory.mktemp("fuzz") / "home"
    shutil.copytree(index_home, home, ignore=shutil.ignore_patterns("write.lock"))
    app = create_app(Settings(home=home, admin_key=KEY, rate_limit_per_minute=0), encoder=encoder)
    return fuzz_api.fuzz(app, KEY, examples=EXAMPLES, seed=20240601, log=lambda line: None)


def test_fuzz_reached_every_operation_without_a_server_error(figures):
    assert figures["operations"] == len(OPERATIONS), figures["skipped"]
    assert figures["examples"] >= 4 * len(OPERATIONS), figures["by_operation"]
    assert figures["server_errors"] == 0, [f for f in figures["failures"] if f["check"] == "server_error"]
    assert figures["status"].get(200, 0) > 0 and figures["status"].get(422, 0) > 0, figures["status"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_fuzzed_responses_match_the_schema(figures, operation):
    found = figures["by_operation"][operation]
    assert found["examples"] > 0, found
    problems = [f for f in figures["failures"] if f["operation"] == operation and f["check"] in fuzz_api.VIOLATIONS]
    assert not problems, problems
