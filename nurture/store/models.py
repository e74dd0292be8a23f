"""Typed rows the store returns. Plain pydantic models: safe to print, serialize and test."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class RecordType(StrEnum):
    CONTACT = "contact"
    COMPANY = "company"
    DEAL = "deal"
    TICKET = "ticket"
    QUOTE = "quote"


class User(BaseModel):
    id: str
    email: str
    name: str = ""
    timezone: str | None = None
    country: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    created_at: dt.datetime


class Record(BaseModel):
    id: str
    type: RecordType
    owner_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def email(self) -> str | None:
        value = self.properties.get("email")
        return str(value) if value else None

    @property
    def display_name(self) -> str:
        p = self.properties
        if self.type is RecordType.CONTACT:
            name = " ".join(str(p[k]) for k in ("firstname", "lastname") if p.get(k))
            return name or str(p.get("email") or self.id)
        return str(p.get("name") or p.get("domain") or self.id)


class PropertyChange(BaseModel):
    old: Any = None
    new: Any = None


class UpsertResult(BaseModel):
    record: Record
    created: bool
    changes: dict[str, PropertyChange]


class StaticList(BaseModel):
    id: str
    name: str
    object_type: RecordType
    created_at: dt.datetime
    size: int = 0


class DefinitionStatus(StrEnum):
    ON = "on"
    OFF = "off"
    ARCHIVED = "archived"


class DefinitionRow(BaseModel):
    id: str
    kind: str
    name: str
    status: DefinitionStatus
    latest_version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class DefinitionVersion(BaseModel):
    definition_id: str
    version: int
    body: dict[str, Any]
    checksum: str
    created_at: dt.datetime


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    NEEDS_REVIEW = "needs_review"
    FINISHED = "finished"
    UNENROLLED = "unenrolled"

    @property
    def is_open(self) -> bool:
        return self in (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED, EnrollmentStatus.NEEDS_REVIEW)


OPEN_ENROLLMENT_STATUSES = tuple(s.value for s in EnrollmentStatus if s.is_open)


class Enrollment(BaseModel):
    id: str
    kind: str
    definition_id: str
    definition_version: int
    record_id: str
    company_id: str | None = None
    sender_id: str | None = None
    workflow_id: str
    status: EnrollmentStatus
    exit_reason: str | None = None
    current_step: int | None = None
    status_detail: str | None = None
    enrolled_at: dt.datetime
    updated_at: dt.datetime
    ended_at: dt.datetime | None = None


class TaskStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELED = "canceled"


class Task(BaseModel):
    id: str
    type: str
    title: str
    notes: str = ""
    priority: str = "none"
    record_id: str | None = None
    assignee_id: str | None = None
    enrollment_id: str | None = None
    step_index: int | None = None
    status: TaskStatus
    due_at: dt.datetime | None = None
    created_at: dt.datetime
    completed_at: dt.datetime | None = None


class Message(BaseModel):
    id: str
    channel: str
    enrollment_id: str | None = None
    step_index: int | None = None
    record_id: str | None = None
    sender_id: str | None = None
    to_address: str
    from_address: str
    subject: str
    rfc822_message_id: str | None = None
    provider_message_id: str | None = None
    thread_id: str | None = None
    status: str
    sent_at: dt.datetime | None = None
    created_at: dt.datetime


class EmailEvent(BaseModel):
    id: str
    message_id: str | None = None
    enrollment_id: str | None = None
    record_id: str | None = None
    type: str
    occurred_at: dt.datetime
    data: dict[str, Any] = Field(default_factory=dict)


class Inbox(BaseModel):
    user_id: str
    email: str
    provider: str
    state: str
    daily_cap: int
    min_spacing_seconds: int
    history_id: str | None = None
    last_error: str | None = None
    connected_at: dt.datetime
    updated_at: dt.datetime


# Contact properties Nurture itself sets: an exit after a bounce or an opt-out flags the contact,
# and later enrollments are refused ("previously bounced", "unsubscribed").
BOUNCED_PROPERTY = "email_bounced"
OPT_OUT_PROPERTY = "sales_email_opt_out"
