"""``nurture dev|stop|demo|worker|api|outbox|db|temporal``: running Nurture."""

from __future__ import annotations

import asyncio
import logging

import typer

from nurture.cli.common import JsonOption, console, print_json, settings, table, when

db_app = typer.Typer(help="The store's database schema.", no_args_is_help=True)
temporal_app = typer.Typer(help="Temporal namespace setup.", no_args_is_help=True)


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def dev(detach: bool = typer.Option(False, "--detach", help="Run in the background (log in NURTURE_HOME/dev.log)")) -> None:
    """Run the embedded stack: Temporal dev server + UI, worker, HTTP API, local SendGrid and Gmail."""
    from nurture import devstack

    s = settings()
    if detach:
        if devstack.running_pid(s):
            console.print("the dev stack is already running")
            return
        pid = devstack.start_detached(s)
        console.print(f"dev stack running in the background (pid {pid}); Temporal UI {s.temporal_ui_url}; stop it with `nurture stop`")
        return
    _logging("WARNING")
    asyncio.run(devstack.run_dev(s, announce=lambda text: console.print(text, highlight=False)))


def stop() -> None:
    """Stop a dev stack started with `nurture dev --detach` (or `nurture demo`)."""
    from nurture import devstack

    if devstack.stop_detached(settings()):
        console.print("dev stack stopped; state kept in " + str(settings().home))
    else:
        console.print("no dev stack is running")


def demo(
    keep_running: bool = typer.Option(True, "--keep-running/--stop-after", help="Leave the dev stack running to explore"),
) -> None:
    """The main job: start the embedded stack if needed, run the no-show follow-up demo, show where to look."""
    from nurture import devstack
    from nurture.demo.no_show import run_demo

    s = settings()
    started = False
    if not devstack.running_pid(s) or not devstack.port_answers("127.0.0.1", s.api_port):
        console.print("starting the embedded stack (Temporal dev server, worker, API, local Gmail and SendGrid)…")
        devstack.start_detached(s)
        started = True
    try:
        asyncio.run(run_demo(s, console))
    finally:
        if started and not keep_running:
            devstack.stop_detached(s)


def worker() -> None:
    """Run a worker against the configured Temporal (scale out by running more)."""
    from workers.worker import run_worker

    _logging()
    asyncio.run(run_worker(settings()))


def api() -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs)."""
    import uvicorn

    from nurture.api.app import create_app

    s = settings()
    _logging()
    uvicorn.run(create_app(s), host=s.api_host, port=s.api_port, log_level="info")


def outbox(
    limit: int = typer.Option(20, "--limit"),
    channel: str | None = typer.Option(None, "--channel", help="gmail or sendgrid"),
    full: bool = typer.Option(False, "--full", help="Print each message's headers and body"),
    json_out: bool = JsonOption,
) -> None:
    """Messages captured by the local SendGrid and Gmail endpoints, newest first."""
    from nurture.local.mailstore import MailStore
    from nurture.local.outbox import list_outbox

    path = settings().home / "mailsink.db"
    if not path.exists():
        rows = []
    else:
        mail = MailStore(str(path))
        try:
            rows = list_outbox(mail, limit=limit, channel=channel)
        finally:
            mail.close()
    if json_out:
        print_json(rows)
        return
    if full:
        for m in rows:
            console.rule(f"{m.channel} {when(m.sent_at)}")
            for k in ("From", "To", "Subject", "Message-ID", "In-Reply-To", "References"):
                if m.headers.get(k):
                    console.print(f"[bold]{k}:[/bold] {m.headers[k]}", highlight=False)
            console.print(m.text or "", highlight=False, markup=False)
        return
    table("Outbox", ["Sent", "Via", "From", "To", "Subject", "Thread"],
          [(when(m.sent_at), m.channel, m.from_addr, ", ".join(m.to), m.subject, m.thread_id) for m in rows])


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the store's schema migrations (a deploy step for PostgreSQL)."""
    from nurture.store import create_db_engine
    from nurture.store.migrate import current_revision, upgrade

    engine = create_db_engine(settings().resolved_database_url)
    upgrade(engine)
    console.print(f"database schema at revision {current_revision(engine)}")
    engine.dispose()


@db_app.command("current")
def db_current() -> None:
    from nurture.store import create_db_engine
    from nurture.store.migrate import current_revision, head_revision

    engine = create_db_engine(settings().resolved_database_url)
    console.print(f"current {current_revision(engine)}, head {head_revision()}")
    engine.dispose()


@temporal_app.command("setup")
def temporal_setup() -> None:
    """Register Nurture's search attributes on the configured namespace (idempotent)."""
    from nurture.temporal_setup import ensure_search_attributes
    from starters.connect import connect_temporal

    async def go() -> list[str]:
        client = await connect_temporal(settings())
        return await ensure_search_attributes(client, settings().temporal_namespace)

    added = asyncio.run(go())
    console.print(f"search attributes added: {', '.join(added)}" if added else "search attributes already present")
