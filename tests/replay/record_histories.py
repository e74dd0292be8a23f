"""Record the histories the replay tests replay: representative enrollments run under the
time-skipping test server with the real activities and the local Gmail endpoint.

    .venv/bin/python -m tests.replay.record_histories [OUT_DIR [SCENARIO ...]]   (default: tests/replay/histories, all)

Run it again only on purpose: the point of the saved files is that *today's* histories must keep
replaying under *tomorrow's* workflow code. Record new files (new names) for new behaviour, and
keep the old ones. Each file is ``histories/<name>.json`` (``WorkflowHistory.to_json()``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from temporalio.api.enums.v1 import IndexedValueType  # noqa: E402
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest  # noqa: E402
from temporalio.client import WorkflowHistory  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from nurture import search_attributes  # noqa: E402
from nurture.contracts.sequence import ActivityName, ExitReason  # noqa: E402
from nurture.local import MailStore, create_gmail_app, start_in_thread  # noqa: E402
from nurture.settings import Settings  # noqa: E402
from nurture.store import Store  # noqa: E402
from tests.sequences.conftest import World, idle, late_send_email, make_world, readable_history, timer_open  # noqa: E402

HISTORIES = Path(__file__).parent / "histories"
DAY = dt.timedelta(days=1)

TASK_WAIT = """
kind: sequence
id: replay-task-wait
name: Replay - task wait
settings: {eligible_days: every_day}
steps:
  - {type: email, id: intro, subject: "Hello {{ contact.firstname }}", body: "Hi {{ contact.firstname }}"}
  - {type: call_task, delay: 1d, title: "Call {{ contact.firstname }}", priority: high}
  - {type: email, delay: 2d, thread_with: intro, body: "Following up on our call"}
  - {type: todo_task, delay: 1d, title: "Connect on LinkedIn", wait_for_completion: false}
"""

THREE_EMAILS = """
kind: sequence
id: {id}
name: Replay - {id}
settings: {{eligible_days: every_day, unenroll_company_on_reply: true}}
steps:
  - {{type: email, id: intro, subject: "Hello {{{{ contact.firstname }}}}", body: "Hi"}}
  - {{type: email, delay: 2d, thread_with: intro, body: "Bump"}}
  - {{type: email, delay: 1d 4h, subject: "Last note", body: "{{{{ contact.lastname }}}}, bye"}}
"""

WINDOWED = """
kind: sequence
id: replay-window
name: Replay - window
settings:
  eligible_days: weekdays
  send_window: {start: "09:00", end: "17:00"}
steps:
  - {type: email, subject: "Hello", body: "Hi"}
  - {type: email, delay: 1d, subject: "Again", body: "Hi again"}
