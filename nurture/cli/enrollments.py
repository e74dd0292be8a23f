"""``nurture enroll|unenroll|pause|resume|status|event|enrollments|tasks|inbox``."""

from __future__ import annotations

import typer

from nurture.cli.common import JsonOption, console, print_json, run_async, settings, store, table, when, with_inboxes, with_sequences
from nurture.contracts.sequence import ExitReason
from nurture.errors import InvalidInput, NurtureError

enroll_app = typer.Typer(help="Enroll records in a sequence (or, later, a workflow).", no_args_is_help=True)
enrollments_app = typer.Typer(help="The enrollment index.", no_args_is_help=True)
tasks_app = typer.Typer(help="Tasks created by sequences.", no_args_is_help=True)
inbox_app = typer.Typer(help="Connected sender inboxes.", no_args_is_help=True)


@enroll_app.command("sequence")
def enroll_sequence(
    sequence_id: str = typer.Argument(..., help="Sequence definition ID"),
    contacts: list[str] = typer.Option(..., "--contact", "-c", help="Contact ID or email (repeat for bulk)"),
    sender: str = typer.Option(..., "--sender", help="Sending user: ID or email, with a connected inbox"),
    start_step: int = typer.Option(1, "--start-step", help="Step number to start at (1 = first)"),
    json_out: bool = JsonOption,
) -> None:
    """Enroll one or many contacts. Exit status 2 if any was refused (the others still start)."""
    from starters.send_forecast import forecast_sends

    results = run_async(with_sequences, lambda s: s.enroll_many(sequence_id, contacts=contacts, sender=sender, start_step=start_step))
    refused = [(c, r) for c, r in zip(contacts, results) if isinstance(r, Exception)]
    started = [r for r in results if not isinstance(r, Exception)]
    forecast = forecast_sends(store(), started[0].sender_id, len(started)) if started else None
    if json_out:
        print_json([
            {"contact": c, "enrollment": r} if not isinstance(r, Exception)
            else {"contact": c, "refused": getattr(r, "reason", type(r).__name__), "message": str(r)}
            for c, r in zip(contacts, results)
        ] + ([{"forecast": forecast}] if forecast and forecast.spills_over else []))
    else:
        for c, r in zip(contacts, results):
            if isinstance(r, Exception):
                console.print(f"[red]refused[/red] {c}: {r}", highlight=False)
            else:
                console.print(f"enrolled {c} as [bold]{r.enrollment_id}[/bold] (workflow {r.workflow_id})", highlight=False)
        if forecast and forecast.spills_over:
            console.print(f"[yellow]note:[/yellow] {forecast.message()}", highlight=False)
    if refused:
        raise typer.Exit(2)


def unenroll(enrollment_id: str, reason: str = typer.Option("unenrolled by hand", "--reason")) -> None:
    """Take an enrollment out of its sequence."""
    run_async(with_sequences, lambda s: s.unenroll(enrollment_id, reason=reason))
    console.print(f"unenroll requested for {enrollment_id}: {reason}")


def pause(enrollment_id: str) -> None:
    """Pause an enrollment; the remaining delay is kept for when it resumes."""
    run_async(with_sequences, lambda s: s.pause(enrollment_id))
    console.print(f"paused {enrollment_id}")


def resume(enrollment_id: str) -> None:
    """Resume a paused enrollment (or retry the step of one that needs review)."""
    run_async(with_sequences, lambda s: s.resume(enrollment_id))
    console.print(f"resumed {enrollment_id}")


def event(
    enrollment_id: str,
    kind: str = typer.Argument(..., help="replied, meeting_booked, bounced or unsubscribed"),
    detail: str = typer.Option("", "--detail"),
) -> None:
    """Report what a contact did; the enrollment leaves its sequence."""
    try:
        reason = ExitReason(kind)
    except ValueError:
        raise InvalidInput(f"{kind!r} is not an event; use replied, meeting_booked, bounced or unsubscribed") from None
    run_async(with_sequences, lambda s: s.report(enrollment_id, reason, detail))
    console.print(f"{kind} reported for {enrollment_id}")


def status(enrollment_id: str, json_out: bool = JsonOption) -> None:
    """An enrollment's state: the index row and, while it runs, what it waits for."""
    view = run_async(with_sequences, lambda s: s.status(enrollment_id))
    if json_out:
        print_json(view)
        return
    e, live = view.enrollment, view.live
    rows = [
        ("Enrollment", e.id), ("Kind", e.kind), ("Definition", f"{e.definition_id} v{e.definition_version}"),
        ("Record", e.record_id), ("Company", e.company_id), ("Sender", e.sender_id), ("Status", e.status.value),
        ("Current step", e.current_step), ("Status detail", e.status_detail), ("Exit reason", e.exit_reason),
        ("Enrolled", when(e.enrolled_at)),
        ("Ended", when(e.ended_at)), ("Workflow ID", e.workflow_id),
    ]
    if live:
        rows += [("Waiting for", live.waiting_for), ("Until", when(live.waiting_until)),
                 ("Steps done", f"{live.steps_completed} of {live.steps_total}")]
        if live.paused_remaining_seconds is not None:
            rows.append(("Remaining delay", f"{live.paused_remaining_seconds:.0f} s"))
    table(None, ["Field", "Value"], rows)


