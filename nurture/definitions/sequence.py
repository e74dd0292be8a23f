"""The sequence definition: HubSpot's 1:1 sales follow-up, written as YAML.

A sequence is a list of steps. Each step runs a delay after the previous one; automated emails
go from the enrolling rep's inbox, task steps create tasks for the rep. See README "Sequences".
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from nurture.definitions.common import DefinitionId, Delay, StepId, StrictModel, TimeWindow, content_checks_apply
from nurture.scheduling import EligibleDays


class TaskPriority(StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


def _check_template(value: str) -> str:
    if not content_checks_apply():
        return value
    from nurture.templating import check_template

    problems = check_template(value)
    if problems:
        raise ValueError("; ".join(problems))
    return value


class _StepBase(StrictModel):
    id: StepId | None = Field(default=None, description="Optional name other steps can refer to")
    delay: Delay = Field(default_factory=Delay, description="Time after the previous step (2d, 4h, 30m)")


class EmailStep(_StepBase):
    """An automated sales email, sent from the sender's connected inbox."""

    type: Literal["email"]
    subject: str | None = Field(default=None, max_length=998)
    body: str = Field(min_length=1)
    thread_with: StepId | None = Field(
        default=None,
        description="ID of an earlier email step: this email is a reply in that thread, same subject",
    )

    _templates = field_validator("subject", "body")(lambda v: v if v is None else _check_template(v))


TASK_STEP_TYPES = ("call_task", "manual_email_task", "todo_task", "linkedin_connect_task", "linkedin_message_task")


class TaskStep(_StepBase):
    """A task for the sender: a call, a manual email, a to-do, a LinkedIn connect or message."""

    type: Literal["call_task", "manual_email_task", "todo_task", "linkedin_connect_task", "linkedin_message_task"]
    title: str = Field(min_length=1, max_length=500)
    notes: str = ""
    priority: TaskPriority = TaskPriority.NONE
    wait_for_completion: bool | None = Field(
        default=None, description="Pause the sequence until the task is completed; default from settings"
    )

    _templates = field_validator("title", "notes")(lambda v: _check_template(v))


SequenceStep = Annotated[Union[EmailStep, TaskStep], Field(discriminator="type")]


class SequenceSettings(StrictModel):
    eligible_days: EligibleDays = Field(
        default=EligibleDays.WEEKDAYS,
        description="business_days skips weekends and public holidays; weekdays skips weekends (HubSpot's default)",
    )
    send_window: TimeWindow | None = Field(default=None, description="Local time of day steps may run in")
    timezone: str = Field(
        default="sender", description="'sender', 'contact' (the contact's timezone property, else the sender's) or an IANA name"
    )
    holiday_country: str | None = Field(
        default=None, description="ISO country code of the holiday calendar; default: the sender's country"
    )
    holiday_subdivision: str | None = None
    wait_for_task_completion: bool = Field(
        default=True, description="Task steps pause the sequence until completed (HubSpot's default)"
    )
    unenroll_company_on_reply: bool = Field(
        default=False, description="When one contact replies or books, other contacts of the company leave this sequence"
    )
    unsubscribe_link: bool = Field(default=True, description="Add a sales-email opt-out link to automated emails")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        if value in ("sender", "contact") or not content_checks_apply():
            return value
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use 'sender', 'contact' or an IANA name like Europe/Berlin") from exc
        return value

    @field_validator("holiday_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None or not content_checks_apply():
            return value
        from nurture.scheduling import validate_country

        validate_country(value.upper())
        return value.upper()


class SequenceDefinition(StrictModel):
    kind: Literal["sequence"]
    id: DefinitionId
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    settings: SequenceSettings = Field(default_factory=SequenceSettings)
    steps: list[SequenceStep] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _steps_consistent(self) -> SequenceDefinition:
        seen: dict[str, SequenceStep] = {}
        for index, step in enumerate(self.steps):
            if step.id is not None:
                if step.id in seen:
                    raise ValueError(f"steps[{index}].id: {step.id!r} is used by an earlier step; step IDs must be unique")
                seen[step.id] = step
            if isinstance(step, EmailStep):
                if step.thread_with is not None:
                    target = seen.get(step.thread_with) if step.thread_with != step.id else None
                    if not isinstance(target, EmailStep):
                        raise ValueError(
                            f"steps[{index}].thread_with: {step.thread_with!r} is not an earlier email step; "
                            "name an email step above this one by its id"
                        )
                    if step.subject is not None:
                        raise ValueError(
                            f"steps[{index}].subject: a threaded follow-up keeps the first email's subject; remove subject"
                        )
                elif not step.subject:
                    raise ValueError(f"steps[{index}].subject: an email that starts a thread needs a subject")
        return self

    def step_id(self, index: int) -> str:
        return self.steps[index].id or f"step-{index + 1}"

    def step_index(self, step_id: str) -> int:
        for index in range(len(self.steps)):
            if self.step_id(index) == step_id:
                return index
        raise KeyError(step_id)

    def subject_of(self, index: int) -> str:
        """The subject an email step sends with: its own, or that of the thread it follows."""
        step = self.steps[index]
        assert isinstance(step, EmailStep)
        while step.thread_with is not None:
            step = self.steps[self.step_index(step.thread_with)]  # type: ignore[assignment]
        assert step.subject is not None
        return step.subject
