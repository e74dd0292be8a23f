"""What an enrollment costs in Temporal history, and what history may hold: an email step with a
delay is at most 12 events, and no step result (nor anything else in history) carries the
contact's email address — Temporal payloads are not a place for personal data."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType

from nurture.contracts.sequence import ActivityName
from tests.sequences.conftest import activity_runs, readable_history, sends

SEQ = """
kind: sequence
id: budget
name: Budget
settings: {eligible_days: every_day}
steps:
  - {type: email, id: a, subject: "Hi {{ contact.firstname }}", body: "Hello {{ contact.firstname }} at {{ contact.email }}"}
  - {type: email, delay: 1d, thread_with: a, body: "Two"}
  - {type: email, delay: 2d, subject: "Three", body: "Three"}
  - {type: email, delay: 1d 4h, thread_with: a, body: "Four"}
"""

BUDGET = 12


async def test_an_email_step_with_a_delay_costs_at_most_12_events(world):
    world.apply(SEQ)
    ada = world.contacts[0]
    started = await world.enroll("budget", ada)
    result = await world.result(started)
    assert result.steps_completed == 4
    history = await world.history(started)

    sent = sends(history)
    assert len(sent) == 4
    ids = [r.scheduled.event_id for r in sent]
    costs = [b - a for a, b in zip(ids, ids[1:])]
    assert all(cost <= BUDGET for cost in costs), (costs, await world.describe_history(started))
    # Each of them: workflow task, timer, workflow task, step-number search attribute, activity.
    between = [e for e in history.events if ids[0] < e.event_id <= ids[1]]
    kinds = [EventType.Name(e.event_type) for e in between]
    assert kinds.count("EVENT_TYPE_TIMER_STARTED") == 1 and kinds.count("EVENT_TYPE_ACTIVITY_TASK_SCHEDULED") == 1


async def test_history_holds_no_email_address(world):
    world.apply(SEQ)
    grace = world.contacts[1]
    started = await world.enroll("budget", grace)
    await world.result(started)
    history = await world.history(started)

    for run in activity_runs(history):
        assert run.closed is not None
        if run.closed.HasField("activity_task_completed_event_attributes"):
            payloads = run.closed.activity_task_completed_event_attributes.result.payloads
            for p in payloads:
                assert b"@" not in p.data, (run.name, p.data)
    assert len(activity_runs(history, ActivityName.SEND_EMAIL)) == 4
    text = readable_history(history.to_json())
    assert grace.id in text and "Hello {{ contact.firstname }}" in text  # payloads are decoded
    assert "@globex.test" not in text and "grace@" not in text
    # Also not rendered content: the rendered body would hold the address ({{ contact.email }}).
    assert "Hello Grace" not in text
    desc = await world.handle(started).describe()
    assert "@" not in (await desc.static_summary() or "") and "@" not in (await desc.static_details() or "")
