"""Automated email step: one activity renders, sends through the sender's inbox and plans the
next step's due time, so an email step costs one activity and one timer in history."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from nurture.contracts.sequence import ActivityName, SendEmailInput, StepResult
    from nurture.definitions.sequence import EmailStep

from workflows.sequence_steps.base import StepRun


async def run_email_step(run: StepRun) -> StepResult:
    definition = run.enrollment.definition
    step = definition.steps[run.index]
    assert isinstance(step, EmailStep)
    subject = definition.subject_of(run.index)
    thread_with = definition.step_index(step.thread_with) if step.thread_with else None
    return await run.run_activity(
        ActivityName.SEND_EMAIL,
        SendEmailInput(**run.input_fields(), step=step, subject=subject, thread_with_index=thread_with),
        "send email" + (f" (thread of {step.thread_with})" if step.thread_with else ""),
    )
