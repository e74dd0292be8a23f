"""The demo: several contacts enter the no-show follow-up sequence; one replies; the others
receive every step; the call tasks are completed from the CLI. Runs against the embedded stack
(or any stack the settings point at), through the same Python API users call."""

from __future__ import annotations

import asyncio
from collections import Counter
import os
import subprocess
import sys
import time
from importlib import resources

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nurture.contracts.sequence import ExitReason
from nurture.definitions import definition_body, load_definition_text
from nurture.settings import Settings
from nurture.store import Store
from nurture.store.models import EnrollmentStatus
from starters.connect import connect_temporal
from starters.inboxes import Inboxes
from starters.sequences import Sequences

SEQUENCE_FILE = "no-show-follow-up.yaml"
PROSPECTS = [
    ("ada@globex.example", "Ada", "Lovelace"),
    ("grace@globex.example", "Grace", "Hopper"),
    ("linus@initech.example", "Linus", "Torvalds"),
    ("barbara@initech.example", "Barbara", "Liskov"),
]
REPLIER = "grace@globex.example"
SENDER = "riley@nurture-demo.example"
# HubSpot spaces one inbox's sends about 30 s apart; the demo's inbox uses 2 s to stay short.
DEMO_SPACING_SECONDS = 2
COMPANIES = {"globex.example": "Globex", "initech.example": "Initech"}


def _prepare(store: Store) -> tuple[str, list[str]]:
    text = resources.files("nurture.demo").joinpath(SEQUENCE_FILE).read_text()
    definition = load_definition_text(text, SEQUENCE_FILE)
    store.save_definition(definition.id, definition.kind, definition.name, definition_body(definition))
    store.set_definition_status(definition.id, "on")
    store.upsert_user(SENDER, name="Riley Reyes", timezone="UTC", country="US")
    contact_ids = []
    for email, first, last in PROSPECTS:
        domain = email.split("@")[1]
        company = store.upsert_record("company", {"domain": domain, "name": COMPANIES[domain]}).record
        # A demo re-run starts from clean contacts: clear the flags an earlier run may have set.
        contact = store.upsert_record(
            "contact", {"email": email, "firstname": first, "lastname": last, "email_bounced": None,
                        "sales_email_opt_out": None},
        ).record
        store.associate(contact.id, company.id)
        contact_ids.append(contact.id)
    return definition.id, contact_ids


