"""Turn a sequence's settings plus the sender and contact into concrete schedule rules.

Lives on the activity side: it reads the store (time zones, countries) and the answers depend on
tzdata and holiday data, which change between releases.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from nurture.definitions.common import Delay as DelaySpec
from nurture.definitions.sequence import SequenceSettings
from nurture.scheduling import Delay, EligibleDays, ScheduleRules, SendWindow, schedule_step
from nurture.settings import Settings
from nurture.store.models import Record, User


def _valid_tz(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return name


def resolve_rules(settings: SequenceSettings, sender: User, contact: Record, account: Settings) -> ScheduleRules:
    sender_tz = _valid_tz(sender.timezone) or account.timezone
    if settings.timezone == "sender":
        tz = sender_tz
    elif settings.timezone == "contact":
        tz = _valid_tz(contact.properties.get("timezone")) or sender_tz
    else:
        tz = settings.timezone
    country = settings.holiday_country or (sender.country or account.country or "").upper() or None
    window = SendWindow(settings.send_window.start, settings.send_window.end) if settings.send_window else None
    holiday_country = country if settings.eligible_days == EligibleDays.BUSINESS_DAYS else None
    return ScheduleRules(
        timezone=tz,
        eligible_days=EligibleDays(settings.eligible_days),
        window=window,
        holiday_country=holiday_country,
        # Only with a holiday calendar: ScheduleRules rejects a subdivision without a country,
        # so "weekdays" + holiday_subdivision used to fail every schedule computation (and
        # with it every step, retried for days).
        holiday_subdivision=settings.holiday_subdivision if holiday_country else None,
    )


def to_delay(spec: DelaySpec) -> Delay:
    return Delay(days=spec.days, hours=spec.hours, minutes=spec.minutes, seconds=spec.seconds)


def due_after(anchor: dt.datetime, delay: DelaySpec, rules: ScheduleRules, *, immediate_first: bool = False) -> dt.datetime:
    return schedule_step(anchor, to_delay(delay), rules, immediate_first=immediate_first)