"""


async def task_wait(world: World) -> dict[str, WorkflowHistory]:
    """Emails, a task the sequence waits for (completed two days late), a non-waiting task."""
    world.apply(TASK_WAIT)
    ada = world.contacts[0]
    async with world.worker():
        started = await world.enroll("replay-task-wait", ada)
        await world.drive(started, until=lambda h: idle(h) and bool(world.store.list_tasks(enrollment_id=started.enrollment_id)))
        await world.skip(2 * DAY)
        [task] = world.store.list_tasks(enrollment_id=started.enrollment_id)
        await world.sequences.complete_task(task.id)
        await world.result(started)
        return {"task_wait": await world.history(started)}


async def pause_resume(world: World) -> dict[str, WorkflowHistory]:
    """Paused a day into a two-day delay, resumed three days later; the last step needs a
    token that is missing, so it waits for review, and resume after the fix sends it."""
    world.apply(THREE_EMAILS.format(id="replay-pause"))
    grace = world.contacts[1]
    async with world.worker():
        started = await world.enroll("replay-pause", grace)
        await world.drive(started, until=timer_open)
        await world.skip(DAY)
        await world.sequences.pause(started.enrollment_id)
        await world.drive(started, until=idle)
        await world.skip(3 * DAY)
        await world.sequences.resume(started.enrollment_id)
        await world.drive(started, until=lambda h: idle(h) and world.store.get_enrollment(started.enrollment_id).status.value == "needs_review")
        world.store.upsert_record("contact", {"lastname": "Hopper"}, record_id=grace.id)
        await world.sequences.resume(started.enrollment_id)
        await world.result(started)
        return {"pause_resume_review": await world.history(started)}


async def reply_exit(world: World) -> dict[str, WorkflowHistory]:
    """Two contacts of one company; one replies: she leaves (replied), the company option
    takes the other out (company_replied)."""
    world.apply(THREE_EMAILS.format(id="replay-reply"))
    ada, linus = world.contacts[0], world.contacts[2]
    async with world.worker():
        first = await world.enroll("replay-reply", ada)
        second = await world.enroll("replay-reply", linus)
        for s in (first, second):
            await world.drive(s, until=timer_open)
        await world.sequences.report(first.enrollment_id, ExitReason.REPLIED, detail="reply in thread")
        await world.result(first)
        await world.result(second)
        return {"reply_exit": await world.history(first), "company_replied": await world.history(second)}


async def deferred(world: World) -> dict[str, WorkflowHistory]:
    """A step whose send ran after the window closed: deferred to the next window."""
    world.apply(WINDOWED)
    grace = world.contacts[1]
    await world.align(hour=10, weekday=1)
    async with world.worker(**{ActivityName.SEND_EMAIL: late_send_email(world, 1, dt.timedelta(hours=8))}):
        started = await world.enroll("replay-window", grace)
        await world.result(started)
        return {"deferred": await world.history(started)}


async def early_signals(world: World) -> dict[str, WorkflowHistory]:
    """Paused before any worker ran it (the signal comes with the first workflow task), then
    resumed; then unenrolled by hand."""
    world.apply(THREE_EMAILS.format(id="replay-early"))
    linus = world.contacts[2]
    started = await world.enroll("replay-early", linus)
    await world.sequences.pause(started.enrollment_id)
    async with world.worker():
        await world.drive(started, until=idle)
        await world.sequences.resume(started.enrollment_id)
        await world.drive(started, until=timer_open)
        await world.sequences.unenroll(started.enrollment_id, reason="asked by phone")
        await world.result(started)
        return {"early_pause_unenroll": await world.history(started)}


async def inbox_disconnected(world: World) -> dict[str, WorkflowHistory]:
    """The sender's grant is revoked after the first email: the enrollment pauses ("inbox
    disconnected", the ``inbox-disconnect-pauses`` patch); reconnecting resumes it."""
    from nurture.local.gmail_api import access_token_for
    from starters.inboxes import Inboxes

    world.apply(THREE_EMAILS.format(id="replay-inbox"))
    ada = world.contacts[0]
    world.store.upsert_record("contact", {"lastname": "Lovelace"}, record_id=ada.id)  # the last step needs it
    token = access_token_for(world.sender.email)
    async with world.worker():
        started = await world.enroll("replay-inbox", ada)
        await world.drive(started, until=timer_open)
        world.mail.revoke_tokens([token])
        await world.drive(started, until=lambda h: idle(h) and world.store.get_enrollment(started.enrollment_id).status_detail == "inbox disconnected")
        world.mail.restore_tokens([token])
        world.store.set_inbox_state(world.sender.id, "connected")
        await Inboxes(client=world.client, store=world.store, settings=world.settings).resume_paused(world.sender.id)
        await world.result(started)
        return {"inbox_disconnected": await world.history(started)}


SCENARIOS: list[Callable[[World], Awaitable[dict[str, WorkflowHistory]]]] = [
    task_wait, pause_resume, reply_exit, deferred, early_signals, inbox_disconnected,
]


async def record(out: Path = HISTORIES, names: list[str] | None = None) -> list[Path]:
    """Record every scenario, or only ``names`` (scenario function names): add new files for new
    behaviour without re-recording the old ones."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace,
        search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in search_attributes.ALL_KEYS},
    ))
    mail = MailStore(":memory:")
    gmail = start_in_thread(create_gmail_app(mail))
    written: list[Path] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                home=Path(tmp) / "home", gmail_api_endpoint=gmail.url, google_token_uri=f"{gmail.url}/token",
                timezone="UTC", country="US", task_queue=f"replay-{uuid.uuid4().hex[:8]}", secret_key="replay-secret",
            )
            store = Store.open(f"sqlite:///{Path(tmp) / 'nurture.db'}")
            try:
                world = make_world(store, settings, mail, env.client, env=env)
                out.mkdir(parents=True, exist_ok=True)
                only = set(names or ())
                for scenario in SCENARIOS:
                    if only and scenario.__name__ not in only:
                        continue
                    for name, history in (await scenario(world)).items():
                        text = history.to_json()
                        assert "@globex.test" not in readable_history(text), f"{name}: an email address in history"
                        path = out / f"{name}.json"
                        path.write_text(text + "\n")
                        written.append(path)
                        print(f"{path}: {len(history.events)} events")
            finally:
                store.close()
    finally:
        gmail.stop()
        mail.close()
        await env.shutdown()
    return written


if __name__ == "__main__":
    # python -m tests.replay.record_histories [OUT_DIR] [SCENARIO ...]
    asyncio.run(record(Path(sys.argv[1]) if len(sys.argv) > 1 else HISTORIES, sys.argv[2:] or None))
