"""A step that cannot succeed by retrying (a token without a value and without a fallback) stops
the enrollment in "needs review" instead of sending a broken email; ``resume`` after the fix
runs the step again."""

from __future__ import annotations

import asyncio
import time

from temporalio import activity

from activities.deps import ActivityDeps
from activities.sequence_enrollment import SequenceEnrollmentActivities
from nurture.contracts.sequence import ActivityName, RecordStatusInput
from nurture.store.models import EnrollmentStatus
from tests.sequences.conftest import activity_runs

SEQ = """
kind: sequence
id: tokens
name: Tokens
settings: {eligible_days: every_day}
steps:
  - {type: email, subject: "Hi {{ contact.firstname }}", body: "Dear {{ contact.lastname }}, about {{ company.name }}"}
  - {type: email, delay: 1d, subject: "Again", body: "Hi {{ contact.nickname | default('there') }}"}
"""


async def test_a_missing_token_waits_for_review_and_resume_retries_after_the_fix(world):
    world.apply(SEQ)
    ada = world.contacts[0]
    started = await world.enroll("tokens", ada)

    state = await world.wait_state(started, lambda s: s.status == "needs_review")
    assert "contact.lastname" in (state.failure or "") and state.failure.startswith("step 1:")
    assert state.current_step == 1 and state.exit_reason is None
    await world.eventually(lambda: world.store.get_enrollment(started.enrollment_id).status is EnrollmentStatus.NEEDS_REVIEW)
    row = world.store.get_enrollment(started.enrollment_id)
    assert "contact.lastname" in (row.status_detail or "") and row.exit_reason is None
    assert row.ended_at is None
    assert world.sent_to(ada) == []

    # Resume without fixing anything: the step runs again and stops again.
    await world.sequences.resume(started.enrollment_id)
    for _ in range(500):
        failed = [r for r in activity_runs(await world.history(started), ActivityName.SEND_EMAIL) if r.result is None and r.closed]
        if len(failed) == 2:
            break
        await asyncio.sleep(0.02)
    assert len(failed) == 2
    state = await world.wait_state(started, lambda s: s.status == "needs_review")
    assert world.sent_to(ada) == []

    world.store.upsert_record("contact", {"lastname": "Lovelace"}, record_id=ada.id)
    await world.sequences.resume(started.enrollment_id)
    state = await world.wait_until_timer(started, step=2)
    assert state.failure is None and state.status == "active"
    row = world.store.get_enrollment(started.enrollment_id)
    assert row.status is EnrollmentStatus.ACTIVE and row.status_detail is None  # no stale failure text
    [first] = world.sent_to(ada)
    assert "Dear Lovelace, about Globex" in (first.text or "")

    result = await world.result(started)
    assert result.exit_reason == "finished" and result.steps_completed == 2
    second = world.sent_to(ada)[1]
    assert "Hi there" in (second.text or "")  # a token with a fallback never stops anything


async def test_unenroll_from_needs_review(world):
    world.apply(SEQ)
    grace = world.contacts[1]
    started = await world.enroll("tokens", grace)
    await world.wait_state(started, lambda s: s.status == "needs_review")
    status = await world.sequences.status(started.enrollment_id)
    assert status.live is not None and status.live.status == "needs_review"
    await world.sequences.unenroll(started.enrollment_id, reason="bad data")
    result = await world.result(started)
    assert result.exit_reason == "manual" and result.steps_completed == 0
    row = world.store.get_enrollment(started.enrollment_id)
    assert row.status is EnrollmentStatus.UNENROLLED and row.exit_reason == "manual: bad data" and row.ended_at
    assert world.sent_to(grace) == []


async def test_a_resume_sent_the_moment_review_shows_is_not_lost(bare_world):
    """The status query shows "needs review" before the index is written; a person (or a script)
    resuming right then must not be ignored. The index write is slowed down here to hold that
    moment open."""
    world = bare_world
    world.apply(SEQ)
    linus = world.contacts[2]
    real = SequenceEnrollmentActivities(ActivityDeps(store=world.store, settings=world.settings))

    @activity.defn(name=ActivityName.RECORD_STATUS)
    def slow_record_status(inp: RecordStatusInput) -> None:
        if inp.status == "needs_review":
            time.sleep(0.5)
        real.record_status(inp)

    async with world.worker(**{ActivityName.RECORD_STATUS: slow_record_status}):
        started = await world.enroll("tokens", linus)
        await world.wait_state(started, lambda s: s.status == "needs_review")
        world.store.upsert_record("contact", {"lastname": "Torvalds"}, record_id=linus.id)
        await world.sequences.resume(started.enrollment_id)
        state = await world.wait_until_timer(started, step=2)
        assert state.status == "active" and state.failure is None
    assert len(world.sent_to(linus)) == 1
