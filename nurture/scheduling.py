"""When may a sequence step run? Delays, eligible days, send windows, holidays.

Pure functions: no I/O and no wall-clock reads. "Now" is always passed in. Call
them from Temporal *activities*, not from workflow code: the answers depend on
the installed ``tzdata`` and ``holidays`` versions, which change between
deployments and would make workflow replay non-deterministic.

Every datetime going in must be timezone-aware (naive values raise
``ValueError``); every datetime coming out is in UTC.

HubSpot's sequence rules, as implemented here:

* Steps run whole days apart at the time of day of the previous step (for the
  first step: of the enrollment). A delay of N days is added on the *local*
  calendar of ``ScheduleRules.timezone`` and keeps the local wall-clock time, so
  a 1-day delay across a DST change is 23 or 25 real hours (09:00 stays 09:00).
  Hours, minutes and seconds are then added as exact elapsed time.
* A step that falls on an ineligible day (weekend; also a public holiday with
  ``EligibleDays.BUSINESS_DAYS`` and a ``holiday_country``) moves to the next
  eligible day at the same local time.
* With a send window, a moment before the window start moves to the window start
  that day; a moment at or after the window end (the end is exclusive) moves to
  the window start of the next eligible day.
* A first step sent "immediately" goes at once, even on a weekend or outside the
  window (``schedule_step(..., immediate_first=True)`` with a zero delay).

Local times that do not exist or exist twice (DST):

* Non-existent (spring-forward gap): the time is shifted forward by the length
  of the gap, e.g. 02:30 on 2026-03-08 in America/New_York becomes 03:30 EDT,
  and a window starting at 02:30 opens at 03:30 that day. (This is the PEP 495
  ``fold=0`` reading of a gap time.)
* Ambiguous (fall-back overlap): the first occurrence is used (``fold=0``, the
  daylight-saving one), e.g. 01:30 on 2026-11-01 in America/New_York is 01:30
  EDT. Exception: ``next_allowed`` never returns a moment earlier than its
  input, so when moving to a window start inside the overlap would go back in
  time, the second occurrence is used.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = [
    "MAX_SEARCH_DAYS",
    "Delay",
    "EligibleDays",
    "ScheduleRules",
    "SendWindow",
    "holiday_name",
    "is_allowed",
    "is_eligible_day",
    "next_allowed",
    "schedule_step",
    "validate_country",
]

UTC = timezone.utc

#: How far ``next_allowed`` looks for an eligible day before giving up.
MAX_SEARCH_DAYS = 366

# Each adjustment either lands on an allowed moment or moves strictly forward
# to a window start / eligible day, so a handful suffices; the cap only turns a
# logic error into an exception instead of a hung activity.
_MAX_ADJUSTMENTS = 32

_WEEKEND = frozenset({5, 6})  # Saturday, Sunday (date.weekday())


class EligibleDays(StrEnum):
    """Which local calendar days a step may run on."""

    BUSINESS_DAYS = "business_days"
    """Monday to Friday, minus public holidays of ``ScheduleRules.holiday_country``
    (HubSpot itself ignores holidays; without a country this equals WEEKDAYS)."""
    WEEKDAYS = "weekdays"
    """Monday to Friday, holidays ignored (HubSpot's default, ``WEEKDAYS_ONLY``)."""
    EVERY_DAY = "every_day"
    """Any day (HubSpot's ``EVERYDAY``)."""

    @classmethod
    def _missing_(cls, value: object) -> EligibleDays | None:
        # Accept HubSpot's API spellings so settings can be imported as-is.
        if isinstance(value, str):
            return _ELIGIBLE_DAYS_ALIASES.get(value.strip().lower().replace("-", "_"))
        return None


_ELIGIBLE_DAYS_ALIASES: dict[str, EligibleDays] = {
    "business_days": EligibleDays.BUSINESS_DAYS,
    "weekdays": EligibleDays.WEEKDAYS,
    "weekdays_only": EligibleDays.WEEKDAYS,
    "every_day": EligibleDays.EVERY_DAY,
    "everyday": EligibleDays.EVERY_DAY,
}


@dataclass(frozen=True)
class SendWindow:
    """Local wall-clock hours in which steps may run: ``start <= t < end``.

    Windows that cross midnight are not supported (``end`` must be after
    ``start``).
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        for field_name in ("start", "end"):
            value = getattr(self, field_name)
            if not isinstance(value, time):
                raise TypeError(
                    f"SendWindow.{field_name} must be a datetime.time, got {type(value).__name__}"
                )
            if value.tzinfo is not None:
                raise ValueError(
                    f"SendWindow.{field_name} must be a local wall-clock time without tzinfo "
                    f"(the zone comes from ScheduleRules.timezone), got {value.isoformat()}"
                )
        if self.end <= self.start:
            raise ValueError(
                f"SendWindow end {self.end.isoformat()} must be after start "
                f"{self.start.isoformat()} (windows crossing midnight are not supported)"
            )

    @classmethod
    def from_minutes(cls, start_minute: int, end_minute: int) -> SendWindow:
        """Build from HubSpot's ``sendWindowStartMinute`` / ``sendWindowEndMinute``.

        Minutes are counted from local midnight; ``end_minute=1440`` means "until
        the end of the day" and maps to ``time.max``.
        """
        for label, minute in (("start_minute", start_minute), ("end_minute", end_minute)):
            if isinstance(minute, bool) or not isinstance(minute, int) or not 0 <= minute <= 1440:
                raise ValueError(f"{label} must be an integer from 0 to 1440, got {minute!r}")
        if start_minute == 1440:
            raise ValueError("start_minute 1440 leaves an empty window")
        end = time.max if end_minute == 1440 else time(end_minute // 60, end_minute % 60)
        return cls(time(start_minute // 60, start_minute % 60), end)

    def contains(self, wall: time) -> bool:
        """Whether the local wall-clock time ``wall`` is inside the window."""
        return self.start <= wall < self.end


@dataclass(frozen=True)
class ScheduleRules:
    """Where and when steps may run.

    ``holiday_country`` (ISO 3166-1 alpha-2, any case) and ``holiday_subdivision``
    (e.g. ``"BY"`` for Bavaria, ``"SCT"`` for Scotland) are only consulted with
    ``EligibleDays.BUSINESS_DAYS``; they are validated in every case so a typo
    is caught when the rules are built, not when a holiday is missed.
    """

    timezone: str
    eligible_days: EligibleDays = EligibleDays.WEEKDAYS
    window: SendWindow | None = None
    holiday_country: str | None = None
    holiday_subdivision: str | None = None

    def __post_init__(self) -> None:
        _zone(self.timezone)  # validates

        try:
            eligible = EligibleDays(self.eligible_days)
        except ValueError:
            choices = ", ".join(repr(e.value) for e in EligibleDays)
            raise ValueError(
                f"unknown eligible_days {self.eligible_days!r}; expected one of {choices}"
            ) from None
        object.__setattr__(self, "eligible_days", eligible)

        if self.window is not None and not isinstance(self.window, SendWindow):
            raise TypeError(f"window must be a SendWindow or None, got {type(self.window).__name__}")

        if self.holiday_country is None:
            if self.holiday_subdivision is not None:
                raise ValueError(
                    f"holiday_subdivision {self.holiday_subdivision!r} given without holiday_country"
                )
        else:
            country, subdivision = _normalize_country(self.holiday_country, self.holiday_subdivision)
            object.__setattr__(self, "holiday_country", country)
            object.__setattr__(self, "holiday_subdivision", subdivision)

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.timezone)

    @property
    def skips_holidays(self) -> bool:
        return self.eligible_days is EligibleDays.BUSINESS_DAYS and self.holiday_country is not None


@dataclass(frozen=True)
class Delay:
    """Time between the previous step (or enrollment) and this step.

    ``days`` are local calendar days (wall-clock time kept across DST);
    ``hours``/``minutes``/``seconds`` are exact elapsed time.
    """

    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    def __post_init__(self) -> None:
        for field_name in ("days", "hours", "minutes", "seconds"):
            value = getattr(self, field_name)
            # bool is an int subclass; Delay(days=True) is almost certainly a bug.
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Delay.{field_name} must be an int, got {value!r}")
            if value < 0:
                raise ValueError(f"Delay.{field_name} must not be negative, got {value}")

    @property
    def is_zero(self) -> bool:
        return not (self.days or self.hours or self.minutes or self.seconds)

    @property
    def elapsed(self) -> timedelta:
        """The hours/minutes/seconds part (the days part is calendar-based)."""
        return timedelta(hours=self.hours, minutes=self.minutes, seconds=self.seconds)


# --------------------------------------------------------------------------- API


def schedule_step(
    previous: datetime,
    delay: Delay,
    rules: ScheduleRules,
    *,
    immediate_first: bool = False,
) -> datetime:
    """The UTC moment at which a step should run.

    ``previous`` is the *scheduled* moment of the previous step, or the
    enrollment moment for the first step. Pass the scheduled moment rather than
    the actual send time so that queueing delays do not accumulate.

    ``delay.days`` are added on the local calendar of ``rules.timezone`` keeping
    the local time of day; ``hours``/``minutes``/``seconds`` are then added as
    elapsed time; the result goes through :func:`next_allowed`.

    With ``immediate_first=True`` and a zero delay, ``previous`` is returned as
    is (as UTC): HubSpot sends a first "immediate" email at once, even on a
    weekend or outside the window. With a non-zero delay the flag has no effect.
    """
    _require_aware(previous, "previous")
    if not isinstance(delay, Delay):
        raise TypeError(f"delay must be a Delay, got {type(delay).__name__}")

    moment = previous.astimezone(UTC)
    if immediate_first and delay.is_zero:
        return moment

    if delay.days:
        # Only re-read the wall clock when days are added: re-localizing a moment
        # in the fall-back overlap would otherwise snap it to the first occurrence.
        local = previous.astimezone(rules.tz)
        moment = _resolve_local(local.date() + timedelta(days=delay.days), local.time(), rules.tz)
    moment += delay.elapsed
    return next_allowed(moment, rules)


def next_allowed(candidate: datetime, rules: ScheduleRules) -> datetime:
    """The first allowed moment at or after ``candidate`` under HubSpot's rules (UTC).

    * Ineligible local date: move to the next eligible date, same local time (the window
      start there if the time is outside the window).
    * Before the window start: that day's window start.
    * At or after the window end: the next eligible day's window start.

    Repeated until nothing moves. Returns ``candidate`` (in UTC) when it is
    already allowed, so ``next_allowed(t) == t`` exactly when ``is_allowed(t)``.
    Raises ``ValueError`` if no eligible day exists within ``MAX_SEARCH_DAYS``.
    """
    _require_aware(candidate, "candidate")
    tz = rules.tz
    window = rules.window
    current = candidate.astimezone(UTC)

    for _ in range(_MAX_ADJUSTMENTS):
        local = current.astimezone(tz)
        day, wall = local.date(), local.time()
        if not is_eligible_day(day, rules):
            # Outside the window too: open the next eligible day's window rather than keep a
            # wall time the window would push one more day (Sat 22:15 -> Mon 09:00, not Tue).
            keep = wall if window is None or window.contains(wall) else window.start
            current = _resolve_local(_next_eligible_day(day, rules), keep, tz)
            continue
        if window is not None:
            if wall < window.start:
                current = _resolve_local(day, window.start, tz, not_before=current)
                continue
            if wall >= window.end:
                current = _resolve_local(_next_eligible_day(day, rules), window.start, tz)
                continue
        return current

    raise ValueError(  # pragma: no cover - would mean a bug in the loop above
        f"could not find an allowed moment after {candidate.isoformat()} for {rules!r}"
    )


def is_allowed(moment: datetime, rules: ScheduleRules) -> bool:
    """Whether a step may run at ``moment``: eligible local day and inside the window.

    Use when a timer fires (possibly late): if this is ``False`` for "now",
    sleep until ``next_allowed(now, rules)``.
    """
    _require_aware(moment, "moment")
    local = moment.astimezone(rules.tz)
    if not is_eligible_day(local.date(), rules):
        return False
    return rules.window is None or rules.window.contains(local.time())


def is_eligible_day(day: date, rules: ScheduleRules) -> bool:
    """Whether steps may run on the local calendar date ``day``."""
    _require_date(day)
    if rules.eligible_days is EligibleDays.EVERY_DAY:
        return True
    if day.weekday() in _WEEKEND:
        return False
    return holiday_name(day, rules) is None


def holiday_name(day: date, rules: ScheduleRules) -> str | None:
    """The name of the public holiday that makes ``rules`` skip ``day``, if any.

    ``None`` unless the rules skip holidays (``BUSINESS_DAYS`` with a
    ``holiday_country``). Observed days count (e.g. "Independence Day
    (observed)"); several holidays on one date are joined with "; ". Names are
    in US English where the ``holidays`` package has that translation.
    """
    _require_date(day)
    if not rules.skips_holidays:
        return None
    assert rules.holiday_country is not None
    return _holiday_on(day, rules.holiday_country, rules.holiday_subdivision)


def validate_country(country: str, subdivision: str | None = None) -> None:
    """Raise ``ValueError`` unless ``country`` (and ``subdivision``) have a holiday calendar."""
    _normalize_country(country, subdivision)


# ---------------------------------------------------------------------- helpers


def _require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware, got naive {value.isoformat()}; "
            "attach a zone, e.g. datetime(..., tzinfo=timezone.utc)"
        )


def _require_date(day: date) -> None:
    # A datetime is a date subclass, but which zone's date it means is ambiguous.
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(
            f"expected a datetime.date (the local calendar date), got {type(day).__name__}; "
            "use moment.astimezone(rules.tz).date()"
        )


def _zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"timezone must be an IANA time zone name such as 'America/New_York', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}: expected an IANA name such as 'America/New_York' or 'Europe/Berlin'"
        ) from None


def _resolve_local(day: date, wall: time, tz: ZoneInfo, *, not_before: datetime | None = None) -> datetime:
    """The UTC moment of local ``day`` at ``wall`` in ``tz``.

    fold=0 gives the documented DST behaviour: a time in a gap is read with the
    offset in force before the gap (so it lands gap-length later), and an
    ambiguous time resolves to its first occurrence. If that first occurrence is
    before ``not_before``, the second occurrence is tried.
    """
    naive = datetime.combine(day, wall.replace(tzinfo=None, fold=0))
    result = naive.replace(tzinfo=tz).astimezone(UTC)
    if not_before is not None and result < not_before:
        second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
        if second >= not_before:
            result = second
    return result


def _next_eligible_day(day: date, rules: ScheduleRules) -> date:
    for offset in range(1, MAX_SEARCH_DAYS + 1):
        candidate = day + timedelta(days=offset)
        if is_eligible_day(candidate, rules):
            return candidate
    raise ValueError(
        f"no eligible day within {MAX_SEARCH_DAYS} days after {day.isoformat()} "
        f"(eligible_days={rules.eligible_days.value}, holiday_country={rules.holiday_country!r})"
    )


@functools.lru_cache(maxsize=1)
def _supported_countries() -> dict[str, list[str]]:
    return holidays.list_supported_countries()


def _normalize_country(country: str, subdivision: str | None) -> tuple[str, str | None]:
    """Canonical (country, subdivision) for the ``holidays`` package, or ``ValueError``."""
    if not isinstance(country, str) or not country.strip():
        raise ValueError(f"holiday country must be an ISO 3166-1 alpha-2 code such as 'US', got {country!r}")
    code = country.strip().upper()
    supported = _supported_countries()
    if code not in supported:
        raise ValueError(
            f"unknown holiday country {country!r}: expected an ISO 3166-1 alpha-2 code "
            f"supported by the 'holidays' package, e.g. 'US', 'DE', 'GB'"
        )
    if subdivision is None:
        return code, None
    if not isinstance(subdivision, str) or not subdivision.strip():
        raise ValueError(f"holiday subdivision must be a non-empty code, got {subdivision!r}")

    known = supported[code]
    wanted = subdivision.strip()
    by_upper = {s.upper(): s for s in known}
    candidate = by_upper.get(wanted.upper(), wanted)
    try:
        _calendar(code, candidate)
    except NotImplementedError:
        listing = ", ".join(known) if known else "none"
        raise ValueError(
            f"unknown holiday subdivision {subdivision!r} for country {code}; supported: {listing}"
        ) from None
    return code, candidate


@functools.lru_cache(maxsize=128)
def _calendar(country: str, subdivision: str | None) -> holidays.HolidayBase:
    probe = holidays.country_holidays(country, subdiv=subdivision)
    # Pin the language: otherwise names may follow the process locale.
    if "en_US" in (probe.supported_languages or ()):
        return holidays.country_holidays(country, subdiv=subdivision, language="en_US")
    return probe


# HolidayBase fills in a year lazily on first lookup (expand=True) by mutating
# itself; activities may run in threads, so lookups on shared calendars are
# serialized.
_calendar_lock = threading.Lock()


def _holiday_on(day: date, country: str, subdivision: str | None) -> str | None:
    calendar = _calendar(country, subdivision)
    with _calendar_lock:
        name = calendar.get(day)
    return name or None
