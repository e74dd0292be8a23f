"""Every step type: automated emails, and the five task types (tasks go to the sender with a due
time; a waiting task blocks the sequence until it is completed and the next delay counts from
the completion; a non-waiting task lets the sequence go on by itself)."""

from __future__ import annotations

import datetime as dt

from nurture.contracts.sequence import ActivityName, TaskCompleted
from nurture.store.models import TaskStatus
from tests.sequences.conftest import activity_runs, close, sends

DAY = dt.timedelta(days=1)

WAITING = """
kind: sequence
id: calls
name: Calls
settings: {eligible_days: every_day}
steps:
  - type: call_task
    title: "Call {{ contact.firstname }}"
    notes: "Ask about {{ company.name }}"
    priority: high
  - type: manual_email_task
    delay: 1d
    title: "Write to {{ contact.firstname }} by hand"
  - type: email
    delay: 2d
    subject: "Following up, {{ contact.firstname }}"
    body: "Hi {{ contact.firstname }}"
"""


async def test_waiting_tasks_block_until_completed_and_the_next_delay_counts_from_completion(world):
    world.apply(WAITING)
    ada = world.contacts[0]
    t0 = await world.now()
    started = await world.enroll("calls", ada)

    state = await world.wait_state(started, lambda s: s.waiting_for.startswith("Waiting for task"))
    assert state.current_step == 1 and state.status == "active" and state.waiting_until is None
    [call] = world.store.list_tasks(enrollment_id=started.enrollment_id)
    assert call.type == "call" and call.title == "Call Ada" and call.notes == "Ask about Globex"
    assert call.priority == "high" and call.status is TaskStatus.OPEN
    assert call.assignee_id == world.sender.id and call.record_id == ada.id and call.step_index == 0
    assert call.due_at is not None and close(call.due_at, t0, 10)
    assert call.id in state.waiting_for

    # Three days go by: the sequence waits for the rep, whatever the delays say.
    await world.skip(3 * DAY)
    state = await world.state(started)
    assert state.waiting_for.startswith("Waiting for task") and state.current_step == 1
    assert len(world.store.list_tasks(enrollment_id=started.enrollment_id)) == 1
    assert world.sent_to(ada) == []

    completed_at = await world.now()
    await world.sequences.complete_task(call.id)
    state = await world.wait_until_timer(started, step=2)
    # The 1-day delay of step 2 counts from the completion, not from the task's creation.
    assert close(state.waiting_until, completed_at + DAY), (state.waiting_until, completed_at)

    await world.skip_to(state.waiting_until)
    state = await world.wait_state(started, lambda s: s.waiting_for.startswith("Waiting for task") and s.current_step == 2)
    manual = world.store.get_task(f"task_{started.enrollment_id}_1")
    assert manual.type == "manual_email" and manual.title == "Write to Ada by hand" and manual.priority == "none"
    assert manual.assignee_id == world.sender.id and close(manual.due_at, completed_at + DAY)
    assert world.store.get_task(call.id).status is TaskStatus.COMPLETED

    await world.skip(5 * dt.timedelta(hours=1))
    completed_again = await world.now()
    await world.sequences.complete_task(manual.id)
    state = await world.wait_until_timer(started, step=3)
    assert close(state.waiting_until, completed_again + 2 * DAY)
    assert world.sent_to(ada) == []

    result = await world.result(started)
    assert result.exit_reason == "finished" and result.steps_completed == 3
    [mail] = world.sent_to(ada)
    assert mail.subject == "Following up, Ada"
    [send] = sends(await world.history(started))
    assert close(send.at, completed_again + 2 * DAY)
    # Completed tasks stay completed; the finished enrollment has no open task left.
    assert {t.status for t in world.store.list_tasks(enrollment_id=started.enrollment_id)} == {TaskStatus.COMPLETED}
    row = world.store.get_enrollment(started.enrollment_id)
    assert row.status.value == "finished" and row.current_step == 3


NON_WAITING = """
kind: sequence
id: social
name: Social
settings: {eligible_days: every_day, wait_for_task_completion: false}
steps:
  - type: todo_task
    title: "Research {{ company.name }}"
    priority: low
  - type: linkedin_connect_task
    delay: 1d
    title: "Connect with {{ contact.firstname }}"
    priority: medium
  - type: linkedin_message_task
    delay: 1d
    title: "Message {{ contact.firstname }} on LinkedIn"
  - type: email
    delay: 1d
    subject: "Hello {{ contact.firstname }}"
    body: "Hi"
"""


