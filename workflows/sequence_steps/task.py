"""Task steps (call, manual email, to-do, LinkedIn): create the task for the sender, then —
if the step waits for completion, HubSpot's default — wait for the ``task_completed`` signal and
plan the next step from the completion time."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from nurture.contracts.sequence import ActivityName, CreateTaskInput, PlanNextInput, StepOutcome, StepResult
    from nurture.definitions.sequence import TaskStep

from workflows.sequence_steps.base import STEP_RETRY, StepRun


async def run_task_step(run: StepRun, completions: dict[str, object], describe_wait: object) -> StepResult:
    """``completions`` maps task IDs to completion times, filled by the workflow's signal handler
    (a completion can arrive before this code looks for it). ``describe_wait(text)`` updates the
    workflow's current details."""
    definition = run.enrollment.definition
    step = definition.steps[run.index]
    assert isinstance(step, TaskStep)
    waits = step.wait_for_completion if step.wait_for_completion is not None else definition.settings.wait_for_task_completion
    created = await run.run_activity(
        ActivityName.CREATE_TASK,
        CreateTaskInput(**run.input_fields(), step=step, waits_for_completion=waits),
        "create task",
    )
    if created.outcome is not StepOutcome.DONE or not waits:
        return created

    task_id = created.task_id
    assert task_id is not None
    describe_wait(f"Waiting for task {task_id} ({step.type.replace('_', ' ')}: {step.title[:60]}) to be completed")
    await workflow.wait_condition(lambda: task_id in completions or run.should_stop())
    if task_id not in completions:
        return created  # stopping; the caller sees should_stop()
    completed_at = completions[task_id]
    if run.next_delay is None:
        return StepResult(outcome=StepOutcome.DONE, task_id=task_id, detail="task completed")
    next_due = await workflow.execute_activity(
        ActivityName.PLAN_NEXT,
        PlanNextInput(
            contact_id=run.enrollment.contact_id,
            sender_id=run.enrollment.sender_id,
            settings=definition.settings,
            anchor=completed_at,  # the next delay starts from completion (HubSpot)
            delay=run.next_delay,
        ),
        result_type=StepResult,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=STEP_RETRY,
        summary=f"{run.label}: plan next step from task completion",
    )
    return StepResult(outcome=StepOutcome.DONE, task_id=task_id, next_due=next_due.next_due, detail="task completed")
