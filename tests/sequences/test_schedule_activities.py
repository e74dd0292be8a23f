"""Schedule rules, pinned to exact dates by calling the activities directly with constructed
inputs (no Temporal server): whole days at the enrollment's time of day, weekends, US holidays,
send windows, the contact's time zone, both DST changes, and the late-timer deferral.

Activities read the wall clock but never earlier than the step's ``started_at``; the tests that
depend on "now" put ``started_at`` in 2040, safely after any real date these tests run on.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from activities.deps import ActivityDeps
from activities.sequence_email import SequenceEmailActivities, message_key
from activities.sequence_enrollment import SequenceEnrollmentActivities
from activities.sequence_tasks import SequenceTaskActivities, task_id_for
from nurture.contracts.sequence import (
    BeginEnrollmentInput,
    CreateTaskInput,
    PlanNextInput,
    SendEmailInput,
    StepOutcome,
)
from nurture.definitions.common import Delay
from nurture.definitions.sequence import EmailStep, SequenceSettings, TaskStep
from nurture.ids import new_id
from tests.sequences.conftest import World, make_world

UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    """An aware moment; a bare time means UTC."""
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@pytest.fixture
def w(store, settings, mail, gmail) -> World:  # type: ignore[no-untyped-def]
    return make_world(store, settings, mail, client=None)


@pytest.fixture
def acts(w: World) -> dict[str, Any]:
    deps = ActivityDeps(store=w.store, settings=w.settings)
    return {
        "enrollment": SequenceEnrollmentActivities(deps),
        "email": SequenceEmailActivities(deps),
        "tasks": SequenceTaskActivities(deps),
    }


def rules(**settings: Any) -> SequenceSettings:
    return SequenceSettings.model_validate(settings)


def begin(w: World, acts: dict[str, Any], settings: SequenceSettings, enrolled_at: dt.datetime,
          first_delay: str = "0", contact: int = 0) -> tuple[str, dt.datetime]:
    """Run BEGIN_ENROLLMENT; returns (enrollment ID, first step's due time)."""
    enrollment_id = new_id("enr")
    result = acts["enrollment"].begin_enrollment(BeginEnrollmentInput(
        enrollment_id=enrollment_id, workflow_id=f"wf-{enrollment_id}", definition_id="d", definition_version=1,
        contact_id=w.contacts[contact].id, company_id=w.company.id, sender_id=w.sender.id, start_step=0,
        first_delay=Delay.model_validate(first_delay), settings=settings, enrolled_at=enrolled_at,
    ))
    assert result.outcome is StepOutcome.DONE
    return enrollment_id, result.next_due


def plan(w: World, acts: dict[str, Any], settings: SequenceSettings, anchor: dt.datetime, delay: str, contact: int = 0) -> dt.datetime:
    result = acts["enrollment"].plan_next_step(PlanNextInput(
        contact_id=w.contacts[contact].id, sender_id=w.sender.id, settings=settings, anchor=anchor,
        delay=Delay.model_validate(delay),
    ))
    return result.next_due


# ----------------------------------------------------------------------- whole days, time of day
def test_steps_are_whole_days_apart_at_the_enrollment_time_of_day(w, acts):
    s = rules(eligible_days="every_day")
    enrolled = at("2026-11-10T14:37:12")
    _, first = begin(w, acts, s, enrolled)
    assert first == enrolled  # an immediate first step goes at once
    assert plan(w, acts, s, first, "3d") == at("2026-11-13T14:37:12")
    assert plan(w, acts, s, first, "1d 4h") == at("2026-11-11T18:37:12")
    assert plan(w, acts, s, first, "30m") == at("2026-11-10T15:07:12")
    _, first = begin(w, acts, s, enrolled, first_delay="2d")
    assert first == at("2026-11-12T14:37:12")


def test_the_next_step_counts_from_the_scheduled_time_not_the_late_send(w, acts):
    """A step that ran 7 minutes late does not push the next one 7 minutes."""
    s = rules(eligible_days="every_day", send_window={"start": "09:00", "end": "17:00"})
    enrollment_id, _ = begin(w, acts, s, at("2040-01-02T10:00"))
    result = acts["email"].send_email(email_input(w, enrollment_id, s, scheduled_for=at("2040-01-03T10:00"),
                                                  started_at=at("2040-01-03T10:07"), next_delay="2d"))
    assert result.outcome is StepOutcome.DONE and result.next_due == at("2040-01-05T10:00")


# ------------------------------------------------------------------------ eligible days, holidays
def test_weekends_move_to_monday_same_time(w, acts):
    s = rules()  # weekdays, HubSpot's default
    assert plan(w, acts, s, at("2026-11-13T10:00"), "1d") == at("2026-11-16T10:00")  # Fri -> Mon
    assert plan(w, acts, s, at("2026-11-13T10:00"), "2d") == at("2026-11-16T10:00")
    assert plan(w, acts, s, at("2026-11-12T10:00"), "1d") == at("2026-11-13T10:00")  # Thu -> Fri
    # The first email goes at once even on a Saturday; a delayed first step moves to Monday.
    _, first = begin(w, acts, s, at("2026-11-14T08:15"))
    assert first == at("2026-11-14T08:15")
    _, first = begin(w, acts, s, at("2026-11-14T08:15"), first_delay="1d")
    assert first == at("2026-11-16T08:15")
    # Every day: no move.
    assert plan(w, acts, rules(eligible_days="every_day"), at("2026-11-13T10:00"), "1d") == at("2026-11-14T10:00")


def test_business_days_skip_us_holidays_of_the_senders_country(w, acts):
    business = rules(eligible_days="business_days")
    # Thanksgiving, Thursday 2026-11-26: Wednesday + 1 day moves to Friday, same time.
    assert plan(w, acts, business, at("2026-11-25T15:30"), "1d") == at("2026-11-27T15:30")
    # Independence Day 2026 is a Saturday, observed Friday 2026-07-03: Thursday + 1 day -> Monday.
    assert plan(w, acts, business, at("2026-07-02T15:30"), "1d") == at("2026-07-06T15:30")
    # Weekdays ignore holidays (HubSpot's behaviour).
    assert plan(w, acts, rules(), at("2026-11-25T15:30"), "1d") == at("2026-11-26T15:30")
    # Another country's calendar: Thanksgiving is an ordinary Thursday in Germany.
    assert plan(w, acts, rules(eligible_days="business_days", holiday_country="DE"), at("2026-11-25T15:30"), "1d") == at("2026-11-26T15:30")
    # The sender's country is the default calendar: a German sender has no Thanksgiving.
    w.store.upsert_user(w.sender.email, name=w.sender.name, timezone="UTC", country="DE")
    assert plan(w, acts, business, at("2026-11-25T15:30"), "1d") == at("2026-11-26T15:30")


def test_a_holiday_subdivision_without_business_days_is_ignored(w, acts):
    """``holiday_subdivision`` only matters with business days; with weekdays the rules must
    still build (they used to raise on every schedule computation, failing the step)."""
    s = rules(eligible_days="weekdays", holiday_subdivision="CA")
    assert plan(w, acts, s, at("2026-11-25T15:30"), "1d") == at("2026-11-26T15:30")
    # With business days the subdivision applies (California: day after Thanksgiving is a holiday).
    s = rules(eligible_days="business_days", holiday_subdivision="CA")
    assert plan(w, acts, s, at("2026-11-25T15:30"), "1d") == at("2026-11-30T15:30")


# ----------------------------------------------------------------------------------- windows
def test_send_window(w, acts):
    s = rules(eligible_days="weekdays", send_window={"start": "09:00", "end": "17:00"})
    assert plan(w, acts, s, at("2026-11-16T11:00"), "1d") == at("2026-11-17T11:00")  # inside: kept
    assert plan(w, acts, s, at("2026-11-16T07:15"), "1d") == at("2026-11-17T09:00")  # before: window start
    assert plan(w, acts, s, at("2026-11-16T18:30"), "1d") == at("2026-11-18T09:00")  # after: next day's start
    assert plan(w, acts, s, at("2026-11-16T16:59"), "1d") == at("2026-11-17T16:59")
    assert plan(w, acts, s, at("2026-11-16T17:00"), "0d 1m") == at("2026-11-17T09:00")  # end is exclusive
    assert plan(w, acts, s, at("2026-11-13T16:30"), "1d") == at("2026-11-16T16:30")  # Fri -> Mon, in window
    assert plan(w, acts, s, at("2026-11-13T18:00"), "1d") == at("2026-11-16T09:00")  # Sat 18:00 -> Mon start


def test_the_contacts_time_zone(w, acts):
    s = rules(eligible_days="weekdays", timezone="contact", send_window={"start": "09:00", "end": "17:00"})
    w.store.upsert_record("contact", {"timezone": "America/Los_Angeles"}, record_id=w.contacts[0].id)
    # 16:00 UTC is 08:00 in Los Angeles: before the contact's window, which opens at 17:00 UTC.
    assert plan(w, acts, s, at("2026-11-16T16:00"), "1d") == at("2026-11-17T17:00")
    # Friday 23:30 UTC is still Friday 15:30 in Los Angeles: + 1 day is Saturday there -> Monday.
    assert plan(w, acts, s, at("2026-11-13T23:30"), "1d") == at("2026-11-16T23:30")
    # Grace has no time zone, Linus a bad one: both fall back to the sender's (UTC).
    w.store.upsert_record("contact", {"timezone": "Mars/Olympus_Mons"}, record_id=w.contacts[2].id)
    assert plan(w, acts, s, at("2026-11-16T16:00"), "1d", contact=1) == at("2026-11-17T16:00")
    assert plan(w, acts, s, at("2026-11-16T16:00"), "1d", contact=2) == at("2026-11-17T16:00")
    # Sender time zone: the sender's setting, not the contact's.
    w.store.upsert_user(w.sender.email, name=w.sender.name, timezone="Europe/Berlin", country="US")
    sender_rules = rules(eligible_days="weekdays", send_window={"start": "09:00", "end": "17:00"})
    assert plan(w, acts, sender_rules, at("2026-11-16T07:00"), "1d") == at("2026-11-17T08:00")  # 08:00 Berlin -> 09:00


def test_both_dst_changes_keep_the_local_time_of_day(w, acts):
    ny = rules(eligible_days="every_day", timezone="America/New_York")
    # Spring forward (2026-03-08): 09:00 EST Friday + 2 days = 09:00 EDT Sunday, 47 real hours.
    assert plan(w, acts, ny, at("2026-03-06T14:00"), "2d") == at("2026-03-08T13:00")
    # Fall back (2026-11-01): 09:00 EDT Friday + 2 days = 09:00 EST Sunday, 49 real hours.
    assert plan(w, acts, ny, at("2026-10-30T13:00"), "2d") == at("2026-11-01T14:00")
    # Weekdays across the fall-back weekend: Friday 09:00 EDT -> Monday 09:00 EST.
    weekdays_ny = rules(eligible_days="weekdays", timezone="America/New_York")
    assert plan(w, acts, weekdays_ny, at("2026-10-30T13:00"), "1d") == at("2026-11-02T14:00")
    # Hours are elapsed time: 12:00 EST Saturday + 24h = 13:00 EDT Sunday.
    assert plan(w, acts, ny, at("2026-03-07T17:00"), "24h") == at("2026-03-08T17:00")
    # A time of day in the spring-forward gap moves forward by the gap: 02:30 -> 03:30 EDT.
    assert plan(w, acts, ny, at("2026-03-07T07:30"), "1d") == at("2026-03-08T07:30")
    # The window follows local time on both sides of the change.
    window_ny = rules(eligible_days="every_day", timezone="America/New_York", send_window={"start": "09:00", "end": "17:00"})
    assert plan(w, acts, window_ny, at("2026-03-07T12:00"), "1d") == at("2026-03-08T13:00")  # 07:00 EST -> 09:00 EDT
    assert plan(w, acts, window_ny, at("2026-10-31T12:00"), "1d") == at("2026-11-01T14:00")  # 08:00 EDT -> 09:00 EST


# ----------------------------------------------------------------------------- late timers
def email_input(w: World, enrollment_id: str, settings: SequenceSettings, *, scheduled_for: dt.datetime,
                started_at: dt.datetime, enforce: bool = True, next_delay: str | None = None, index: int = 1) -> SendEmailInput:
    return SendEmailInput(
        enrollment_id=enrollment_id, definition_id="d", contact_id=w.contacts[0].id, sender_id=w.sender.id,
        step_index=index, settings=settings, scheduled_for=scheduled_for, started_at=started_at, enforce_rules=enforce,
        next_delay=Delay.model_validate(next_delay) if next_delay else None,
        step=EmailStep(type="email", subject="Hello {{ contact.firstname }}", body="Hi {{ contact.firstname }}"),
        subject="Hello {{ contact.firstname }}",
    )


def test_a_late_email_step_is_deferred_to_the_next_allowed_moment_and_not_sent(w, acts):
    s = rules(eligible_days="business_days", send_window={"start": "09:00", "end": "17:00"})
    enrollment_id, _ = begin(w, acts, s, at("2040-01-02T10:00"))
    # Due Tuesday 16:50, but the timer fired (the worker was down) at 18:30: not now, tomorrow 09:00.
    result = acts["email"].send_email(email_input(w, enrollment_id, s, scheduled_for=at("2040-01-03T16:50"),
                                                  started_at=at("2040-01-03T18:30"), next_delay="1d"))
    assert result.outcome is StepOutcome.DEFERRED and result.deferred_until == at("2040-01-04T09:00")
    assert result.next_due is None
    # Fired on Thanksgiving 2040 (Thursday 11-22) at 10:00: deferred to Friday, same time.
    result = acts["email"].send_email(email_input(w, enrollment_id, s, scheduled_for=at("2040-11-21T16:59"),
                                                  started_at=at("2040-11-22T10:00")))
    assert result.outcome is StepOutcome.DEFERRED and result.deferred_until == at("2040-11-23T10:00")
    # Fired on a Sunday before dawn: Monday's window.
    result = acts["email"].send_email(email_input(w, enrollment_id, s, scheduled_for=at("2040-03-02T16:00"),
                                                  started_at=at("2040-03-04T05:00")))
    assert result.outcome is StepOutcome.DEFERRED and result.deferred_until == at("2040-03-05T09:00")
    assert w.sent_to(w.contacts[0]) == [] and w.store.get_message(message_key(enrollment_id, 1)) is None

    # At the deferred moment it goes, and the next step counts from that moment.
    result = acts["email"].send_email(email_input(w, enrollment_id, s, scheduled_for=at("2040-01-04T09:00"),
                                                  started_at=at("2040-01-04T09:00:01"), next_delay="1d"))
    assert result.outcome is StepOutcome.DONE and result.next_due == at("2040-01-05T09:00")
    assert [m.subject for m in w.sent_to(w.contacts[0])] == ["Hello Ada"]
    # Run again (a retried activity): not sent twice.
    result = acts["email"].send_email(email_input(w, enrollment_id, s, scheduled_for=at("2040-01-04T09:00"),
                                                  started_at=at("2040-01-04T09:00:05"), next_delay="1d"))
    assert result.outcome is StepOutcome.DONE and len(w.sent_to(w.contacts[0])) == 1


def test_the_first_step_is_not_held_to_the_rules(w, acts):
    s = rules(eligible_days="weekdays", send_window={"start": "09:00", "end": "17:00"})
    enrollment_id, _ = begin(w, acts, s, at("2040-03-03T23:00"))  # Saturday night
    result = acts["email"].send_email(email_input(w, enrollment_id, s, scheduled_for=at("2040-03-03T23:00"),
                                                  started_at=at("2040-03-03T23:00"), enforce=False, index=0))
    assert result.outcome is StepOutcome.DONE and len(w.sent_to(w.contacts[0])) == 1


def test_a_late_task_step_is_deferred_and_no_task_is_created(w, acts):
    s = rules(eligible_days="weekdays", send_window={"start": "09:00", "end": "17:00"})
    enrollment_id, _ = begin(w, acts, s, at("2040-01-02T10:00"))

    def inp(started_at: dt.datetime, scheduled_for: dt.datetime) -> CreateTaskInput:
        return CreateTaskInput(
            enrollment_id=enrollment_id, definition_id="d", contact_id=w.contacts[0].id, sender_id=w.sender.id,
            step_index=1, settings=s, scheduled_for=scheduled_for, started_at=started_at, enforce_rules=True,
            next_delay=Delay.model_validate("1d"), step=TaskStep(type="call_task", title="Call {{ contact.firstname }}"),
            waits_for_completion=False,
        )

    result = acts["tasks"].create_task(inp(at("2040-01-03T17:00"), at("2040-01-03T16:00")))
    assert result.outcome is StepOutcome.DEFERRED and result.deferred_until == at("2040-01-04T09:00")
    assert not w.store.task_exists(task_id_for(enrollment_id, 1))
    result = acts["tasks"].create_task(inp(at("2040-01-04T09:00"), at("2040-01-04T09:00")))
    assert result.outcome is StepOutcome.DONE and result.next_due == at("2040-01-05T09:00")
    task = w.store.get_task(task_id_for(enrollment_id, 1))
    assert task.title == "Call Ada" and task.due_at == at("2040-01-04T09:00") and task.assignee_id == w.sender.id
