"""Messages of the sequence enrollment workflow: its input, signals, query and activities."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, Field

from nurture.definitions.common import Delay
from nurture.definitions.sequence import EmailStep, SequenceDefinition, SequenceSettings, TaskStep

WORKFLOW_NAME = "SequenceEnrollment"


class ExitReason(StrEnum):
    FINISHED = "finished"  # every step ran
    REPLIED = "replied"
    MEETING_BOOKED = "meeting_booked"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"
    MANUAL = "manual"  # unenrolled by hand (the reason text is kept beside it)
    COMPANY_REPLIED = "company_replied"  # another contact of the company replied or booked


# ------------------------------------------------------------------ workflow input / output
class SequenceEnrollmentInput(BaseModel):
    """Everything an enrollment needs, fixed at start: the definition version is copied in, so
    later edits never reach running enrollments."""

    enrollment_id: str
    definition: SequenceDefinition
    definition_version: int
    contact_id: str
    company_id: str | None = None
    sender_id: str
    start_step: int = 0


class SequenceEnrollmentResult(BaseModel):
    enrollment_id: str
    status: str
    exit_reason: str
    steps_completed: int


# ---------------------------------------------------------------------------------- signals
class EnrollmentSignal(BaseModel):
    """Every signal names the enrollment it is meant for. The workflow ID is reused by a later
    enrollment of the same contact, so a signal for an older enrollment must not touch a newer one."""

    enrollment_id: str
    detail: str = ""


class UnenrollRequest(EnrollmentSignal):
    reason: ExitReason = ExitReason.MANUAL


class TaskCompleted(EnrollmentSignal):
    task_id: str
    completed_at: dt.datetime


class SignalName(StrEnum):
    REPLIED = "replied"
    MEETING_BOOKED = "meeting_booked"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"
    UNENROLL = "unenroll"
    PAUSE = "pause"
    RESUME = "resume"
    TASK_COMPLETED = "task_completed"


# ------------------------------------------------------------------------------------ query
class EnrollmentState(BaseModel):
    """What the ``status`` query returns."""

    enrollment_id: str
    status: str
    current_step: int | None
    steps_total: int
    steps_completed: int
    waiting_for: str
    waiting_until: dt.datetime | None = None
    paused_remaining_seconds: float | None = None
    exit_reason: str | None = None
    exit_detail: str | None = None
    failure: str | None = None


# ------------------------------------------------------------------------------- activities
class BeginEnrollmentInput(BaseModel):
    enrollment_id: str
    workflow_id: str
    definition_id: str
    definition_version: int
    contact_id: str
    company_id: str | None
    sender_id: str
    start_step: int
    first_delay: Delay
    settings: SequenceSettings
    enrolled_at: dt.datetime


class StepOutcome(StrEnum):
    DONE = "done"  # the step ran; next_due says when the next one is due
    DEFERRED = "deferred"  # the timer fired outside the allowed days/window; retry at deferred_until
    EXIT = "exit"  # the contact can no longer be emailed (opted out, bounced, replied)


class StepResult(BaseModel):
    outcome: StepOutcome
    next_due: dt.datetime | None = None
    deferred_until: dt.datetime | None = None
    exit_reason: ExitReason | None = None
    task_id: str | None = None
    detail: str = ""


class StepInput(BaseModel):
    enrollment_id: str
    definition_id: str
    contact_id: str
    sender_id: str
    step_index: int
    settings: SequenceSettings
    scheduled_for: dt.datetime
    started_at: dt.datetime = Field(description="workflow.now() when the step started; the activity's clock never reads earlier")
    enforce_rules: bool = Field(description="False for the first step, which goes at once (HubSpot)")
    next_delay: Delay | None = Field(default=None, description="Delay of the following step, if any")


class SendEmailInput(StepInput):
    step: EmailStep
    subject: str
    thread_with_index: int | None = None


class CreateTaskInput(StepInput):
    step: TaskStep
    waits_for_completion: bool


class PlanNextInput(BaseModel):
    contact_id: str
    sender_id: str
    settings: SequenceSettings
    anchor: dt.datetime
    delay: Delay


class RecordStatusInput(BaseModel):
    enrollment_id: str
    status: str
    current_step: int | None = None
    exit_reason: str | None = None
    ended: bool = False
    contact_id: str | None = None
    status_detail: str | None = Field(default=None, description="Why it is paused, e.g. 'inbox disconnected'")


class CompanyUnenrollInput(BaseModel):
    enrollment_id: str
    definition_id: str
    company_id: str
    trigger: ExitReason


class ActivityName(StrEnum):
    """Activities are called by name, so workflow code never imports I/O code and tests can swap
    an implementation by registering another function under the same name."""

    BEGIN_ENROLLMENT = "sequence.begin_enrollment"
    SEND_EMAIL = "sequence.send_email"
    CREATE_TASK = "sequence.create_task"
    PLAN_NEXT = "sequence.plan_next_step"
    RECORD_STATUS = "sequence.record_status"
    UNENROLL_COMPANY = "sequence.unenroll_company_peers"


# Errors an activity raises as non-retryable ApplicationError types: retrying cannot help, the
# enrollment moves to "needs review" and waits for a person (resume retries the step).
INBOX_DISCONNECTED = "inbox disconnected"

NON_RETRYABLE_ERRORS = ["MissingToken", "PermanentSendFailure", "NotFound", "InvalidInput", "InboxDisconnected"]
