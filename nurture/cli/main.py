"""``nurture``: one command, subcommands for every job. Bad input exits 2 with one clear line."""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from nurture.cli import definitions, enrollments, ops, records
from nurture.cli.common import handle_error

app = typer.Typer(
    name="nurture",
    help="Sales sequences and marketing workflows as durable Temporal workflows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.command("dev")(ops.dev)
app.command("stop")(ops.stop)
app.command("demo")(ops.demo)
app.command("worker")(ops.worker)
app.command("api")(ops.api)
app.command("outbox")(ops.outbox)
app.command("validate")(definitions.validate)
app.command("apply")(definitions.apply)
app.command("schema")(definitions.schema)
app.command("unenroll")(enrollments.unenroll)
app.command("pause")(enrollments.pause)
app.command("resume")(enrollments.resume)
app.command("status")(enrollments.status)
app.command("event")(enrollments.event)
app.add_typer(definitions.definitions_app, name="definitions")
app.add_typer(enrollments.enroll_app, name="enroll")
app.add_typer(enrollments.enrollments_app, name="enrollments")
app.add_typer(enrollments.tasks_app, name="tasks")
app.add_typer(enrollments.inbox_app, name="inbox")
app.add_typer(records.records_app, name="records")
app.add_typer(records.lists_app, name="lists")
app.add_typer(records.users_app, name="users")
app.add_typer(ops.db_app, name="db")
app.add_typer(ops.temporal_app, name="temporal")


def main(argv: list[str] | None = None) -> int:
    try:
        result = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return 130
    except TyperException as exc:  # usage errors: the parser's own message, exit status 2
        show = getattr(exc, "show", None)
        if show:
            show()
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 — the one place errors become messages
        code = handle_error(exc)
        if code >= 0:
            return code
        raise
    # Without standalone mode, an Exit raised inside a command comes back as its status.
    return result if isinstance(result, int) else 0


def entrypoint() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
