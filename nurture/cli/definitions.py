"""``nurture validate|apply|schema|definitions``: definition files and stored versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nurture.cli.common import JsonOption, console, err_console, print_json, store, table, when
from nurture.definitions import DefinitionError, definition_body, definition_json_schema, load_definition_file
from nurture.store.models import DefinitionStatus

definitions_app = typer.Typer(help="Stored definitions: list, show, turn on/off, archive.", no_args_is_help=True)

Files = Annotated[list[Path], typer.Argument(help="Definition files (YAML)", show_default=False)]


def _load_all(files: list[Path]) -> list:
    loaded, problems = [], []
    for f in files:
        try:
            loaded.append(load_definition_file(f))
        except DefinitionError as exc:
            problems.extend(exc.problems)
    if problems:
        for p in problems:
            err_console.print(f"[red]error:[/red] {p}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    return loaded


def validate(files: Files) -> None:
    """Check definition files without saving anything."""
    for d in _load_all(files):
        console.print(f"[green]ok[/green] {d.kind} {d.id}: {len(d.steps)} steps")


def apply(files: Files, json_out: bool = JsonOption) -> None:
    """Validate definition files and store a new version of each (all or none)."""
    loaded = _load_all(files)
    results = []
    for d in loaded:
        before = None
        try:
            before = store().get_definition(d.id).latest_version
        except Exception:
            before = None
        v = store().save_definition(d.id, d.kind, d.name, definition_body(d))
        results.append({"id": d.id, "kind": d.kind, "version": v.version, "changed": v.version != before})
    if json_out:
        print_json(results)
        return
    for r in results:
        state = f"stored version {r['version']}" if r["changed"] else f"unchanged (version {r['version']})"
        console.print(f"{r['kind']} {r['id']}: {state}")


def schema() -> None:
    """Print the JSON Schema of definition files (for editors)."""
    print(json.dumps(definition_json_schema(), indent=2))


@definitions_app.command("list")
def list_definitions(
    archived: bool = typer.Option(False, "--archived", help="Include archived definitions"),
    json_out: bool = JsonOption,
) -> None:
    rows = store().list_definitions(include_archived=archived)
    if json_out:
        print_json(rows)
        return
    table("Definitions", ["ID", "Kind", "Name", "Status", "Version", "Updated"],
          [(d.id, d.kind, d.name, d.status.value, d.latest_version, when(d.updated_at)) for d in rows])


@definitions_app.command("show")
def show(
    definition_id: str,
    version: int | None = typer.Option(None, "--version", help="A stored version (default: latest)"),
    json_out: bool = JsonOption,
) -> None:
    row = store().get_definition(definition_id)
    v = store().get_definition_version(definition_id, version)
    if json_out:
        print_json({"definition": row, "version": v})
        return
    import yaml

    console.print(f"[bold]{row.kind} {row.id}[/bold] — {row.name} — {row.status.value}, version {v.version} of {row.latest_version}")
    console.print(yaml.safe_dump(v.body, sort_keys=False, allow_unicode=True), highlight=False, markup=False)


def _set_status(definition_id: str, status: DefinitionStatus, json_out: bool) -> None:
    row = store().set_definition_status(definition_id, status)
    if json_out:
        print_json(row)
    else:
        console.print(f"{row.kind} {row.id} is now {row.status.value}")


@definitions_app.command("on")
def turn_on(definition_id: str, json_out: bool = JsonOption) -> None:
    """Accept new enrollments."""
    _set_status(definition_id, DefinitionStatus.ON, json_out)


@definitions_app.command("off")
def turn_off(definition_id: str, json_out: bool = JsonOption) -> None:
    """Refuse new enrollments; running enrollments go on to the end."""
    _set_status(definition_id, DefinitionStatus.OFF, json_out)


@definitions_app.command("archive")
def archive(definition_id: str, json_out: bool = JsonOption) -> None:
    """Turn off and hide from lists; running enrollments go on. Applying the file again revives it (off)."""
    _set_status(definition_id, DefinitionStatus.ARCHIVED, json_out)