async def test_non_waiting_tasks_are_created_on_schedule_and_the_sequence_goes_on(world):
    world.apply(NON_WAITING)
    grace = world.contacts[1]
    started = await world.enroll("social", grace)
    result = await world.result(started)
    assert result.exit_reason == "finished" and result.steps_completed == 4

    history = await world.history(started)
    t0 = activity_runs(history, ActivityName.BEGIN_ENROLLMENT)[0].input["enrolled_at"]
    t0 = dt.datetime.fromisoformat(t0)
    tasks = world.store.list_tasks(enrollment_id=started.enrollment_id)
    assert [(t.type, t.title, t.priority) for t in tasks] == [
        ("todo", "Research Globex", "low"),
        ("linkedin_connect", "Connect with Grace", "medium"),
        ("linkedin_message", "Message Grace on LinkedIn", "none"),
    ]
    for i, task in enumerate(tasks):
        assert task.assignee_id == world.sender.id and task.record_id == grace.id
        assert close(task.due_at, t0 + i * DAY), (i, task.due_at, t0)
        # Nobody completed them: a task the sequence does not wait for stays the rep's to do,
        # even after the sequence finished.
        assert task.status is TaskStatus.OPEN
    [send] = sends(history)
    assert close(send.at, t0 + 3 * DAY)
    assert [m.subject for m in world.sent_to(grace)] == ["Hello Grace"]


PER_STEP = """
kind: sequence
id: mixed
name: Mixed
settings: {eligible_days: every_day, wait_for_task_completion: false}
steps:
  - type: todo_task
    title: "Prepare"
  - type: call_task
    delay: 1d
    title: "Call"
    wait_for_completion: true
  - type: email
    delay: 1d
    subject: "After the call"
    body: "Hi"
"""


async def test_a_step_can_override_the_wait_setting(world):
    world.apply(PER_STEP)
    linus = world.contacts[2]
    started = await world.enroll("mixed", linus)
    state = await world.wait_until_timer(started, step=2)  # the to-do did not block
    await world.skip_to(state.waiting_until)
    await world.wait_state(started, lambda s: s.waiting_for.startswith("Waiting for task") and s.current_step == 2)
    await world.skip(10 * DAY)
    assert (await world.state(started)).waiting_for.startswith("Waiting for task")
    assert world.sent_to(linus) == []
    await world.sequences.complete_task(f"task_{started.enrollment_id}_1")
    result = await world.result(started)
    assert result.steps_completed == 3 and len(world.sent_to(linus)) == 1


async def test_every_step_type_in_one_sequence(world):
    """All six step types run in one enrollment; each task type maps to its store type."""
    text = """
kind: sequence
id: everything
name: Everything
settings: {eligible_days: every_day, wait_for_task_completion: false}
steps:
  - {type: email, id: first, subject: "Hi {{ contact.firstname }}", body: "Hello"}
  - {type: call_task, delay: 1d, title: "Call"}
  - {type: manual_email_task, delay: 1d, title: "Manual email"}
  - {type: todo_task, delay: 1d, title: "To-do"}
  - {type: linkedin_connect_task, delay: 1d, title: "Connect"}
  - {type: linkedin_message_task, delay: 1d, title: "Message"}
  - {type: email, delay: 1d, thread_with: first, body: "Bump"}
"""
    world.apply(text)
    ada = world.contacts[0]
    started = await world.enroll("everything", ada)
    result = await world.result(started)
    assert result.exit_reason == "finished" and result.steps_completed == 7
    tasks = world.store.list_tasks(enrollment_id=started.enrollment_id)
    assert [t.type for t in tasks] == ["call", "manual_email", "todo", "linkedin_connect", "linkedin_message"]
    assert [t.step_index for t in tasks] == [1, 2, 3, 4, 5]
    assert [m.subject for m in world.sent_to(ada)] == ["Hi Ada", "Hi Ada"]


async def test_a_completion_signal_with_a_naive_time_counts_as_utc(world):
    """Any client may signal a completion; a time without a zone must not break the workflow."""
    world.apply(WAITING)
    grace = world.contacts[1]
    started = await world.enroll("calls", grace)
    await world.wait_state(started, lambda s: s.waiting_for.startswith("Waiting for task"))
    completed_at = await world.now()
    await world.handle(started).signal("task_completed", TaskCompleted(
        enrollment_id=started.enrollment_id, task_id=f"task_{started.enrollment_id}_0",
        completed_at=completed_at.replace(tzinfo=None),
    ))
    state = await world.wait_until_timer(started, step=2)
    assert close(state.waiting_until, completed_at + DAY)
