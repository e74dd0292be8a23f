"""Create a sequence task for the sender. Idempotent: the task ID is derived from the enrollment
and the step, so a retried activity finds the task it already created."""

from __future__ import annotations

import datetime as dt

from temporalio import activity

from activities.clock import activity_now
from activities.deps import ActivityDeps
from activities.schedule_rules import due_after, resolve_rules
from activities.sequence_email import token_context
from nurture.contracts.sequence import ActivityName, CreateTaskInput, StepOutcome, StepResult
from nurture.scheduling import is_allowed, next_allowed
from nurture.store.models import Task, TaskStatus
from nurture.templating import render


def task_id_for(enrollment_id: str, step_index: int) -> str:
    return f"task_{enrollment_id}_{step_index}"


class SequenceTaskActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name=ActivityName.CREATE_TASK)
    def create_task(self, inp: CreateTaskInput) -> StepResult:
        store = self.deps.store
        contact = store.get_record(inp.contact_id)
        sender = store.get_user(inp.sender_id)
        rules = resolve_rules(inp.settings, sender, contact, self.deps.settings)
        now = activity_now(inp.started_at)
        tid = task_id_for(inp.enrollment_id, inp.step_index)
        if not store.task_exists(tid):
            if inp.enforce_rules and not is_allowed(now, rules):
                return StepResult(outcome=StepOutcome.DEFERRED, deferred_until=next_allowed(now, rules),
                                  detail="outside the allowed days or send window")
            context = token_context(contact, store.primary_company(contact.id), sender, None)
            # Tasks are for the rep: a missing value shows as HubSpot's [[MISSING TOKEN]] marker
            # for the rep to fix, rather than blocking the sequence.
            title = render(inp.step.title, context).text
            notes = render(inp.step.notes, context).text
            store.create_task(Task(
                id=tid, type=inp.step.type.removesuffix("_task"), title=title, notes=notes,
                priority=inp.step.priority.value, record_id=contact.id, assignee_id=sender.id,
                enrollment_id=inp.enrollment_id, step_index=inp.step_index, status=TaskStatus.OPEN,
                due_at=max(inp.scheduled_for, now), created_at=now,
            ))
        store.update_enrollment(inp.enrollment_id, current_step=inp.step_index + 1)
        next_due = None
        if not inp.waits_for_completion and inp.next_delay is not None:
            next_due = due_after(inp.scheduled_for, inp.next_delay, rules)
        return StepResult(outcome=StepOutcome.DONE, task_id=tid, next_due=next_due, detail="task created")
