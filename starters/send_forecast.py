"""When will an inbox's queued sends go? Bulk enrollment can push an inbox past its rolling cap
for days; the enrollment command says so instead of letting the user find out later."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from nurture.store import Store
from nurture.store.store import slot_for


class SendForecast(BaseModel):
    inbox: str
    daily_cap: int
    queued: int
    last_send_at: dt.datetime
    days_needed: float

    @property
    def spills_over(self) -> bool:
        return self.days_needed > 1

    def message(self) -> str:
        return (
            f"{self.inbox} sends at most {self.daily_cap} emails per 24 hours: the last of these sends "
            f"will go around {self.last_send_at:%Y-%m-%d %H:%M} UTC"
        )


def forecast_sends(store: Store, sender_id: str, new_sends: int, *, now: dt.datetime | None = None) -> SendForecast | None:
    """Where ``new_sends`` more emails would land after the slots already reserved (send windows
    aside, so the real times can only be later)."""
    inbox = store.get_inbox(sender_id)
    if inbox is None or new_sends <= 0:
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    slots = store.send_slots(sender_id, since=now - dt.timedelta(hours=24))
    spacing = dt.timedelta(seconds=inbox.min_spacing_seconds)
    last = now
    for _ in range(new_sends):
        last = slot_for(slots, now, daily_cap=inbox.daily_cap, min_spacing=spacing, allowed=lambda t: t)
        slots = sorted([*slots, last])
    return SendForecast(
        inbox=inbox.email, daily_cap=inbox.daily_cap, queued=len(slots),
        last_send_at=last, days_needed=(last - now).total_seconds() / 86400,
    )
