"""Automated email step: one activity renders, sends through the sender's inbox and plans the
next step's due time, so an email step costs one activity and one timer in history."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from nurture.contracts.sequence import ActivityName, SendEmailInput, StepResult
    from nurture.definitions.sequence import EmailStep

from workflows.sequence_steps.base import STEP_RETRY, STEP_SCHEDULE_TO_CLOSE, STEP_START_TO_CLOSE, StepRun


async def run_email_step(run: StepRun) -> StepResult:
    definition = run.enrollment.definition
    step = definition.steps[run.index]
    assert isinstance(step, EmailStep)
    subject = definition.subject_of(run.index)
    thread_with = definition.step_index(step.thread_with) if step.thread_with else None
    return await workflow.execute_activity(
        ActivityName.SEND_EMAIL,
        SendEmailInput(
            enrollment_id=run.enrollment.enrollment_id,
            definition_id=definition.id,
            contact_id=run.enrollment.contact_id,
            sender_id=run.enrollment.sender_id,
            step_index=run.index,
            settings=definition.settings,
            scheduled_for=run.scheduled_for,
            started_at=workflow.now(),
            enforce_rules=run.enforce_rules,
            next_delay=run.next_delay,
            step=step,
            subject=subject,
            thread_with_index=thread_with,
        ),
        result_type=StepResult,
        start_to_close_timeout=STEP_START_TO_CLOSE,
        schedule_to_close_timeout=STEP_SCHEDULE_TO_CLOSE,
        retry_policy=STEP_RETRY,
        summary=f"{run.label}: send email" + (f" (thread of {step.thread_with})" if step.thread_with else ""),
    )
