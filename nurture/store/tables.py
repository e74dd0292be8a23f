"""The store's schema (SQLAlchemy Core). Alembic migrations under ``migrations/`` create it.

Every change here needs a new migration (``alembic revision``) — the tests compare the two.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite hands back naive values otherwise)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware datetime")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("timezone", sa.String(64), nullable=True),
    sa.Column("country", sa.String(8), nullable=True),
    sa.Column("properties", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

records = sa.Table(
    "records",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("type", sa.String(16), nullable=False, index=True),
    # The natural key a record is matched on when upserted without an ID: a contact's email
    # (lower-cased), a company's domain. Unique per type so an import never duplicates a contact.
    sa.Column("natural_key", sa.String(320), nullable=True),
    sa.Column("owner_id", sa.String(40), sa.ForeignKey("users.id"), nullable=True),
    sa.Column("properties", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("type", "natural_key"),
)

associations = sa.Table(
    "associations",
    metadata,
    # Stored once per direction so "everything associated with X" is one indexed lookup.
    sa.Column("from_id", sa.String(40), sa.ForeignKey("records.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("to_id", sa.String(40), sa.ForeignKey("records.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("to_type", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

lists = sa.Table(
    "lists",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("object_type", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

list_members = sa.Table(
    "list_members",
    metadata,
    sa.Column("list_id", sa.String(40), sa.ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("record_id", sa.String(40), sa.ForeignKey("records.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.Index("ix_list_members_record", "record_id"),
)

definitions = sa.Table(
    "definitions",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    # on: new enrollments allowed; off: refused, running ones go on; archived: off and hidden.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

definition_versions = sa.Table(
    "definition_versions",
    metadata,
    sa.Column("definition_id", sa.String(100), sa.ForeignKey("definitions.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("body", JSONType, nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

enrollments = sa.Table(
    "enrollments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("definition_id", sa.String(100), nullable=False),
    sa.Column("definition_version", sa.Integer, nullable=False),
    sa.Column("record_id", sa.String(40), nullable=False),
    sa.Column("company_id", sa.String(40), nullable=True),
    sa.Column("sender_id", sa.String(40), nullable=True),
    sa.Column("workflow_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("exit_reason", sa.String(200), nullable=True),
    sa.Column("current_step", sa.Integer, nullable=True),
    # Why the enrollment is paused or needs review ("inbox disconnected", a send failure).
    sa.Column("status_detail", sa.String(500), nullable=True),
    sa.Column("enrolled_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Index("ix_enrollments_record_status", "record_id", "status"),
    sa.Index("ix_enrollments_definition_status", "definition_id", "status"),
    sa.Index("ix_enrollments_company_definition", "company_id", "definition_id"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("notes", sa.Text, nullable=False, server_default=""),
    sa.Column("priority", sa.String(8), nullable=False, server_default="none"),
    sa.Column("record_id", sa.String(40), nullable=True),
    sa.Column("assignee_id", sa.String(40), nullable=True),
    sa.Column("enrollment_id", sa.String(40), nullable=True),
    sa.Column("step_index", sa.Integer, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Index("ix_tasks_assignee_status", "assignee_id", "status"),
    sa.Index("ix_tasks_enrollment", "enrollment_id"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),  # deterministic: enrollment + step
    sa.Column("channel", sa.String(16), nullable=False),  # gmail | sendgrid
    sa.Column("enrollment_id", sa.String(40), nullable=True),
    sa.Column("step_index", sa.Integer, nullable=True),
    sa.Column("record_id", sa.String(40), nullable=True),
    sa.Column("sender_id", sa.String(40), nullable=True),
    sa.Column("to_address", sa.String(320), nullable=False),
    sa.Column("from_address", sa.String(320), nullable=False),
    sa.Column("subject", sa.String(998), nullable=False),
    sa.Column("rfc822_message_id", sa.String(400), nullable=True, unique=True),
    sa.Column("provider_message_id", sa.String(200), nullable=True),
    sa.Column("thread_id", sa.String(200), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_messages_enrollment", "enrollment_id"),
    sa.Index("ix_messages_thread", "thread_id"),
)

email_events = sa.Table(
    "email_events",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),  # provider event ID or a derived key
    sa.Column("message_id", sa.String(80), nullable=True),
    sa.Column("enrollment_id", sa.String(40), nullable=True),
    sa.Column("record_id", sa.String(40), nullable=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("data", JSONType, nullable=False),
    sa.Index("ix_email_events_enrollment", "enrollment_id"),
)

inboxes = sa.Table(
    "inboxes",
    metadata,
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("provider", sa.String(16), nullable=False),  # gmail | local
    sa.Column("state", sa.String(16), nullable=False),  # connected | disconnected
    # OAuth tokens, encrypted at rest (Fernet) with NURTURE_ENCRYPTION_KEY.
    sa.Column("credentials_encrypted", sa.Text, nullable=True),
    sa.Column("daily_cap", sa.Integer, nullable=False, server_default="500"),
    sa.Column("min_spacing_seconds", sa.Integer, nullable=False, server_default="30"),
    sa.Column("history_id", sa.String(40), nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("connected_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

send_slots = sa.Table(
    "send_slots",
    metadata,
    # One reserved send time per message; the inbox's cap and spacing are checked against these
    # rows inside one transaction that locks the inbox row, so they hold across any number of workers.
    sa.Column("message_key", sa.String(80), primary_key=True),
    sa.Column("inbox_user_id", sa.String(40), sa.ForeignKey("inboxes.user_id", ondelete="CASCADE"), nullable=False),
    sa.Column("slot_at", UTCDateTime, nullable=False),
    # When the send really went: a timer may fire late, so the spacing of actual sends is
    # checked again against these just before each send.
    sa.Column("claimed_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_send_slots_inbox_slot", "inbox_user_id", "slot_at"),
)

api_idempotency = sa.Table(
    "api_idempotency",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
