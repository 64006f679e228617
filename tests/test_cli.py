"""The command line, in process (typer's CliRunner), on a tiny real slice."""

from __future__ import annotations

import json

import pytest
import typer.main
from conftest import DATA, native_line, scifact_lines
from typer.testing import CliRunner

from scimatch.cli import app

runner = CliRunner()


def command_paths(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command of a (typer) click group."""
    paths = []
    for name, command in group.commands.items():
        paths.append((*prefix, name))
        if hasattr(command, "commands"):
            paths.extend(command_paths(command, (*prefix, name)))
    return paths


COMMANDS = command_paths(typer.main.get_command(app))


def test_cli_has_the_expected_commands():
    assert {c[0] for c in COMMANDS} >= {"index", "search", "similar", "delete", "stats", "repair", "eval"}
    assert ("eval", "beir") in COMMANDS


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "app")
def test_every_command_has_help(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    assert len(result.output.strip().splitlines()) > 3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, encoder):
    """A native JSONL file of 8 real SciFact records, indexed through the CLI into a fresh home."""
    folder = tmp_path_factory.mktemp("cli")
    records = [native_line(line) for line in scifact_lines(400, 408)]
    source = folder / "tiny.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    home = folder / "home"
    result = runner.invoke(app, ["index", str(source), "--home", str(home), "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {"added": 8, "updated": 0, "unchanged": 0, "rejected": []}
    return source, home, records


def test_index_again_reports_unchanged(tiny):
    source, home, records = tiny
    result = runner.invoke(app, ["index", str(source), "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["unchanged"] == len(records)
    assert "unchanged 8" in result.output


@pytest.mark.parametrize("mode", ["bm25", "vector", "hybrid"])
def test_search_json(tiny, mode):
    _, home, records = tiny
    target = records[5]
    result = runner.invoke(app, ["search", target["title"], "--home", str(home), "--mode", mode, "--json",
                                 "--size", "3"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["mode"] == mode and 1 <= len(body["hits"]) <= 3
    assert body["hits"][0]["id"] == target["id"]
    assert "breakdown" in body["hits"][0] and "facets" in body


def test_search_table(tiny):
    _, home, records = tiny
    result = runner.invoke(app, ["search", records[2]["title"], "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert records[2]["id"] in result.stdout


@pytest.mark.parametrize("args, fragment", [
    (["--mode", "fuzzy"], "mode"),
    (["--size", "0"], "size"),
    (["--year-min", "2020", "--year-max", "2010"], "year"),
    (["--kind", "spaceship"], "spaceship"),
    (["--org-kind", "alien"], "research_institute"),
])
def test_bad_search_options_fail_with_a_message(tiny, args, fragment):
    _, home, _ = tiny
    result = runner.invoke(app, ["search", "autophagy", "--home", str(home), *args])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert fragment in result.output


def test_similar_stats_and_repair(tiny):
    _, home, records = tiny
    similar = runner.invoke(app, ["similar", records[0]["id"], "--home", str(home), "--json", "--size", "3"])
    assert similar.exit_code == 0, similar.output
    got = [h["id"] for h in json.loads(similar.stdout)["hits"]]
    assert len(got) == 3 and records[0]["id"] not in got
    stats = runner.invoke(app, ["stats", "--home", str(home)])
    assert stats.exit_code == 0 and json.loads(stats.stdout)["documents"] == len(records)
    repair = runner.invoke(app, ["repair", "--home", str(home)])
    assert repair.exit_code == 0 and "problems found: none" in repair.output
    neither = runner.invoke(app, ["similar", "--home", str(home)])
    assert neither.exit_code != 0 and "exactly one" in neither.output
    unknown = runner.invoke(app, ["similar", "no-such-record", "--home", str(home)])
    assert unknown.exit_code != 0 and "no-such-record" in unknown.output


def test_delete(tmp_path, encoder):
    records = [native_line(line) for line in scifact_lines(410, 413)]
    source = tmp_path / "three.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    home = tmp_path / "home"
    assert runner.invoke(app, ["index", str(source), "--home", str(home)]).exit_code == 0
    deleted = runner.invoke(app, ["delete", records[1]["id"], "--home", str(home)])
    assert deleted.exit_code == 0 and "deleted 1" in deleted.output
    stats = json.loads(runner.invoke(app, ["stats", "--home", str(home)]).stdout)
    assert stats["documents"] == 2
    missing = runner.invoke(app, ["delete", records[1]["id"], "--home", str(home)])
    assert missing.exit_code != 0 and records[1]["id"] in missing.output


def test_index_missing_file_names_it_and_fails(tmp_path):
    missing = tmp_path / "no-such-file.jsonl"
    result = runner.invoke(app, ["index", str(missing), "--home", str(tmp_path / "home")])
    assert str(missing) in result.output.replace("\n", "")
    assert result.exit_code != 0, "nothing could be indexed: the command must fail"


def test_index_bad_lines_are_listed_with_file_and_line(tmp_path):
    lines = scifact_lines(420, 423)
    source = tmp_path / "mixed.jsonl"
    unknown_kind = {**native_line(lines[2]), "id": "x-kind", "kind": "spaceship"}
    source.write_text(json.dumps(native_line(lines[0])) + "\n" + lines[1][:40] + "\n"
                      + json.dumps(native_line(lines[2])) + "\n" + json.dumps(unknown_kind) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["index", str(source), "--home", str(tmp_path / "home")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["added"] == 2 and len(summary["rejected"]) == 2
    assert summary["rejected"][0].startswith(f"{source}:2: invalid JSON") and "(column " in summary["rejected"][0]
    assert f"{source}:2" in result.output.replace("\n", "")
    # the valid kinds by name, not as Python enum members
    assert summary["rejected"][1].startswith(f"{source}:4:") and "publication, project" in summary["rejected"][1]
    assert "RecordKind" not in summary["rejected"][1]


def test_index_unknown_format_fails_with_choices(tmp_path):
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps(native_line(scifact_lines(430, 431)[0])) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["index", str(source), "--home", str(tmp_path / "home"), "--format", "xml"])
    assert result.exit_code != 0
    assert "xml" in result.output and "jsonl" in result.output


def test_mismatching_index_is_refused_with_a_message(tiny, tmp_path):
    import shutil

    _, home, _ = tiny
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["model"] = "another-model"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["stats", "--home", str(copy)])
    assert result.exit_code != 0 and "another-model" in result.output


# ---- bad input to the matching and evaluation commands ----------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["match", "enterprises", "no such organisation"], "no organisation"),
        (["match", "profile", "no such organisation"], "no organisation"),
        (["match", "experts", "   "], "empty"),
        (["match", "partners"], "exactly one"),
    ],
)
def test_match_commands_reject_bad_input(tiny, args, message) -> None:
    result = CliRunner().invoke(app, [*args, "--home", str(tiny[1])])
    assert result.exit_code != 0
    assert message in result.output


@pytest.mark.parametrize("args", [["search", "autophagy"], ["stats"], ["match", "partners", "autophagy"],
                                  ["similar", "--text", "autophagy"]])
def test_reading_commands_refuse_a_folder_without_an_index_and_leave_it_alone(tmp_path, args) -> None:
    """A mistyped --home is named; no empty index is left there to answer later searches with nothing."""
    home = tmp_path / "typo"
    result = CliRunner().invoke(app, [*args, "--home", str(home)])
    assert result.exit_code == 1 and "no index at" in result.output and "typo" in result.output
    assert not home.exists()


def test_outputs_that_cannot_be_written_fail_before_the_work_with_a_message(tiny, tmp_path) -> None:
    home = str(tiny[1])
    for args in (["stats", "regions", "--format", "csv", "-o", str(tmp_path / "no" / "x.csv")],
                 ["stats", "regions", "--format", "json", "-o", str(tmp_path)],
                 ["duplicates", "scan", "ANY", "--csv-out", str(tmp_path / "no" / "x.csv")]):
        result = CliRunner().invoke(app, [*args, "--home", home])
        assert result.exit_code == 1 and "cannot write" in result.output, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def test_bad_csv_mapping_and_empty_similar_text_fail_with_a_message(tiny, tmp_path) -> None:
    source = tmp_path / "t.csv"
    source.write_text("id,abstract\nx1,Autophagy in yeast\n", encoding="utf-8")
    for mapping, fragment in (("bogus", "FIELD=COLUMN"), ("=abstract", "--map"), ("foo=abstract", "foo")):
        result = CliRunner().invoke(app, ["index", str(source), "--map", mapping, "--home", str(tmp_path / "h")])
        assert result.exit_code == 1 and fragment in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    result = CliRunner().invoke(app, ["similar", "--text", " ", "--home", str(tiny[1])])
    assert result.exit_code == 1 and "empty" in result.output


def test_eval_commands_name_a_missing_folder(tmp_path) -> None:
    missing = tmp_path / "nowhere"
    for args in (["eval", "beir", str(missing)], ["eval", "partners", str(missing), "--home", str(tmp_path / "h")],
                 ["eval", "enterprises", str(missing), "--home", str(tmp_path / "h")]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1 and "nowhere" in result.output, result.output


def test_eval_partners_refuses_an_unwritable_save_path_before_any_work(tmp_path) -> None:
    home = tmp_path / "h"
    result = CliRunner().invoke(app, ["eval", "partners", str(DATA / "cordis"), "--home", str(home),
                                      "--save", str(tmp_path / "no-such-folder" / "out.json")])
    assert result.exit_code == 1 and "no-such-folder" in result.output, result.output
    assert not home.exists()  # refused before the CORDIS export was indexed


# ---- proposals, duplicate checks, keys, audit --------------------------------------------------------
@pytest.fixture(scope="module")
def proposals_home(tiny, tmp_path_factory):
    """The tiny index plus a call of three proposals (real SciFact abstracts; P2 repeats half of P1)."""
    _, home, records = tiny
    folder = tmp_path_factory.mktemp("proposals")
    first, second = (json.loads(line) for line in scifact_lines(420, 422))
    half = ". ".join(first["text"].split(". ")[: max(2, first["text"].count(". ") // 2)])
    rows = [{"kind": "proposal", "id": "P1", "call": "CALL-A", "title": first["title"], "text": first["text"]},
            {"kind": "proposal", "id": "P2", "call": "CALL-A", "title": "Resubmission", "text": half},
            {"kind": "proposal", "id": "P3", "call": "CALL-A", "title": second["title"], "text": second["text"]}]
    source = folder / "proposals.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = runner.invoke(app, ["index", str(source), "--home", str(home)])
    assert result.exit_code == 0, result.output
    return home, folder, first


def test_duplicates_scan_and_check_from_the_cli(proposals_home):
    home, folder, first = proposals_home
    csv_path = folder / "report.csv"
    result = runner.invoke(app, ["duplicates", "scan", "CALL-A", "--home", str(home), "--json", "--csv-out", str(csv_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["proposals"] == 3 and report["clusters"] == [["P1", "P2"]]
    assert csv_path.read_text().splitlines()[1].startswith(("P1,P2", "P2,P1"))
    text_file = folder / "draft.txt"
    text_file.write_text(first["text"], encoding="utf-8")
    check = runner.invoke(app, ["duplicates", "check", str(text_file), "--home", str(home), "--json"])
    assert check.exit_code == 0, check.output
    top = json.loads(check.stdout)["matches"][0]
    assert top["id"] == "P1" and top["verdict"] == "duplicate" and top["passages"]
    # the catalog never holds a proposal, so the public search cannot find one
    search = runner.invoke(app, ["search", first["title"], "--home", str(home), "--json"])
    assert "P1" not in [h["id"] for h in json.loads(search.stdout)["hits"]]
    audit = runner.invoke(app, ["audit", "--home", str(home), "--json"])
    assert {e["action"] for e in json.loads(audit.stdout)} >= {"duplicates.scan", "duplicates.check"}


@pytest.mark.parametrize("args,message", [
    (["duplicates", "scan", "NO-SUCH-CALL"], "NO-SUCH-CALL"),
    (["duplicates", "check", "EMPTY"], "empty"),
    (["duplicates", "check"], "exactly one"),
    (["duplicates", "check", "--text", "   "], "empty"),
])
def test_duplicate_commands_reject_bad_input(proposals_home, args, message):
    home, folder, _ = proposals_home
    (folder / "empty.txt").write_text("", encoding="utf-8")
    args = [str(folder / "empty.txt") if a == "EMPTY" else a for a in args]
    result = runner.invoke(app, [*args, "--home", str(home)])
    assert result.exit_code != 0 and message in result.output


def test_keys_are_shown_once_and_stored_hashed(tmp_path):
    result = runner.invoke(app, ["keys", "add", "olga", "--role", "officer", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    stored = (tmp_path / "api_keys.json").read_text()
    assert key not in stored and "olga" in stored and oct((tmp_path / "api_keys.json").stat().st_mode)[-3:] == "600"
    from scimatch.api.auth import KeyRing

    principal = KeyRing.load(tmp_path / "api_keys.json", None, None).identify(key)
    assert principal is not None and principal.name == "olga" and principal.role.name == "officer"
    assert runner.invoke(app, ["keys", "add", "olga", "--home", str(tmp_path)]).exit_code != 0
    assert runner.invoke(app, ["keys", "revoke", "olga", "--home", str(tmp_path)]).exit_code == 0
    assert KeyRing.load(tmp_path / "api_keys.json", None, None).identify(key) is None
