"""Pause and resume: the remaining delay is kept (HubSpot: "on resume the remaining delay still
applies"), nothing is sent while paused, and the index follows."""

from __future__ import annotations

import datetime as dt

from nurture.store.models import EnrollmentStatus
from tests.sequences.conftest import close, sends

DAY = dt.timedelta(days=1)

TWO = """
kind: sequence
id: two
name: Two emails
settings: {eligible_days: every_day}
steps:
  - {type: email, subject: "One", body: "Hi"}
  - {type: email, delay: 3d, subject: "Two", body: "Hi again"}
"""


async def test_pause_mid_delay_keeps_the_remaining_delay(world):
    world.apply(TWO)
    ada = world.contacts[0]
    started = await world.enroll("two", ada)
    state = await world.wait_until_timer(started, step=2)
    due = state.waiting_until

    await world.skip(DAY)
    paused_at = await world.now()
    await world.sequences.pause(started.enrollment_id)
    state = await world.wait_state(started, lambda s: s.status == "paused")
    remaining = dt.timedelta(seconds=state.paused_remaining_seconds)
    assert abs((remaining - (due - paused_at)).total_seconds()) < 2, (remaining, due - paused_at)
    assert state.waiting_until is None and "after resume" in state.waiting_for
    await world.eventually(lambda: world.store.get_enrollment(started.enrollment_id).status is EnrollmentStatus.PAUSED)

    # Well past the original due time: nothing goes out while paused.
    await world.skip(5 * DAY)
    state = await world.state(started)
    assert state.status == "paused" and len(world.sent_to(ada)) == 1

    resumed_at = await world.now()
    await world.sequences.resume(started.enrollment_id)
    state = await world.wait_until_timer(started, step=2)
    assert close(state.waiting_until, resumed_at + remaining, 2), (state.waiting_until, resumed_at + remaining)
    assert state.paused_remaining_seconds is None
    await world.eventually(lambda: world.store.get_enrollment(started.enrollment_id).status is EnrollmentStatus.ACTIVE)
    assert world.store.get_enrollment(started.enrollment_id).exit_reason is None

    result = await world.result(started)
    assert result.exit_reason == "finished" and result.steps_completed == 2
    second = sends(await world.history(started))[1]
    assert close(second.at, resumed_at + remaining, 2)
    # The next send is resume time + remaining, i.e. original due + time spent paused.
    assert close(second.at, due + (resumed_at - paused_at), 3)
    assert [m.subject for m in world.sent_to(ada)] == ["One", "Two"]


async def test_pause_twice_and_resume_twice_are_harmless(world):
    world.apply(TWO)
    grace = world.contacts[1]
    started = await world.enroll("two", grace)
    state = await world.wait_until_timer(started, step=2)
    due = state.waiting_until
    await world.sequences.pause(started.enrollment_id)
    await world.sequences.pause(started.enrollment_id)
    await world.wait_state(started, lambda s: s.status == "paused")
    await world.sequences.resume(started.enrollment_id)
    await world.sequences.resume(started.enrollment_id)
    state = await world.wait_until_timer(started, step=2)
    assert close(state.waiting_until, due, 2)  # no time passed while paused
    result = await world.result(started)
    assert result.steps_completed == 2 and len(world.sent_to(grace)) == 2


async def test_unenroll_while_paused_ends_the_enrollment(world):
    world.apply(TWO)
    linus = world.contacts[2]
    started = await world.enroll("two", linus)
    await world.wait_until_timer(started, step=2)
    await world.sequences.pause(started.enrollment_id)
    await world.wait_state(started, lambda s: s.status == "paused")
    await world.sequences.unenroll(started.enrollment_id, reason="went quiet")
    result = await world.result(started)
    assert result.exit_reason == "manual" and result.status == "unenrolled"
    row = world.store.get_enrollment(started.enrollment_id)
    assert row.status is EnrollmentStatus.UNENROLLED and row.exit_reason == "manual: went quiet" and row.ended_at
    assert len(world.sent_to(linus)) == 1
