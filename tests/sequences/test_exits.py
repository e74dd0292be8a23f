"""Every way out of a sequence: replied, meeting booked, bounced, unsubscribed, unenrolled by
hand, finished. Each is recorded in the index with its reason and end time, open tasks are
canceled, and a signal meant for an older enrollment of the same contact is ignored."""

from __future__ import annotations

import pytest

from nurture.contracts.sequence import EnrollmentSignal, ExitReason, TaskCompleted, UnenrollRequest
from nurture.errors import Conflict, Refused
from nurture.store.models import BOUNCED_PROPERTY, OPT_OUT_PROPERTY, EnrollmentStatus, TaskStatus

FOUR = """
kind: sequence
id: four
name: Four steps
settings: {eligible_days: every_day}
steps:
  - {type: email, id: intro, subject: "Hi {{ contact.firstname }}", body: "Hello"}
  - {type: todo_task, title: "Look up {{ contact.firstname }}", wait_for_completion: false}
  - {type: email, delay: 2d, thread_with: intro, body: "Bump"}
  - {type: email, delay: 2d, thread_with: intro, body: "Last one"}
"""


async def _enrolled_and_waiting(world, contact):
    world.apply(FOUR)
    started = await world.enroll("four", contact)
    await world.wait_until_timer(started, step=3)
    [task] = world.store.list_tasks(enrollment_id=started.enrollment_id)
    assert task.status is TaskStatus.OPEN
    return started, task


def _assert_ended(world, started, task, reason: str, index_reason: str | None = None) -> None:
    row = world.store.get_enrollment(started.enrollment_id)
    assert row.status is EnrollmentStatus.UNENROLLED
    assert row.exit_reason == (index_reason or reason)
    assert row.ended_at is not None and row.ended_at >= row.enrolled_at.replace(microsecond=0)
    assert world.store.get_task(task.id).status is TaskStatus.CANCELED


@pytest.mark.parametrize("event", [ExitReason.REPLIED, ExitReason.MEETING_BOOKED])
async def test_reply_or_meeting_ends_the_enrollment(world, event):
    ada = world.contacts[0]
    started, task = await _enrolled_and_waiting(world, ada)
    await world.sequences.report(started.enrollment_id, event, detail="via test")
    result = await world.result(started)
    assert result.exit_reason == event.value and result.status == "unenrolled" and result.steps_completed == 2
    _assert_ended(world, started, task, event.value)
    assert len(world.sent_to(ada)) == 1
    state = await world.state(started)
    assert state.exit_reason == event.value and state.exit_detail == "via test"
    # A reply does not flag the contact: a later enrollment is allowed (same workflow ID).
    contact = world.contact(ada)
    assert not contact.properties.get(BOUNCED_PROPERTY) and not contact.properties.get(OPT_OUT_PROPERTY)
    again = await world.enroll("four", ada)
    assert again.enrollment_id != started.enrollment_id and again.workflow_id == started.workflow_id
    with pytest.raises(Conflict):  # the old enrollment is over
        await world.sequences.report(started.enrollment_id, ExitReason.REPLIED)


@pytest.mark.parametrize(("event", "prop", "refusal", "words"), [
    (ExitReason.BOUNCED, BOUNCED_PROPERTY, "bounced", "previously bounced"),
    (ExitReason.UNSUBSCRIBED, OPT_OUT_PROPERTY, "unsubscribed", "unsubscribed"),
])
async def test_bounce_or_unsubscribe_ends_it_and_flags_the_contact(world, event, prop, refusal, words):
    grace = world.contacts[1]
    started, task = await _enrolled_and_waiting(world, grace)
    assert not world.contact(grace).properties.get(prop)
    await world.sequences.report(started.enrollment_id, event)
    result = await world.result(started)
    assert result.exit_reason == event.value and result.status == "unenrolled"
    _assert_ended(world, started, task, event.value)
    assert world.contact(grace).properties.get(prop) is True
    assert len(world.sent_to(grace)) == 1
    with pytest.raises(Refused) as refused:
        await world.enroll("four", grace)
    assert refused.value.reason == refusal and words in refused.value.message


async def test_a_contact_flagged_meanwhile_is_not_emailed_again(world):
    """The flag may come from elsewhere (another tool, the unsubscribe page): the next email
    step sees it and ends the enrollment instead of sending."""
    linus = world.contacts[2]
    started, task = await _enrolled_and_waiting(world, linus)
    world.store.upsert_record("contact", {OPT_OUT_PROPERTY: True}, record_id=linus.id)
    result = await world.result(started)
    assert result.exit_reason == "unsubscribed" and result.steps_completed == 2
    _assert_ended(world, started, task, "unsubscribed")
    assert len(world.sent_to(linus)) == 1


