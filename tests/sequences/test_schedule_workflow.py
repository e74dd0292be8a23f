"""Schedule rules seen through the running workflow: the server clock is moved to a known time of
day (and weekday) first, so each enrollment's timing is set by its definition and settings."""

from __future__ import annotations

import datetime as dt

from nurture.contracts.sequence import ActivityName, StepOutcome
from tests.sequences.conftest import activity_runs, close, late_send_email, sends

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)

WINDOWED = """
kind: sequence
id: windowed
name: Windowed
settings:
  eligible_days: every_day
  send_window: {start: "09:00", end: "17:00"}
steps:
  - {type: email, subject: "First", body: "Hi {{ contact.firstname }}"}
  - {type: email, delay: 1d, subject: "Second", body: "Hi again"}
"""


async def test_a_late_timer_outside_the_window_waits_for_the_next_window_and_sends_nothing_before(bare_world):
    world = bare_world
    world.apply(WINDOWED)
    ada = world.contacts[0]
    t0 = await world.align(hour=10)
    # Step 2 falls due tomorrow 10:00, but its send runs at 18:00, after the window closed.
    async with world.worker(**{ActivityName.SEND_EMAIL: late_send_email(world, 1, 8 * HOUR)}):
        started = await world.enroll("windowed", ada)
        state = await world.wait_until_timer(started, step=2)
        assert close(state.waiting_until, t0 + DAY)
        assert len(world.sent_to(ada)) == 1

        await world.skip_to(state.waiting_until)
        state = await world.wait_state(started, lambda s: s.waiting_until is not None and s.waiting_until > t0 + DAY + HOUR)
        assert state.waiting_for.startswith("Waiting to run step 2") and state.current_step == 2
        assert state.waiting_until == (t0 + 2 * DAY).replace(hour=9)  # the next window start
        assert len(world.sent_to(ada)) == 1  # nothing went out at 18:00

        deferred = [r for r in activity_runs(await world.history(started), ActivityName.SEND_EMAIL)
                    if r.result and r.result.outcome is StepOutcome.DEFERRED]
        assert len(deferred) == 1 and deferred[0].result.deferred_until == state.waiting_until

        result = await world.result(started)
    assert result.exit_reason == "finished" and result.steps_completed == 2
    sent = sends(await world.history(started))
    assert [r.input["step_index"] for r in sent] == [0, 1]
    assert close(sent[1].at, (t0 + 2 * DAY).replace(hour=9))
    assert all(9 <= r.at.hour < 17 for r in sent)
    assert [m.subject for m in world.sent_to(ada)] == ["First", "Second"]


DELAYED_FIRST = """
kind: sequence
id: delayed-first
name: Delayed first step
settings:
  eligible_days: every_day
  send_window: {start: "09:00", end: "17:00"}
steps:
  - {type: email, delay: 1d, subject: "Tomorrow", body: "Hi"}
"""


async def test_a_delayed_first_step_is_held_to_the_window_too(bare_world):
    """Only an *immediate* first step goes at once regardless of the rules (HubSpot); a first
    step with a delay was scheduled under the rules and a late timer must not break them."""
    world = bare_world
    world.apply(DELAYED_FIRST)
    grace = world.contacts[1]
    t0 = await world.align(hour=10)
    async with world.worker(**{ActivityName.SEND_EMAIL: late_send_email(world, 0, 9 * HOUR)}):
        started = await world.enroll("delayed-first", grace)
        state = await world.wait_until_timer(started, step=1)
        assert close(state.waiting_until, t0 + DAY)
        result = await world.result(started)
    assert result.steps_completed == 1
    [sent] = sends(await world.history(started))
    assert close(sent.at, (t0 + 2 * DAY).replace(hour=9)), sent.at


WEEKDAYS = """
kind: sequence
id: weekdays
name: Weekdays
steps:
  - {type: email, subject: "Friday", body: "Hi"}
  - {type: email, delay: 1d, subject: "Monday", body: "Hi"}
  - {type: todo_task, delay: 1d, title: "Follow up", wait_for_completion: false}
  - {type: email, delay: 2d, subject: "Thursday", body: "Hi"}
"""


async def test_steps_skip_the_weekend_and_keep_the_enrollment_time_of_day(world):
    world.apply(WEEKDAYS)
    linus = world.contacts[2]
    friday = await world.align(hour=14, minute=25, weekday=4)
    started = await world.enroll("weekdays", linus)
    result = await world.result(started)
    assert result.steps_completed == 4
    sent = sends(await world.history(started))
    monday, tuesday, thursday = friday + 3 * DAY, friday + 4 * DAY, friday + 6 * DAY
    assert [r.input["step_index"] for r in sent] == [0, 1, 3]
    assert close(sent[0].at, friday) and close(sent[1].at, monday) and close(sent[2].at, thursday)
    [task] = world.store.list_tasks(enrollment_id=started.enrollment_id)
    assert close(task.due_at, tuesday)
    assert [m.subject for m in world.sent_to(linus)] == ["Friday", "Monday", "Thursday"]
