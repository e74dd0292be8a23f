"""Per-inbox send slots: the rolling 24-hour cap and the minimum spacing hold for concurrent
reservations (threads standing in for workers), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from nurture.store import Store

T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone.utc)
SPACING = dt.timedelta(seconds=30)


def _inbox(store: Store, cap: int = 500) -> str:
    user = store.upsert_user("rep@acme.test")
    store.upsert_inbox(user.id, email=user.email, provider="local", daily_cap=cap, min_spacing_seconds=30)
    return user.id


def test_spacing_and_idempotency(any_store: Store) -> None:
    uid = _inbox(any_store)
    a = any_store.reserve_send_slot(uid, "m1", T0, daily_cap=500, min_spacing=SPACING)
    b = any_store.reserve_send_slot(uid, "m2", T0, daily_cap=500, min_spacing=SPACING)
    again = any_store.reserve_send_slot(uid, "m1", T0 + dt.timedelta(hours=5), daily_cap=500, min_spacing=SPACING)
    assert (a, b, again) == (T0, T0 + SPACING, T0)
    # An earlier request fits in a gap only if it is 30 s from both neighbours.
    c = any_store.reserve_send_slot(uid, "m3", T0 - dt.timedelta(seconds=10), daily_cap=500, min_spacing=SPACING)
    assert c == T0 + 2 * SPACING


def test_daily_cap_rolls_over_24_hours(any_store: Store) -> None:
    uid = _inbox(any_store, cap=3)
    slots = [any_store.reserve_send_slot(uid, f"m{i}", T0, daily_cap=3, min_spacing=SPACING) for i in range(5)]
    assert slots[:3] == [T0, T0 + SPACING, T0 + 2 * SPACING]
    # The fourth waits until the first has left the rolling window, the fifth until the second.
    assert slots[3] > T0 + dt.timedelta(hours=24) and slots[3] - (T0 + dt.timedelta(hours=24)) < dt.timedelta(seconds=1)
    assert slots[4] > T0 + SPACING + dt.timedelta(hours=24)
    for s in slots:
        window = [x for x in slots if s - dt.timedelta(hours=24) < x <= s]
        assert len(window) <= 3


def test_allowed_moves_slots_into_the_window(any_store: Store) -> None:
    uid = _inbox(any_store)
    nine = dt.time(9, 0)

    def office_hours(t: dt.datetime) -> dt.datetime:
        if dt.time(9) <= t.time() < dt.time(9, 1):
            return t
        day = t.date() if t.time() < nine else t.date() + dt.timedelta(days=1)
        return dt.datetime.combine(day, nine, tzinfo=dt.timezone.utc)

    got = [any_store.reserve_send_slot(uid, f"m{i}", T0, daily_cap=500, min_spacing=SPACING, allowed=office_hours) for i in range(3)]
    # 09:00 and 09:00:30 fit the one-minute window; the third moves to the next day's window.
    assert got == [T0, T0 + SPACING, T0 + dt.timedelta(days=1)]


def test_concurrent_reservations_never_break_spacing(any_store: Store) -> None:
    uid = _inbox(any_store, cap=1000)
    with ThreadPoolExecutor(max_workers=8) as pool:
        slots = list(pool.map(
            lambda i: any_store.reserve_send_slot(uid, f"m{i}", T0, daily_cap=1000, min_spacing=SPACING), range(40)
        ))
    ordered = sorted(slots)
    assert len(set(slots)) == 40
    assert all(b - a >= SPACING for a, b in zip(ordered, ordered[1:]))


def test_forecast_says_when_the_last_send_goes(any_store: Store) -> None:
    from starters.send_forecast import forecast_sends

    uid = _inbox(any_store, cap=10)
    for i in range(4):
        any_store.reserve_send_slot(uid, f"m{i}", T0, daily_cap=10, min_spacing=SPACING)
    small = forecast_sends(any_store, uid, 6, now=T0)
    assert small is not None and not small.spills_over and small.queued == 10
    big = forecast_sends(any_store, uid, 26, now=T0)
    assert big is not None and big.spills_over
    # 30 sends at 10 per rolling day: the last goes on the third day.
    assert dt.timedelta(days=2) < big.last_send_at - T0 < dt.timedelta(days=3)
    assert "at most 10 emails per 24 hours" in big.message()


def test_claims_space_the_sends_that_really_went(any_store: Store) -> None:
    uid = _inbox(any_store, cap=3)
    a = any_store.reserve_send_slot(uid, "m1", T0, daily_cap=3, min_spacing=SPACING)
    b = any_store.reserve_send_slot(uid, "m2", T0, daily_cap=3, min_spacing=SPACING)
    # m1's timer fired 10 s late; m2's on time would be only 20 s after it.
    assert any_store.claim_send_slot(uid, "m1", a + dt.timedelta(seconds=10), daily_cap=3, min_spacing=SPACING) is None
    later = any_store.claim_send_slot(uid, "m2", b, daily_cap=3, min_spacing=SPACING)
    assert later == a + dt.timedelta(seconds=10) + SPACING
    assert any_store.claim_send_slot(uid, "m2", later, daily_cap=3, min_spacing=SPACING) is None
    # Claiming again (a retried send) is allowed: a message is never spaced from itself.
    assert any_store.claim_send_slot(uid, "m2", later + dt.timedelta(seconds=40), daily_cap=3, min_spacing=SPACING) is None


def test_an_ended_enrollment_gives_back_only_its_unsent_slots(any_store: Store) -> None:
    from nurture.store.models import Message

    uid = _inbox(any_store)
    for key in ("msg_enr_a_0", "msg_enr_a_1", "msg_enr_a_10", "msg_enr_b_0", "msgXenrXaX2"):
        any_store.reserve_send_slot(uid, key, T0, daily_cap=500, min_spacing=SPACING)
    any_store.save_message(Message(id="msg_enr_a_0", channel="gmail", to_address="x@y.test", from_address="rep@acme.test",
                                   subject="s", status="sent", created_at=T0))
    assert any_store.release_unsent_slots("msg_enr_a_") == 2
    assert any_store.send_slot("msg_enr_a_0") is not None  # sent: still counts against the cap
    assert any_store.send_slot("msg_enr_a_1") is None and any_store.send_slot("msg_enr_a_10") is None
    assert any_store.send_slot("msg_enr_b_0") is not None
    assert any_store.send_slot("msgXenrXaX2") is not None  # "_" is not a LIKE wildcard here
