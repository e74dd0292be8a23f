"""``nurture records|lists|users``: the record store from the command line."""

from __future__ import annotations

import csv
from pathlib import Path

import typer
from rich.progress import Progress

from nurture.cli.common import JsonOption, console, fail, print_json, store, table, when
from nurture.errors import InvalidInput
from nurture.store.models import RecordType

records_app = typer.Typer(help="Records: contacts, companies, deals, tickets, quotes.", no_args_is_help=True)
lists_app = typer.Typer(help="Static lists and their members.", no_args_is_help=True)
users_app = typer.Typer(help="Users: owners, senders, task assignees.", no_args_is_help=True)


def _parse_props(pairs: list[str]) -> dict[str, str | None]:
    props: dict[str, str | None] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InvalidInput(f"{pair!r} is not NAME=VALUE; e.g. --set firstname=Ada (an empty value removes the property)")
        k, v = pair.split("=", 1)
        if not k.strip():
            raise InvalidInput(f"{pair!r} has no property name before '='")
        props[k.strip()] = v if v != "" else None
    return props


@records_app.command("upsert")
def upsert(
    record_type: RecordType = typer.Argument(..., help="contact, company, deal, ticket or quote"),
    props: list[str] = typer.Option([], "--set", "-s", help="NAME=VALUE (repeatable)"),
    record_id: str | None = typer.Option(None, "--id", help="Update this record"),
    owner: str | None = typer.Option(None, "--owner", help="Owner: user ID or email"),
    company: str | None = typer.Option(None, "--company", help="Associate with this company (ID or domain)"),
    json_out: bool = JsonOption,
) -> None:
    """Create or update a record (contacts match on email, companies on domain) and show what changed."""
    owner_id = store().find_user(owner).id if owner else None
    result = store().upsert_record(record_type, _parse_props(props), record_id=record_id, owner_id=owner_id)
    if company:
        store().associate(result.record.id, store().find_record(RecordType.COMPANY, company).id)
    if json_out:
        print_json(result)
        return
    console.print(f"{'created' if result.created else 'updated'} {result.record.type.value} {result.record.id}")
    for name, ch in result.changes.items():
        console.print(f"  {name}: {ch.old!r} → {ch.new!r}", highlight=False)


@records_app.command("show")
def show(record_id: str, json_out: bool = JsonOption) -> None:
    """Show a record, its associations and its enrollments."""
    rec = store().get_record(record_id)
    assoc = store().associated(rec.id)
    enrollments = store().list_enrollments(record_id=rec.id)
    if json_out:
        print_json({"record": rec, "associations": assoc, "enrollments": enrollments})
        return
    console.print(f"[bold]{rec.type.value} {rec.id}[/bold] {rec.display_name}")
    table(None, ["Property", "Value"], sorted(rec.properties.items()))
    if assoc:
        table("Associated", ["ID", "Type", "Name"], [(a.id, a.type.value, a.display_name) for a in assoc])
    if enrollments:
        table("Enrollments", ["ID", "Definition", "Status", "Exit reason", "Enrolled"],
              [(e.id, e.definition_id, e.status.value, e.exit_reason, when(e.enrolled_at)) for e in enrollments])


@records_app.command("list")
def list_records(
    record_type: RecordType | None = typer.Argument(None), limit: int = 100, json_out: bool = JsonOption,
) -> None:
    rows = store().list_records(record_type, limit=limit)
    if json_out:
        print_json(rows)
        return
    table("Records", ["ID", "Type", "Name", "Email/Domain", "Updated"],
          [(r.id, r.type.value, r.display_name, r.properties.get("email") or r.properties.get("domain"), when(r.updated_at)) for r in rows])


