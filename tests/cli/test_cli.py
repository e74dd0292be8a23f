"""The command line: exit status 2 with one clear line for bad input, --json on reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nurture.cli import common
from nurture.cli.main import main
from nurture.settings import get_settings

GOOD = """
kind: sequence
id: no-show
name: No-show follow-up
steps:
  - type: email
    subject: "Sorry we missed you"
    body: "Hi {{ contact.firstname | default('there') }}"
  - type: call_task
    delay: 1d
    title: Call
"""

BROKEN = GOOD.replace("delay: 1d", "delay: 2 days") + """
  - type: email
    delay: 2d
    thread_with: nowhere
    body: "again"
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NURTURE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NURTURE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    common._store = None
    yield
    if common._store is not None:
        common._store.close()
    common._store = None
    get_settings.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_names_file_field_and_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "no-show.yaml").write_text(BROKEN)
    code, out, err = run(capsys, "validate", "no-show.yaml")
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert any(line.startswith("error: no-show.yaml: steps[1].delay: '2 days' is not a delay") for line in lines), err
    assert any("steps[2].thread_with: 'nowhere' is not an earlier email step" in line for line in lines) or \
        any("no-show.yaml" in line for line in lines)
    assert "Traceback" not in err


def test_validate_reports_yaml_syntax_with_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("kind: sequence\nsteps: [\n")
    code, _, err = run(capsys, "validate", "bad.yaml")
    assert code == 2 and "bad.yaml: line" in err and "invalid YAML" in err


def test_invalid_apply_stores_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "no-show.yaml").write_text(BROKEN.replace("id: no-show", "id: other"))
    code, _, err = run(capsys, "apply", "good.yaml", "no-show.yaml")
    assert code == 2 and "no-show.yaml" in err
    code, out, _ = run(capsys, "definitions", "list", "--json")
    assert code == 0 and json.loads(out) == []


def test_apply_versions_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    assert run(capsys, "apply", "good.yaml")[0] == 0
    code, out, _ = run(capsys, "apply", "good.yaml", "--json")
    assert json.loads(out) == [{"id": "no-show", "kind": "sequence", "version": 1, "changed": False}]
    (tmp_path / "good.yaml").write_text(GOOD.replace("Sorry we missed you", "Sorry!"))
    code, out, _ = run(capsys, "apply", "good.yaml", "--json")
    assert json.loads(out)[0]["version"] == 2
    assert run(capsys, "definitions", "off", "no-show")[0] == 0
    code, out, _ = run(capsys, "definitions", "show", "no-show", "--version", "1", "--json")
    data = json.loads(out)
    assert data["definition"]["status"] == "off" and data["version"]["body"]["steps"][0]["subject"] == "Sorry we missed you"
    code, _, err = run(capsys, "definitions", "show", "missing")
    assert code == 2 and "no definition 'missing'" in err


def test_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    schema = json.loads(out)
    assert code == 0 and schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["required"]) >= {"kind", "id", "name", "steps"}
    assert "EmailStep" in schema["$defs"] and "TaskStep" in schema["$defs"]


def test_records_upsert_show_and_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "records", "upsert", "company", "--set", "domain=globex.test", "--set", "name=Globex", "--json")
    assert code == 0 and json.loads(out)["created"]
    code, out, _ = run(capsys, "records", "upsert", "contact", "-s", "email=ada@globex.test", "-s", "firstname=Ada",
                       "--company", "globex.test", "--json")
    ada = json.loads(out)["record"]["id"]
    code, out, _ = run(capsys, "records", "upsert", "contact", "-s", "email=ada@globex.test", "-s", "firstname=Augusta")
    assert "firstname: 'Ada' → 'Augusta'" in out
    code, out, _ = run(capsys, "records", "show", ada, "--json")
    shown = json.loads(out)
    assert shown["record"]["properties"]["firstname"] == "Augusta" and shown["associations"][0]["type"] == "company"

    (tmp_path / "contacts.csv").write_text("email,firstname\ngrace@x.test,Grace\nada@globex.test,Ada\n")
    code, out, _ = run(capsys, "records", "import", "contact", "contacts.csv", "--json")
    assert code == 0 and json.loads(out) == {"rows": 2, "created": 1, "updated": 1}
    (tmp_path / "bad.csv").write_text("email,firstname\nlinus@x.test,Linus\nnot-an-email,Bad\n")
    code, _, err = run(capsys, "records", "import", "contact", "bad.csv")
    assert code == 2 and "line 3" in err and "nothing was imported" in err
    code, out, _ = run(capsys, "records", "list", "contact", "--json")
    assert "linus@x.test" not in out  # the bad file wrote nothing

    code, _, err = run(capsys, "records", "upsert", "contact", "--set", "oops")
    assert code == 2 and "NAME=VALUE" in err


def test_lists(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "records", "upsert", "contact", "-s", "email=a@x.test", "--json")
    cid = json.loads(out)["record"]["id"]
    assert run(capsys, "lists", "create", "Suppression")[0] == 0
    code, out, _ = run(capsys, "lists", "add", "Suppression", cid, "--json")
    assert json.loads(out) == {"added": 1}
    code, out, _ = run(capsys, "lists", "members", "Suppression", "--json")
    assert [r["id"] for r in json.loads(out)] == [cid]
    code, _, err = run(capsys, "lists", "add", "Suppression", "ct_missing")
    assert code == 2 and "ct_missing" in err


def test_enroll_refusals_exit_2_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "users", "add", "rep@x.test", "--timezone", "Mars/Olympus")
    assert code == 2 and "unknown time zone" in err
    code, _, err = run(capsys, "tasks", "list", "--status", "someday")
    assert code == 2 and "--status" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "records", "upsert", "planet")
    assert code == 2
