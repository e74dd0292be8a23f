"""What a step unit sees of its enrollment: IDs, settings, timing, and a way to wait."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from nurture.contracts.sequence import NON_RETRYABLE_ERRORS, SequenceEnrollmentInput, StepResult
    from nurture.definitions.common import Delay

# Sends and task writes are idempotent, so retrying is always safe. Transient provider outages
# are retried with backoff for up to three days (as HubSpot retries webhooks); after that the
# enrollment waits in "needs review" rather than silently dropping the step.
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=NON_RETRYABLE_ERRORS,
)
STEP_START_TO_CLOSE = timedelta(minutes=2)
STEP_SCHEDULE_TO_CLOSE = timedelta(days=3)


@dataclass
class StepRun:
    """One execution of one step."""

    enrollment: SequenceEnrollmentInput
    index: int
    scheduled_for: dt.datetime
    enforce_rules: bool
    should_stop: Callable[[], bool]
    """True once the enrollment must stop (an exit signal arrived); waits end early on it."""

    @property
    def next_delay(self) -> Delay | None:
        steps = self.enrollment.definition.steps
        return steps[self.index + 1].delay if self.index + 1 < len(steps) else None

    def input_fields(self) -> dict[str, Any]:
        """The fields every step activity's input shares (``StepInput``)."""
        definition = self.enrollment.definition
        return {
            "enrollment_id": self.enrollment.enrollment_id,
            "definition_id": definition.id,
            "contact_id": self.enrollment.contact_id,
            "sender_id": self.enrollment.sender_id,
            "step_index": self.index,
            "settings": definition.settings,
            "scheduled_for": self.scheduled_for,
            "started_at": workflow.now(),
            "enforce_rules": self.enforce_rules,
            "next_delay": self.next_delay,
        }

    async def run_activity(self, name: str, arg: Any, summary: str) -> StepResult:
        """Run the step's activity with the step retry policy and timeouts."""
        return await workflow.execute_activity(
            name, arg, result_type=StepResult,
            start_to_close_timeout=STEP_START_TO_CLOSE, schedule_to_close_timeout=STEP_SCHEDULE_TO_CLOSE,
            retry_policy=STEP_RETRY, summary=f"{self.label}: {summary}",
        )

    @property
    def label(self) -> str:
        return f"step {self.index + 1} ({self.enrollment.definition.steps[self.index].type})"