@enrollments_app.command("list")
def list_enrollments(
    record: str | None = typer.Option(None, "--record"),
    definition: str | None = typer.Option(None, "--definition"),
    open_only: bool = typer.Option(False, "--open", help="Only active, paused or needing review"),
    json_out: bool = JsonOption,
) -> None:
    from nurture.store.models import OPEN_ENROLLMENT_STATUSES

    rows = store().list_enrollments(record_id=record, definition_id=definition, statuses=OPEN_ENROLLMENT_STATUSES if open_only else None)
    if json_out:
        print_json(rows)
        return
    table("Enrollments", ["ID", "Definition", "Record", "Status", "Step", "Exit reason", "Enrolled"],
          [(e.id, f"{e.definition_id} v{e.definition_version}", e.record_id, e.status.value, e.current_step, e.exit_reason, when(e.enrolled_at)) for e in rows])


@tasks_app.command("list")
def list_tasks(
    assignee: str | None = typer.Option(None, "--assignee", help="User ID or email"),
    status: str | None = typer.Option("open", "--status", help="open, completed, canceled, or all"),
    enrollment: str | None = typer.Option(None, "--enrollment"),
    json_out: bool = JsonOption,
) -> None:
    assignee_id = store().find_user(assignee).id if assignee else None
    if status not in (None, "all", "open", "completed", "canceled"):
        raise InvalidInput(f"--status {status!r}: use open, completed, canceled or all")
    rows = store().list_tasks(assignee_id=assignee_id, status=None if status == "all" else status, enrollment_id=enrollment)
    if json_out:
        print_json(rows)
        return
    table("Tasks", ["ID", "Type", "Title", "Contact", "Due", "Status"],
          [(t.id, t.type, t.title, t.record_id, when(t.due_at), t.status.value) for t in rows])


@tasks_app.command("complete")
def complete_task(task_id: str, json_out: bool = JsonOption) -> None:
    """Complete a task; a sequence waiting on it goes on."""
    task = run_async(with_sequences, lambda s: s.complete_task(task_id))
    print_json(task) if json_out else console.print(f"completed {task.id}")


@inbox_app.command("connect")
def connect_inbox(
    user: str = typer.Argument(..., help="User ID or email"),
    local: bool = typer.Option(False, "--local", help="The local Gmail endpoint (dev mode, no OAuth)"),
    refresh_token: str | None = typer.Option(
        None, "--refresh-token", envvar="NURTURE_CONNECT_REFRESH_TOKEN",
        help="An OAuth refresh token obtained elsewhere (headless servers); checked before it is stored",
    ),
    daily_cap: int | None = typer.Option(None, "--daily-cap", help="Sends per rolling 24 hours (default 500)"),
    min_spacing: int | None = typer.Option(None, "--min-spacing", help="Seconds between two sends (default 30)"),
    json_out: bool = JsonOption,
) -> None:
    """Connect a user's Gmail inbox for sending and reply detection.

    Without --local or --refresh-token this runs Google's OAuth flow: it prints a URL to open,
    and stores the grant encrypted with NURTURE_ENCRYPTION_KEY. Reconnecting resumes the
    enrollments a disconnection paused."""
    if daily_cap is not None and daily_cap < 1:
        raise InvalidInput("--daily-cap must be at least 1")
    if min_spacing is not None and min_spacing < 0:
        raise InvalidInput("--min-spacing cannot be negative")

    async def go(inboxes):  # type: ignore[no-untyped-def]
        if local:
            return await inboxes.connect_local(user, daily_cap=daily_cap, min_spacing=min_spacing)
        grant = {"refresh_token": refresh_token} if refresh_token else _oauth_flow()
        return await inboxes.connect_grant(user, grant, daily_cap=daily_cap, min_spacing=min_spacing)

    inbox = run_async(with_inboxes, go)
    print_json(inbox) if json_out else console.print(f"connected {inbox.email} ({inbox.provider}); its watcher is running")


def _oauth_flow() -> dict[str, str]:
    from google_auth_oauthlib.flow import InstalledAppFlow

    from activities.gmail_client import GMAIL_SCOPES

    s = settings()
    if not s.live:
        raise NurtureError("Google OAuth needs NURTURE_LIVE=true (the embedded stack uses --local)")
    if not s.google_client_secret:
        raise NurtureError("set NURTURE_GOOGLE_CLIENT_ID and NURTURE_GOOGLE_CLIENT_SECRET (an OAuth client of type Desktop)")
    flow = InstalledAppFlow.from_client_config(
        {"installed": {
            "client_id": s.google_client_id, "client_secret": s.google_client_secret.get_secret_value(),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": s.token_uri,
        }},
        scopes=GMAIL_SCOPES,
    )
    creds = flow.run_local_server(host="127.0.0.1", port=0, open_browser=False, access_type="offline", prompt="consent")
    return {"refresh_token": creds.refresh_token, "token": creds.token}


@inbox_app.command("watch")
def watch_inbox(user: str = typer.Argument(..., help="User ID or email")) -> None:
    """Start (or wake) the inbox's watcher."""
    u = store().find_user(user)
    run_async(with_inboxes, lambda inboxes: inboxes.ensure_watcher(u.id))
    console.print(f"watcher of {u.email} is running")


@inbox_app.command("list")
def list_inboxes(json_out: bool = JsonOption) -> None:
    rows = store().list_inboxes()
    if json_out:
        print_json(rows)
        return
    table("Inboxes", ["User", "Email", "Provider", "State", "Daily cap", "Spacing (s)", "History ID", "Last error"],
          [(i.user_id, i.email, i.provider, i.state, i.daily_cap, i.min_spacing_seconds, i.history_id, i.last_error) for i in rows])