@records_app.command("import")
def import_csv(
    record_type: RecordType = typer.Argument(..., help="contact or company"),
    path: Path = typer.Argument(..., help="CSV file with a header row (contacts need an email column)"),
    json_out: bool = JsonOption,
) -> None:
    """Import contacts or companies from a CSV file. Every row is checked first; a bad row stops
    the import before anything is written."""
    if record_type not in (RecordType.CONTACT, RecordType.COMPANY):
        raise fail("import takes contact or company records")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise fail(f"{path}: no such file") from None
    key = "email" if record_type is RecordType.CONTACT else "domain"
    if rows and key not in rows[0]:
        raise fail(f"{path}: the header has no {key!r} column (found: {', '.join(rows[0])})")
    for n, row in enumerate(rows, start=2):
        if not (row.get(key) or "").strip():
            raise fail(f"{path}: line {n}: {key} is empty; nothing was imported")
        if key == "email" and "@" not in row[key]:
            raise fail(f"{path}: line {n}: {row[key]!r} is not an email address; nothing was imported")
    created = updated = 0
    with Progress(console=console, transient=True, disable=json_out) as progress:
        task = progress.add_task(f"importing {len(rows)} {record_type.value} rows", total=len(rows))
        for row in rows:
            props = {k.strip(): (v.strip() if v else None) for k, v in row.items() if k}
            result = store().upsert_record(record_type, {k: v for k, v in props.items() if v is not None})
            created += result.created
            updated += (not result.created) and bool(result.changes)
            progress.advance(task)
    summary = {"rows": len(rows), "created": created, "updated": updated}
    if json_out:
        print_json(summary)
    else:
        console.print(f"imported {len(rows)} rows: {created} created, {updated} updated")


@records_app.command("associate")
def associate(a: str, b: str) -> None:
    """Associate two records (e.g. a contact with its company)."""
    store().associate(a, b)
    console.print(f"associated {a} ↔ {b}")


@lists_app.command("create")
def create_list(name: str, object_type: RecordType = typer.Option(RecordType.CONTACT, "--type"), json_out: bool = JsonOption) -> None:
    lst = store().create_list(name, object_type)
    print_json(lst) if json_out else console.print(f"list {lst.name} ({lst.id}), {lst.size} members")


@lists_app.command("add")
def add(name: str, record_ids: list[str], json_out: bool = JsonOption) -> None:
    """Add records to a list (all or none)."""
    n = store().add_to_list(name, record_ids)
    print_json({"added": n}) if json_out else console.print(f"added {n} records to {name}")


@lists_app.command("remove")
def remove(name: str, record_ids: list[str], json_out: bool = JsonOption) -> None:
    n = store().remove_from_list(name, record_ids)
    print_json({"removed": n}) if json_out else console.print(f"removed {n} records from {name}")


@lists_app.command("list")
def list_lists(json_out: bool = JsonOption) -> None:
    rows = store().list_lists()
    if json_out:
        print_json(rows)
        return
    table("Lists", ["ID", "Name", "Type", "Members"], [(x.id, x.name, x.object_type.value, x.size) for x in rows])


@lists_app.command("members")
def members(name: str, json_out: bool = JsonOption) -> None:
    rows = store().list_members(name)
    if json_out:
        print_json(rows)
        return
    table(f"Members of {name}", ["ID", "Name", "Email"], [(r.id, r.display_name, r.email) for r in rows])


@users_app.command("add")
def add_user(
    email: str,
    name: str = typer.Option("", "--name"),
    timezone: str | None = typer.Option(None, "--timezone", help="IANA time zone, e.g. America/New_York"),
    country: str | None = typer.Option(None, "--country", help="ISO country code for holidays, e.g. US"),
    json_out: bool = JsonOption,
) -> None:
    """Add or update a user (a sender, owner or task assignee)."""
    if timezone:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise fail(f"unknown time zone {timezone!r}; use an IANA name like Europe/Berlin") from None
    user = store().upsert_user(email, name=name, timezone=timezone, country=country.upper() if country else None)
    print_json(user) if json_out else console.print(f"user {user.id} {user.email}")


@users_app.command("list")
def list_users(json_out: bool = JsonOption) -> None:
    rows = store().list_users()
    if json_out:
        print_json(rows)
        return
    table("Users", ["ID", "Email", "Name", "Time zone", "Country"], [(u.id, u.email, u.name, u.timezone, u.country) for u in rows])
