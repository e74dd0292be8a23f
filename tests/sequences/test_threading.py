"""Threaded follow-ups: a step with ``thread_with`` goes out as a reply in the earlier email's
thread: same subject, Gmail threadId, In-Reply-To and References headers (checked on what the
local Gmail endpoint captured)."""

from __future__ import annotations

import pytest

from nurture.contracts.sequence import ActivityName
from nurture.local.mailstore import Fault
from tests.sequences.conftest import activity_runs, sends

SEQ = """
kind: sequence
id: threads
name: Threads
settings: {eligible_days: every_day}
steps:
  - {type: email, id: intro, subject: "Quick question, {{ contact.firstname }}", body: "Hi {{ contact.firstname }}"}
  - {type: email, id: bump, delay: 1d, thread_with: intro, body: "Bumping this up"}
  - {type: email, id: fresh, delay: 1d, subject: "Something else", body: "New topic"}
  - {type: email, delay: 1d, thread_with: intro, body: "Last try"}
"""


async def test_follow_ups_thread_onto_the_first_email(world):
    world.apply(SEQ)
    ada = world.contacts[0]
    started = await world.enroll("threads", ada)
    result = await world.result(started)
    assert result.steps_completed == 4

    intro, bump, fresh, last = world.sent_to(ada)
    eid = started.enrollment_id
    assert [m.message_id for m in (intro, bump, fresh, last)] == [f"<nurture.{eid}.{i}@acme.test>" for i in range(4)]
    assert intro.subject == bump.subject == last.subject == "Quick question, Ada"
    assert fresh.subject == "Something else"
    assert intro.thread_id and bump.thread_id == intro.thread_id == last.thread_id
    assert fresh.thread_id != intro.thread_id

    assert "In-Reply-To" not in intro.headers and "References" not in intro.headers
    assert "In-Reply-To" not in fresh.headers
    assert bump.headers["In-Reply-To"] == intro.message_id
    assert bump.headers["References"] == intro.message_id
    # The last one answers the latest message of the thread and references the whole chain.
    assert last.headers["In-Reply-To"] == bump.message_id
    assert last.headers["References"].split() == [intro.message_id, bump.message_id]
    assert "Last try" in (last.text or "")

    # The store's message log agrees.
    stored = {m.step_index: m for m in world.store.list_messages(enrollment_id=eid)}
    assert stored[1].thread_id == stored[0].thread_id == stored[3].thread_id != stored[2].thread_id
    assert all(m.status == "sent" for m in stored.values())


@pytest.mark.parametrize("fault", ["500", "accept_then_500"])
async def test_a_retried_follow_up_is_sent_once_with_the_same_thread_headers(world, fault):
    """The follow-up's first attempt fails: Gmail answers 500, having rejected the message or
    (accept_then_500) having sent it and lost the answer. The retry sends it once, in the thread,
    and never lists the follow-up's own Message-ID in its References."""
    world.settings.gmail_search_grace_seconds = 0  # no need to wait for Gmail search to catch up
    world.apply(SEQ)
    grace = world.contacts[1]
    started = await world.enroll("threads", grace)
    await world.wait_until_timer(started, step=2)
    world.mail.add_fault(Fault(service="gmail", operation="send", kind=fault, count=1))
    await world.drive(started, until=lambda h: len(sends(h)) == 2)  # skips the retry back-off too
    history = await world.history(started)
    bump_send = activity_runs(history, ActivityName.SEND_EMAIL)[1]
    [attempts] = [e.activity_task_started_event_attributes.attempt for e in history.events
                  if e.HasField("activity_task_started_event_attributes")
                  and e.activity_task_started_event_attributes.scheduled_event_id == bump_send.scheduled.event_id]
    assert attempts >= 2  # it did fail once and was retried
    assert world.mail.pending_faults() == []  # the fault did fire
    intro, bump = world.sent_to(grace)
    assert bump.message_id == f"<nurture.{started.enrollment_id}.1@acme.test>"
    assert bump.thread_id == intro.thread_id
    assert bump.headers["In-Reply-To"] == intro.message_id
    assert bump.headers["References"].split() == [intro.message_id]
    stored = world.store.get_message(f"msg_{started.enrollment_id}_1")
    assert stored is not None and stored.status == "sent" and stored.thread_id == intro.thread_id