async def run_demo(settings: Settings, console: Console) -> None:
    store = Store.open(settings.resolved_database_url)
    client = await connect_temporal(settings)
    sequences = Sequences(client=client, store=store, settings=settings)
    definition_id, contact_ids = await asyncio.to_thread(_prepare, store)
    # Connecting the inbox starts its watcher, which reads replies and bounces from Gmail.
    await Inboxes(client=client, store=store, settings=settings).connect_local(SENDER, min_spacing=DEMO_SPACING_SECONDS)

    # An interrupted earlier run may have left enrollments open: end them first.
    for cid in contact_ids:
        for e in await asyncio.to_thread(store.open_enrollments, record_id=cid):
            await sequences.unenroll(e.id, reason="demo restarted")
    await _wait(lambda: all(not store.open_enrollments(record_id=c) for c in contact_ids), 30)

    console.print(f"[bold]1.[/bold] Enrolling {len(PROSPECTS)} prospects in [cyan]{definition_id}[/cyan] from {SENDER}")
    results = await sequences.enroll_many(definition_id, contacts=[p[0] for p in PROSPECTS], sender=SENDER)
    enrollments = {}
    for (email, *_), r in zip(PROSPECTS, results):
        if isinstance(r, Exception):
            raise r
        enrollments[email] = r.enrollment_id
        console.print(f"   {email:28} → {r.enrollment_id}  (workflow {r.workflow_id})")

    console.print("[bold]2.[/bold] Waiting for the first emails to go out through the local Gmail endpoint…")
    await _wait(lambda: all(store.get_message(f"msg_{e}_0") and store.get_message(f"msg_{e}_0").status == "sent"
                            for e in enrollments.values()), 60)

    console.print(f"[bold]3.[/bold] {REPLIER} replies in the thread; the inbox watcher finds the reply and she leaves the sequence")
    first = store.get_message(f"msg_{enrollments[REPLIER]}_0")
    assert first is not None
    async with httpx.AsyncClient(base_url=settings.gmail_url) as http:
        r = await http.post("/_local/gmail/inbound", json={
            "mailbox": SENDER, "from": f"Grace Hopper <{REPLIER}>", "subject": f"Re: {first.subject}",
            "text": "Thanks Riley, Thursday 10:00 works for me.", "in_reply_to": first.rfc822_message_id,
        })
        r.raise_for_status()
    await _wait(lambda: store.get_enrollment(enrollments[REPLIER]).exit_reason == ExitReason.REPLIED, 60)

    others = {k: v for k, v in enrollments.items() if k != REPLIER}
    console.print("[bold]4.[/bold] The call tasks come due; completing them from the CLI (`nurture tasks complete TASK_ID`)")
    await _wait(lambda: all(store.task_exists(f"task_{e}_1") for e in others.values()), 60)
    for email, eid in others.items():
        task_id = f"task_{eid}_1"
        proc = subprocess.run(
            [sys.executable, "-m", "nurture.cli.main", "tasks", "complete", task_id],
            capture_output=True, text=True, env=os.environ.copy(),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"`nurture tasks complete {task_id}` failed: {proc.stderr.strip()}")
        console.print(f"   $ nurture tasks complete {task_id}   [dim]# {email}[/dim]", highlight=False)

    console.print("[bold]5.[/bold] The sequence goes on: two threaded follow-ups each")
    with Progress(TextColumn("   {task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        bar = progress.add_task("enrollments finished", total=len(enrollments))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = sum(not store.get_enrollment(e).status.is_open for e in enrollments.values())
            progress.update(bar, completed=done)
            if done == len(enrollments):
                break
            await asyncio.sleep(0.5)

    table = Table(title="Demo enrollments", header_style="bold")
    for col in ("Contact", "Enrollment", "Status", "Exit reason", "Emails sent", "Tasks"):
        table.add_column(col)
    for email, eid in enrollments.items():
        row = store.get_enrollment(eid)
        sent = [m for m in store.list_messages(enrollment_id=eid) if m.status == "sent"]
        tasks = store.list_tasks(enrollment_id=eid)
        by_status = Counter(t.status.value for t in tasks)
        table.add_row(email, eid, row.status.value, row.exit_reason or "", str(len(sent)),
                      ", ".join(f"{n} {status}" for status, n in sorted(by_status.items())) or "none")
    console.print(table)
    unfinished = [e for e in enrollments.values() if store.get_enrollment(e).status is not EnrollmentStatus.FINISHED
                  and store.get_enrollment(e).exit_reason != ExitReason.REPLIED]
    store.close()
    if unfinished:
        raise RuntimeError(f"demo enrollments did not finish in time: {', '.join(unfinished)}; see `nurture status ID`")

    ns = settings.temporal_namespace
    console.print(
        "\n[bold]Where to look[/bold]  (run the commands as `./run nurture ...`, or after `. .venv/bin/activate`)\n"
        f"  Temporal UI     {settings.temporal_ui_url}/namespaces/{ns}/workflows  (one workflow per enrollment)\n"
        f"  The mail        nurture outbox            (add --full for headers and bodies)\n"
        f"  One enrollment  nurture status {next(iter(others.values()))}\n"
        f"  Its tasks       nurture tasks list --status all\n"
        f"  HTTP API        {settings.api_url}/docs   (token in {settings.home / 'api-token'})\n"
        "  Stop the stack  nurture stop              (state is kept; `nurture dev` resumes it)",
        highlight=False,
    )


async def _wait(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the demo waited {timeout:.0f} s for the stack; see NURTURE_HOME/dev.log")
        await asyncio.sleep(0.3)