async def test_unenroll_by_hand_keeps_the_reason(world):
    ada = world.contacts[0]
    started, task = await _enrolled_and_waiting(world, ada)
    await world.sequences.unenroll(started.enrollment_id, reason="talked on the phone, not interested")
    result = await world.result(started)
    assert result.exit_reason == "manual" and result.status == "unenrolled"
    _assert_ended(world, started, task, "manual", "manual: talked on the phone, not interested")
    assert (await world.state(started)).exit_detail == "talked on the phone, not interested"
    with pytest.raises(Conflict):
        await world.sequences.unenroll(started.enrollment_id)


async def test_finished(world):
    world.apply(FOUR)
    grace = world.contacts[1]
    started = await world.enroll("four", grace)
    result = await world.result(started)
    assert result.exit_reason == "finished" and result.status == "finished" and result.steps_completed == 4
    row = world.store.get_enrollment(started.enrollment_id)
    assert row.status is EnrollmentStatus.FINISHED and row.exit_reason == "finished" and row.ended_at is not None
    assert row.current_step == 4
    assert len(world.sent_to(grace)) == 3


WAITING_TASK = """
kind: sequence
id: call-first
name: Call first
settings: {eligible_days: every_day}
steps:
  - {type: call_task, title: "Call {{ contact.firstname }}"}
  - {type: email, delay: 1d, subject: "After our call", body: "Hi"}
"""


async def test_an_exit_while_waiting_for_a_task_cancels_the_task(world):
    world.apply(WAITING_TASK)
    linus = world.contacts[2]
    started = await world.enroll("call-first", linus)
    await world.wait_state(started, lambda s: s.waiting_for.startswith("Waiting for task"))
    [task] = world.store.list_tasks(enrollment_id=started.enrollment_id)
    await world.sequences.report(started.enrollment_id, ExitReason.MEETING_BOOKED)
    result = await world.result(started)
    assert result.exit_reason == "meeting_booked" and result.steps_completed == 0
    _assert_ended(world, started, task, "meeting_booked")
    assert world.sent_to(linus) == []
    with pytest.raises(Conflict):  # a canceled task cannot be completed
        await world.sequences.complete_task(task.id)


async def test_signals_for_an_older_enrollment_do_not_touch_the_newer_one(world):
    world.apply(FOUR)
    ada = world.contacts[0]
    old = await world.enroll("four", ada)
    await world.wait_until_timer(old, step=3)
    await world.sequences.unenroll(old.enrollment_id, reason="restart")
    await world.result(old)

    new = await world.enroll("four", ada)
    assert new.workflow_id == old.workflow_id and new.enrollment_id != old.enrollment_id
    await world.wait_until_timer(new, step=3)
    handle = world.handle(new)
    stale = EnrollmentSignal(enrollment_id=old.enrollment_id, detail="late news")
    for name in ("replied", "meeting_booked", "bounced", "unsubscribed", "pause"):
        await handle.signal(name, stale)
    await handle.signal("unenroll", UnenrollRequest(enrollment_id=old.enrollment_id, reason=ExitReason.MANUAL))
    old_task = f"task_{old.enrollment_id}_1"
    await handle.signal("task_completed", TaskCompleted(enrollment_id=old.enrollment_id, task_id=old_task,
                                                        completed_at=await world.now()))
    # Also through the API: the old enrollment is closed, so it is refused before any signal.
    with pytest.raises(Conflict):
        await world.sequences.report(old.enrollment_id, ExitReason.BOUNCED)

    state = await world.state(new)
    assert state.enrollment_id == new.enrollment_id
    assert state.status == "active" and state.exit_reason is None and state.waiting_until is not None
    assert world.store.get_enrollment(new.enrollment_id).status is EnrollmentStatus.ACTIVE
    assert not world.contact(ada).properties.get(BOUNCED_PROPERTY)
    result = await world.result(new)
    assert result.enrollment_id == new.enrollment_id and result.exit_reason == "finished"
    assert world.store.get_enrollment(old.enrollment_id).exit_reason == "manual: restart"


async def test_a_signal_sent_before_the_workflow_first_ran_is_not_lost(bare_world):
    """The reply arrives before any worker picked up the new enrollment: the signal is
    delivered in the workflow's very first task, before ``run`` starts."""
    world = bare_world
    world.apply(FOUR)
    grace = world.contacts[1]
    started = await world.enroll("four", grace)  # no worker yet
    await world.sequences.report(started.enrollment_id, ExitReason.REPLIED, detail="replied at once")
    async with world.worker():
        result = await world.result(started)
    assert result.exit_reason == "replied" and result.steps_completed == 0
    assert world.sent_to(grace) == []
    assert world.store.get_enrollment(started.enrollment_id).exit_reason == "replied"


async def test_a_pause_sent_before_the_workflow_first_ran_is_not_lost(bare_world):
    world = bare_world
    world.apply(FOUR)
    linus = world.contacts[2]
    started = await world.enroll("four", linus)
    await world.sequences.pause(started.enrollment_id)
    async with world.worker():
        state = await world.wait_state(started, lambda s: s.status == "paused")
        assert state.current_step is None and world.sent_to(linus) == []
        await world.sequences.resume(started.enrollment_id)
        result = await world.result(started)
    assert result.exit_reason == "finished" and len(world.sent_to(linus)) == 3
