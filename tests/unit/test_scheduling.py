"""Behaviour of nurture.scheduling: HubSpot's sequence timing rules plus holidays and DST."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from nurture import scheduling
from nurture.scheduling import (
    Delay,
    EligibleDays,
    ScheduleRules,
    SendWindow,
    holiday_name,
    is_allowed,
    is_eligible_day,
    next_allowed,
    schedule_step,
    validate_country,
)

NY = "America/New_York"
LA = "America/Los_Angeles"
TOKYO = "Asia/Tokyo"
BERLIN = "Europe/Berlin"
LONDON = "Europe/London"

NINE_TO_FIVE = SendWindow(time(9), time(17))
ONE_DAY = Delay(days=1)


def local(tz: str, *args: int, fold: int = 0) -> datetime:
    """An aware datetime on the wall clock of ``tz``."""
    return datetime(*args, tzinfo=ZoneInfo(tz), fold=fold)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


def wall(moment: datetime, tz: str) -> tuple[date, time, timedelta | None]:
    """(local date, local time, UTC offset) of ``moment`` in ``tz``."""
    loc = moment.astimezone(ZoneInfo(tz))
    return loc.date(), loc.time(), loc.utcoffset()


def assert_utc(moment: datetime) -> None:
    assert moment.tzinfo is timezone.utc


# ------------------------------------------------------------- eligible days


class TestWeekdays:
    rules = ScheduleRules(NY)  # WEEKDAYS is the default

    def test_default_is_weekdays(self) -> None:
        assert self.rules.eligible_days is EligibleDays.WEEKDAYS

    def test_friday_plus_one_day_is_monday_same_time(self) -> None:
        result = schedule_step(local(NY, 2026, 1, 9, 10, 15), ONE_DAY, self.rules)
        assert result == local(NY, 2026, 1, 12, 10, 15)
        assert_utc(result)

    def test_thursday_plus_one_day_is_friday(self) -> None:
        result = schedule_step(local(NY, 2026, 1, 8, 10, 15), ONE_DAY, self.rules)
        assert result == local(NY, 2026, 1, 9, 10, 15)

    def test_multi_day_delay_landing_on_sunday_moves_to_monday(self) -> None:
        # Wed + 4 days = Sun -> Mon; the delay counts calendar days, not weekdays.
        result = schedule_step(local(NY, 2026, 1, 7, 11), Delay(days=4), self.rules)
        assert result == local(NY, 2026, 1, 12, 11)

    def test_saturday_enrollment_first_step_waits_for_monday(self) -> None:
        result = schedule_step(local(NY, 2026, 1, 10, 14, 0), Delay(), self.rules)
        assert result == local(NY, 2026, 1, 12, 14, 0)

    def test_sunday_enrollment_plus_one_day_is_monday(self) -> None:
        result = schedule_step(local(NY, 2026, 1, 11, 8, 30), ONE_DAY, self.rules)
        assert result == local(NY, 2026, 1, 12, 8, 30)

    def test_holidays_are_ignored(self) -> None:
        # Thanksgiving is a normal weekday for WEEKDAYS, even with a country set.
        rules = ScheduleRules(NY, EligibleDays.WEEKDAYS, holiday_country="US")
        result = schedule_step(local(NY, 2026, 11, 25, 10), ONE_DAY, rules)
        assert result == local(NY, 2026, 11, 26, 10)
        assert holiday_name(date(2026, 11, 26), rules) is None

    def test_is_eligible_day(self) -> None:
        assert is_eligible_day(date(2026, 1, 9), self.rules)  # Friday
        assert not is_eligible_day(date(2026, 1, 10), self.rules)  # Saturday
        assert not is_eligible_day(date(2026, 1, 11), self.rules)  # Sunday
        assert is_eligible_day(date(2026, 1, 12), self.rules)  # Monday


class TestEveryDay:
    rules = ScheduleRules(NY, EligibleDays.EVERY_DAY)

    def test_friday_plus_one_day_is_saturday(self) -> None:
        result = schedule_step(local(NY, 2026, 1, 9, 10), ONE_DAY, self.rules)
        assert result == local(NY, 2026, 1, 10, 10)

    def test_weekend_is_allowed(self) -> None:
        moment = local(NY, 2026, 1, 11, 3, 0)
        assert is_allowed(moment, self.rules)
        assert next_allowed(moment, self.rules) == moment

    def test_window_still_applies(self) -> None:
        rules = ScheduleRules(NY, EligibleDays.EVERY_DAY, NINE_TO_FIVE)
        result = next_allowed(local(NY, 2026, 1, 9, 18), rules)
        assert result == local(NY, 2026, 1, 10, 9)  # Saturday 09:00


class TestEligibleDaysParsing:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("business_days", EligibleDays.BUSINESS_DAYS),
            ("BUSINESS_DAYS", EligibleDays.BUSINESS_DAYS),
            ("WEEKDAYS_ONLY", EligibleDays.WEEKDAYS),
            ("EVERYDAY", EligibleDays.EVERY_DAY),
            ("every_day", EligibleDays.EVERY_DAY),
        ],
    )
    def test_hubspot_and_own_spellings(self, raw: str, expected: EligibleDays) -> None:
        assert EligibleDays(raw) is expected
        assert ScheduleRules(NY, raw).eligible_days is expected  # type: ignore[arg-type]

    def test_unknown_value_lists_choices(self) -> None:
        with pytest.raises(ValueError, match="unknown eligible_days 'sometimes'.*weekdays"):
            ScheduleRules(NY, "sometimes")  # type: ignore[arg-type]


# ------------------------------------------------------------------ holidays


class TestBusinessDaysUS:
    rules = ScheduleRules(NY, EligibleDays.BUSINESS_DAYS, holiday_country="US")

    def test_thanksgiving_is_skipped(self) -> None:
        result = schedule_step(local(NY, 2026, 11, 25, 10), ONE_DAY, self.rules)
        assert result == local(NY, 2026, 11, 27, 10)
        assert holiday_name(date(2026, 11, 26), self.rules) == "Thanksgiving Day"

    def test_observed_independence_day_is_skipped(self) -> None:
        # July 4 2026 is a Saturday; Friday July 3 is the observed holiday.
        result = schedule_step(local(NY, 2026, 7, 2, 9, 30), ONE_DAY, self.rules)
        assert result == local(NY, 2026, 7, 6, 9, 30)
        name = holiday_name(date(2026, 7, 3), self.rules)
        assert name is not None and "Independence Day" in name and "observed" in name

    def test_new_year_across_the_year_boundary(self) -> None:
        # Thu Dec 31 + 1 day = Fri Jan 1 2027 (holiday) -> Mon Jan 4.
        result = schedule_step(local(NY, 2026, 12, 31, 9), ONE_DAY, self.rules)
        assert result == local(NY, 2027, 1, 4, 9)

    def test_calendar_extends_to_any_year(self) -> None:
        assert holiday_name(date(2040, 11, 22), self.rules) == "Thanksgiving Day"
        assert not is_eligible_day(date(2040, 11, 22), self.rules)
        assert is_eligible_day(date(2040, 11, 21), self.rules)

    def test_ordinary_weekday_is_not_a_holiday(self) -> None:
        assert holiday_name(date(2026, 11, 24), self.rules) is None
        assert is_eligible_day(date(2026, 11, 24), self.rules)

    def test_weekend_still_skipped(self) -> None:
        assert not is_eligible_day(date(2026, 11, 28), self.rules)

    def test_holiday_with_window_moves_to_window_start(self) -> None:
        rules = ScheduleRules(NY, EligibleDays.BUSINESS_DAYS, NINE_TO_FIVE, holiday_country="US")
        # Wed 18:00 is after the window; Thursday is Thanksgiving -> Friday 09:00.
        result = next_allowed(local(NY, 2026, 11, 25, 18), rules)
        assert result == local(NY, 2026, 11, 27, 9)

    def test_business_days_without_country_is_weekdays(self) -> None:
        rules = ScheduleRules(NY, EligibleDays.BUSINESS_DAYS)
        assert is_eligible_day(date(2026, 11, 26), rules)
        assert holiday_name(date(2026, 11, 26), rules) is None

    def test_holiday_date_follows_the_local_calendar(self) -> None:
        # 2026-11-27 03:00 UTC is still Thanksgiving evening in New York.
        moment = utc(2026, 11, 27, 3, 0)
        assert not is_allowed(moment, self.rules)
        assert next_allowed(moment, self.rules) == local(NY, 2026, 11, 27, 22, 0)


class TestBusinessDaysOtherCountries:
    def test_germany_subdivision_matters(self) -> None:
        # Epiphany (Tue 2026-01-06) is a holiday in Bavaria but not in Berlin.
        bavaria = ScheduleRules(BERLIN, EligibleDays.BUSINESS_DAYS, holiday_country="DE", holiday_subdivision="BY")
        berlin = ScheduleRules(BERLIN, EligibleDays.BUSINESS_DAYS, holiday_country="DE", holiday_subdivision="BE")
        start = local(BERLIN, 2026, 1, 5, 10)
        assert schedule_step(start, ONE_DAY, bavaria) == local(BERLIN, 2026, 1, 7, 10)
        assert schedule_step(start, ONE_DAY, berlin) == local(BERLIN, 2026, 1, 6, 10)
        assert holiday_name(date(2026, 1, 6), bavaria) == "Epiphany"
        assert holiday_name(date(2026, 1, 6), berlin) is None

    def test_germany_national_holiday_without_subdivision(self) -> None:
        rules = ScheduleRules(BERLIN, EligibleDays.BUSINESS_DAYS, holiday_country="DE")
        # Good Friday 2026-04-03 and Easter Monday 2026-04-06 are national holidays.
        result = schedule_step(local(BERLIN, 2026, 4, 2, 9), ONE_DAY, rules)
        assert result == local(BERLIN, 2026, 4, 7, 9)

    def test_scotland_vs_england(self) -> None:
        # St Andrew's Day (Mon 2026-11-30) is a bank holiday in Scotland only.
        scotland = ScheduleRules(LONDON, EligibleDays.BUSINESS_DAYS, holiday_country="GB", holiday_subdivision="SCT")
        england = ScheduleRules(LONDON, EligibleDays.BUSINESS_DAYS, holiday_country="GB", holiday_subdivision="ENG")
        friday = local(LONDON, 2026, 11, 27, 9)
        assert schedule_step(friday, ONE_DAY, scotland) == local(LONDON, 2026, 12, 1, 9)
        assert schedule_step(friday, ONE_DAY, england) == local(LONDON, 2026, 11, 30, 9)
        assert holiday_name(date(2026, 11, 30), scotland) == "Saint Andrew's Day"

    def test_codes_are_case_insensitive(self) -> None:
        rules = ScheduleRules(BERLIN, EligibleDays.BUSINESS_DAYS, holiday_country="de", holiday_subdivision="by")
        assert (rules.holiday_country, rules.holiday_subdivision) == ("DE", "BY")
        assert not is_eligible_day(date(2026, 1, 6), rules)

    def test_no_eligible_day_in_a_year_raises(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # A calendar where every day is a holiday must not loop forever.
        monkeypatch.setattr(scheduling, "_holiday_on", lambda *_: "Holiday")
        rules = ScheduleRules(NY, EligibleDays.BUSINESS_DAYS, holiday_country="US")
        with pytest.raises(ValueError, match="no eligible day within 366 days"):
            next_allowed(local(NY, 2026, 1, 5, 9), rules)


# -------------------------------------------------------------- send window


class TestSendWindow:
    rules = ScheduleRules(NY, EligibleDays.WEEKDAYS, NINE_TO_FIVE)

    def test_before_start_moves_to_start_same_day(self) -> None:
        assert next_allowed(local(NY, 2026, 1, 7, 6, 45), self.rules) == local(NY, 2026, 1, 7, 9)

    def test_inside_window_unchanged(self) -> None:
        moment = local(NY, 2026, 1, 7, 12, 34, 56)
        assert next_allowed(moment, self.rules) == moment

    def test_exactly_at_start_is_allowed(self) -> None:
        moment = local(NY, 2026, 1, 7, 9)
        assert is_allowed(moment, self.rules)
        assert next_allowed(moment, self.rules) == moment

    def test_after_end_moves_to_next_day_start(self) -> None:
        assert next_allowed(local(NY, 2026, 1, 7, 19, 5), self.rules) == local(NY, 2026, 1, 8, 9)

    def test_exactly_at_end_is_excluded(self) -> None:
        moment = local(NY, 2026, 1, 7, 17, 0)
        assert not is_allowed(moment, self.rules)
        assert next_allowed(moment, self.rules) == local(NY, 2026, 1, 8, 9)

    def test_just_before_end_is_allowed(self) -> None:
        moment = local(NY, 2026, 1, 7, 16, 59, 59)
        assert is_allowed(moment, self.rules)

    def test_friday_after_end_moves_to_monday_start(self) -> None:
        assert next_allowed(local(NY, 2026, 1, 9, 17, 30), self.rules) == local(NY, 2026, 1, 12, 9)

    def test_weekend_moves_to_monday_then_window_clamps(self) -> None:
        # Saturday 07:00, outside the window -> Monday's window start.
        assert next_allowed(local(NY, 2026, 1, 10, 7), self.rules) == local(NY, 2026, 1, 12, 9)
        # Saturday 20:00 -> Monday 09:00, not Tuesday: the window opens on the next eligible day.
        assert next_allowed(local(NY, 2026, 1, 10, 20), self.rules) == local(NY, 2026, 1, 12, 9)
        # Saturday 11:00, inside the window -> Monday 11:00 (same time).
        assert next_allowed(local(NY, 2026, 1, 10, 11), self.rules) == local(NY, 2026, 1, 12, 11)

    def test_step_delay_then_window(self) -> None:
        # Enrolled Thursday 20:00; +1 day = Friday 20:00, after the window -> Monday 09:00.
        result = schedule_step(local(NY, 2026, 1, 8, 20), ONE_DAY, self.rules)
        assert result == local(NY, 2026, 1, 12, 9)

    def test_from_minutes(self) -> None:
        assert SendWindow.from_minutes(540, 1020) == NINE_TO_FIVE
        whole_day = SendWindow.from_minutes(0, 1440)
        assert whole_day.contains(time(0)) and whole_day.contains(time(23, 59, 59))

    @pytest.mark.parametrize(("start", "end"), [(time(17), time(9)), (time(9), time(9))])
    def test_end_must_be_after_start(self, start: time, end: time) -> None:
        with pytest.raises(ValueError, match="must be after start"):
            SendWindow(start, end)

    def test_window_times_must_be_naive(self) -> None:
        with pytest.raises(ValueError, match="wall-clock"):
            SendWindow(time(9, tzinfo=timezone.utc), time(17))

    @pytest.mark.parametrize(("start", "end"), [(-1, 60), (0, 1441), (600, 600)])
    def test_from_minutes_rejects_bad_values(self, start: int, end: int) -> None:
        with pytest.raises(ValueError):
            SendWindow.from_minutes(start, end)


# --------------------------------------------------------------- time zones


class TestTimeZones:
    def test_local_date_not_utc_date_decides_the_weekend(self) -> None:
        # Friday 23:30 UTC is Saturday morning in Tokyo but Friday afternoon in LA.
        moment = utc(2026, 3, 6, 23, 30)
        tokyo = ScheduleRules(TOKYO)
        los_angeles = ScheduleRules(LA)
        assert not is_allowed(moment, tokyo)
        assert next_allowed(moment, tokyo) == local(TOKYO, 2026, 3, 9, 8, 30)
        assert next_allowed(moment, tokyo) == utc(2026, 3, 8, 23, 30)  # a Sunday in UTC
        assert is_allowed(moment, los_angeles)
        assert next_allowed(moment, los_angeles) == moment

    def test_saturday_in_utc_can_be_friday_in_los_angeles(self) -> None:
        moment = utc(2026, 1, 10, 2, 0)  # Saturday in UTC, Friday 18:00 PST
        assert is_allowed(moment, ScheduleRules(LA))
        assert not is_allowed(moment, ScheduleRules(TOKYO))  # Saturday 11:00 JST

    def test_monday_morning_in_tokyo_is_sunday_in_utc(self) -> None:
        rules = ScheduleRules(TOKYO, EligibleDays.WEEKDAYS, NINE_TO_FIVE)
        result = schedule_step(local(TOKYO, 2026, 1, 9, 9, 30), ONE_DAY, rules)
        assert result == utc(2026, 1, 12, 0, 30)
        late = schedule_step(local(TOKYO, 2026, 1, 9, 8, 0), ONE_DAY, rules)
        # Friday 08:00 + 1 day -> Monday 08:00 -> window -> Monday 09:00 JST = Monday 00:00 UTC.
        assert late == utc(2026, 1, 12, 0, 0)

    def test_window_is_in_the_rules_time_zone_not_the_input_zone(self) -> None:
        rules = ScheduleRules(LA, EligibleDays.WEEKDAYS, NINE_TO_FIVE)
        # 14:00 in New York is 11:00 in Los Angeles: inside the LA window.
        assert is_allowed(local(NY, 2026, 1, 7, 14), rules)
        # 10:00 in New York is 07:00 in LA -> 09:00 PST.
        assert next_allowed(local(NY, 2026, 1, 7, 10), rules) == local(LA, 2026, 1, 7, 9)

    def test_day_delay_uses_the_rules_zone_calendar(self) -> None:
        # The same instant, Friday 20:00 in LA, is Saturday 04:00 UTC.
        previous = local(LA, 2026, 1, 9, 20)
        assert schedule_step(previous, ONE_DAY, ScheduleRules(LA, EligibleDays.EVERY_DAY)) == local(LA, 2026, 1, 10, 20)
        # In UTC rules the same instant + 1 day is Sunday 04:00 UTC -> Monday 04:00 UTC.
        assert schedule_step(previous, ONE_DAY, ScheduleRules("UTC")) == utc(2026, 1, 12, 4)

    def test_output_is_utc_whatever_the_input_zone(self) -> None:
        result = schedule_step(local(TOKYO, 2026, 1, 7, 10), ONE_DAY, ScheduleRules(BERLIN))
        assert_utc(result)
        assert_utc(next_allowed(local(TOKYO, 2026, 1, 7, 10), ScheduleRules(BERLIN)))


# ------------------------------------------------------------------------ DST


class TestDaylightSavingUS:
    every_day = ScheduleRules(NY, EligibleDays.EVERY_DAY)

    def test_spring_forward_one_day_keeps_wall_time(self) -> None:
        previous = local(NY, 2026, 3, 7, 9)  # EST
        result = schedule_step(previous, ONE_DAY, self.every_day)
        assert wall(result, NY) == (date(2026, 3, 8), time(9), timedelta(hours=-4))
        assert result - previous == timedelta(hours=23)

    def test_fall_back_one_day_keeps_wall_time(self) -> None:
        previous = local(NY, 2026, 10, 31, 9)  # EDT
        result = schedule_step(previous, ONE_DAY, self.every_day)
        assert wall(result, NY) == (date(2026, 11, 1), time(9), timedelta(hours=-5))
        assert result - previous == timedelta(hours=25)

    def test_weekend_move_across_spring_forward_keeps_wall_time(self) -> None:
        # Fri 09:00 EST + 1 day = Sat -> Mon 09:00 EDT (DST started on the Sunday).
        result = schedule_step(local(NY, 2026, 3, 6, 9), ONE_DAY, ScheduleRules(NY))
        assert wall(result, NY) == (date(2026, 3, 9), time(9), timedelta(hours=-4))

    def test_hours_delay_is_exact_elapsed_time(self) -> None:
        previous = local(NY, 2026, 3, 7, 20)  # EST, 01:00 UTC on the 8th
        result = schedule_step(previous, Delay(hours=12), self.every_day)
        assert result - previous == timedelta(hours=12)
        assert wall(result, NY) == (date(2026, 3, 8), time(9), timedelta(hours=-4))

    def test_hours_delay_across_fall_back(self) -> None:
        previous = local(NY, 2026, 10, 31, 20)  # EDT
        result = schedule_step(previous, Delay(hours=12), self.every_day)
        assert result - previous == timedelta(hours=12)
        assert wall(result, NY)[1] == time(7)

    def test_days_then_hours(self) -> None:
        result = schedule_step(local(NY, 2026, 3, 7, 9), Delay(days=1, hours=2, minutes=30), self.every_day)
        assert wall(result, NY) == (date(2026, 3, 8), time(11, 30), timedelta(hours=-4))

    def test_nonexistent_time_shifts_forward_by_the_gap(self) -> None:
        # 02:30 does not exist on 2026-03-08 in New York -> 03:30 EDT.
        result = schedule_step(local(NY, 2026, 3, 7, 2, 30), ONE_DAY, self.every_day)
        assert wall(result, NY) == (date(2026, 3, 8), time(3, 30), timedelta(hours=-4))
        assert result == utc(2026, 3, 8, 7, 30)

    def test_window_start_inside_the_gap(self) -> None:
        rules = ScheduleRules(NY, EligibleDays.EVERY_DAY, SendWindow(time(2, 30), time(5)))
        result = next_allowed(local(NY, 2026, 3, 8, 1, 0), rules)
        assert wall(result, NY) == (date(2026, 3, 8), time(3, 30), timedelta(hours=-4))
        # The next day the window opens at 02:30 as usual.
        assert next_allowed(local(NY, 2026, 3, 9, 1, 0), rules) == local(NY, 2026, 3, 9, 2, 30)

    def test_window_entirely_inside_the_gap_moves_to_next_day(self) -> None:
        rules = ScheduleRules(NY, EligibleDays.EVERY_DAY, SendWindow(time(2), time(3)))
        result = next_allowed(local(NY, 2026, 3, 8, 1, 0), rules)
        assert wall(result, NY) == (date(2026, 3, 9), time(2), timedelta(hours=-4))

    def test_ambiguous_time_uses_first_occurrence(self) -> None:
        # 01:30 happens twice on 2026-11-01; the first (EDT) is used.
        result = schedule_step(local(NY, 2026, 10, 31, 1, 30), ONE_DAY, self.every_day)
        assert wall(result, NY) == (date(2026, 11, 1), time(1, 30), timedelta(hours=-4))
        assert result == utc(2026, 11, 1, 5, 30)

    def test_second_occurrence_is_not_snapped_back_without_a_day_delay(self) -> None:
        second = local(NY, 2026, 11, 1, 1, 30, fold=1)  # 01:30 EST = 06:30 UTC
        assert schedule_step(second, Delay(), self.every_day) == utc(2026, 11, 1, 6, 30)
        assert schedule_step(second, Delay(minutes=10), self.every_day) == utc(2026, 11, 1, 6, 40)

    def test_window_start_in_the_overlap_never_goes_back_in_time(self) -> None:
        rules = ScheduleRules(NY, EligibleDays.EVERY_DAY, SendWindow(time(1, 45), time(3)))
        second = local(NY, 2026, 11, 1, 1, 30, fold=1)  # 06:30 UTC, before 01:45 wall time
        result = next_allowed(second, rules)
        assert result >= second
        assert result == utc(2026, 11, 1, 6, 45)  # 01:45 EST, the second occurrence

    def test_window_start_in_the_overlap_from_before(self) -> None:
        rules = ScheduleRules(NY, EligibleDays.EVERY_DAY, SendWindow(time(1, 45), time(3)))
        assert next_allowed(local(NY, 2026, 11, 1, 0, 30), rules) == utc(2026, 11, 1, 5, 45)  # 01:45 EDT


class TestDaylightSavingBerlin:
    every_day = ScheduleRules(BERLIN, EligibleDays.EVERY_DAY)

    def test_spring_forward_one_day_keeps_wall_time(self) -> None:
        previous = local(BERLIN, 2026, 3, 28, 9)  # CET
        result = schedule_step(previous, ONE_DAY, self.every_day)
        assert wall(result, BERLIN) == (date(2026, 3, 29), time(9), timedelta(hours=2))
        assert result - previous == timedelta(hours=23)

    def test_fall_back_one_day_keeps_wall_time(self) -> None:
        previous = local(BERLIN, 2026, 10, 24, 9)  # CEST
        result = schedule_step(previous, ONE_DAY, self.every_day)
        assert wall(result, BERLIN) == (date(2026, 10, 25), time(9), timedelta(hours=1))
        assert result - previous == timedelta(hours=25)

    def test_nonexistent_time_shifts_forward_by_the_gap(self) -> None:
        result = schedule_step(local(BERLIN, 2026, 3, 28, 2, 30), ONE_DAY, self.every_day)
        assert wall(result, BERLIN) == (date(2026, 3, 29), time(3, 30), timedelta(hours=2))
        assert result == utc(2026, 3, 29, 1, 30)

    def test_window_start_inside_the_gap(self) -> None:
        rules = ScheduleRules(BERLIN, EligibleDays.EVERY_DAY, SendWindow(time(2), time(6)))
        result = next_allowed(local(BERLIN, 2026, 3, 29, 0, 30), rules)
        assert wall(result, BERLIN) == (date(2026, 3, 29), time(3), timedelta(hours=2))

    def test_ambiguous_time_uses_first_occurrence(self) -> None:
        result = schedule_step(local(BERLIN, 2026, 10, 24, 2, 30), ONE_DAY, self.every_day)
        assert wall(result, BERLIN) == (date(2026, 10, 25), time(2, 30), timedelta(hours=2))
        assert result == utc(2026, 10, 25, 0, 30)

    def test_hours_delay_is_exact_elapsed_time(self) -> None:
        previous = local(BERLIN, 2026, 10, 24, 20)  # CEST = 18:00 UTC
        result = schedule_step(previous, Delay(hours=12), self.every_day)
        assert result == utc(2026, 10, 25, 6)
        assert wall(result, BERLIN)[1] == time(7)  # 11 wall-clock hours later

    def test_minutes_and_seconds_delay(self) -> None:
        previous = local(BERLIN, 2026, 3, 29, 1, 59, 50)  # CET, 10 s before the jump
        result = schedule_step(previous, Delay(seconds=20), self.every_day)
        assert wall(result, BERLIN) == (date(2026, 3, 29), time(3, 0, 10), timedelta(hours=2))


# ------------------------------------------------------- immediate first step


class TestImmediateFirst:
    rules = ScheduleRules(NY, EligibleDays.WEEKDAYS, NINE_TO_FIVE)

    def test_sends_at_once_on_a_weekend_outside_the_window(self) -> None:
        enrolled = local(NY, 2026, 1, 10, 22, 15)  # Saturday night
        result = schedule_step(enrolled, Delay(), self.rules, immediate_first=True)
        assert result == enrolled
        assert_utc(result)

    def test_without_the_flag_a_zero_delay_still_obeys_the_rules(self) -> None:
        enrolled = local(NY, 2026, 1, 10, 10, 15)  # Saturday morning
        assert schedule_step(enrolled, Delay(), self.rules) == local(NY, 2026, 1, 12, 10, 15)
        # Saturday night, outside the window -> Monday's window start.
        late = local(NY, 2026, 1, 10, 22, 15)
        assert schedule_step(late, Delay(), self.rules) == local(NY, 2026, 1, 12, 9)

    def test_flag_has_no_effect_with_a_delay(self) -> None:
        enrolled = local(NY, 2026, 1, 10, 10)
        result = schedule_step(enrolled, Delay(minutes=5), self.rules, immediate_first=True)
        assert result == local(NY, 2026, 1, 12, 10, 5)


# ---------------------------------------------------------------- late timers


class TestLateTimers:
    rules = ScheduleRules(NY, EligibleDays.BUSINESS_DAYS, NINE_TO_FIVE, holiday_country="US")

    def test_timer_firing_in_time(self) -> None:
        assert is_allowed(local(NY, 2026, 1, 9, 16, 59), self.rules)

    def test_timer_firing_after_the_window_closed(self) -> None:
        scheduled = local(NY, 2026, 1, 9, 16, 59, 30)
        fired = scheduled + timedelta(seconds=40)  # Friday 17:00:10
        assert is_allowed(scheduled, self.rules)
        assert not is_allowed(fired, self.rules)
        assert next_allowed(fired, self.rules) == local(NY, 2026, 1, 12, 9)

    def test_timer_firing_into_a_holiday(self) -> None:
        fired = local(NY, 2026, 11, 26, 10)  # Thanksgiving
        assert not is_allowed(fired, self.rules)
        assert next_allowed(fired, self.rules) == local(NY, 2026, 11, 27, 10)


# --------------------------------------------------------------- invariants


@pytest.mark.parametrize(
    "rules",
    [
        ScheduleRules(NY),
        ScheduleRules(NY, EligibleDays.EVERY_DAY, SendWindow(time(2, 30), time(5))),
        ScheduleRules(BERLIN, EligibleDays.BUSINESS_DAYS, NINE_TO_FIVE, "DE", "BY"),
        ScheduleRules(TOKYO, EligibleDays.WEEKDAYS, SendWindow(time(8), time(8, 30))),
        ScheduleRules(LA, EligibleDays.BUSINESS_DAYS, SendWindow(time(1), time(2)), "US", "CA"),
    ],
    ids=["ny-weekdays", "ny-gap-window", "by-business", "tokyo-narrow", "la-overlap-window"],
)
def test_next_allowed_invariants(rules: ScheduleRules) -> None:
    rng = random.Random(20260308)
    start = utc(2026, 1, 1)
    for _ in range(400):
        candidate = start + timedelta(seconds=rng.randrange(0, 366 * 86400))
        result = next_allowed(candidate, rules)
        assert result >= candidate
        assert is_allowed(result, rules)
        assert next_allowed(result, rules) == result
        assert (result == candidate) == is_allowed(candidate, rules)


# ---------------------------------------------------------------- bad input


class TestErrors:
    def test_naive_datetimes_are_rejected(self) -> None:
        rules = ScheduleRules(NY)
        naive = datetime(2026, 1, 7, 9)
        with pytest.raises(ValueError, match="previous must be timezone-aware"):
            schedule_step(naive, ONE_DAY, rules)
        with pytest.raises(ValueError, match="candidate must be timezone-aware"):
            next_allowed(naive, rules)
        with pytest.raises(ValueError, match="moment must be timezone-aware"):
            is_allowed(naive, rules)

    @pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "America", "", "../etc/passwd", "EST+5"])
    def test_unknown_time_zone_is_named(self, name: str) -> None:
        with pytest.raises(ValueError, match="time zone|timezone") as excinfo:
            ScheduleRules(name)
        assert repr(name) in str(excinfo.value)

    def test_unknown_country(self) -> None:
        with pytest.raises(ValueError, match="unknown holiday country 'XX'"):
            validate_country("XX")
        with pytest.raises(ValueError, match="unknown holiday country 'XX'"):
            ScheduleRules(NY, EligibleDays.BUSINESS_DAYS, holiday_country="XX")

    def test_unknown_subdivision_lists_valid_ones(self) -> None:
        with pytest.raises(ValueError, match="unknown holiday subdivision 'ZZ' for country DE.*BY"):
            validate_country("DE", "ZZ")

    def test_valid_country_passes(self) -> None:
        validate_country("US")
        validate_country("gb", "sct")

    def test_subdivision_without_country(self) -> None:
        with pytest.raises(ValueError, match="without holiday_country"):
            ScheduleRules(NY, holiday_subdivision="CA")

    @pytest.mark.parametrize("kwargs", [{"days": -1}, {"hours": -2}, {"seconds": -1}])
    def test_negative_delay(self, kwargs: dict[str, int]) -> None:
        with pytest.raises(ValueError, match="must not be negative"):
            Delay(**kwargs)

    def test_non_integer_delay(self) -> None:
        with pytest.raises(TypeError):
            Delay(days=1.5)  # type: ignore[arg-type]

    def test_day_functions_want_a_date_not_a_datetime(self) -> None:
        with pytest.raises(TypeError, match="datetime.date"):
            is_eligible_day(local(NY, 2026, 1, 7, 9), ScheduleRules(NY))  # type: ignore[arg-type]

    def test_rules_are_hashable_and_comparable(self) -> None:
        # Rules are passed into activities and used as cache keys.
        a = ScheduleRules(NY, "weekdays", NINE_TO_FIVE)  # type: ignore[arg-type]
        b = ScheduleRules(NY, EligibleDays.WEEKDAYS, SendWindow(time(9), time(17)))
        assert a == b and hash(a) == hash(b)
