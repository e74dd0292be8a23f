"""Inbound webhooks: a meeting booked by a contact (signed with NURTURE_MEETINGS_WEBHOOK_SECRET).

The body is verified before anything is read from it; a forged, stale or replayed post changes
nothing. A valid one takes the contact's open sequence enrollment out with ``meeting_booked``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from nurture.api.deps import state
from nurture.contracts.sequence import ExitReason
from nurture.errors import Conflict, InvalidInput, NotFound, Unavailable
from nurture.store.models import EmailEvent, RecordType
from nurture.webhook_signing import verify

router = APIRouter(tags=["webhooks"])


class MeetingBooked(BaseModel):
    event_id: str = Field(min_length=1, max_length=200, description="Unique per booking; replays are refused")
    contact: str = Field(description="Contact ID or email")
    starts_at: dt.datetime | None = None
    title: str = ""


@router.post("/webhooks/meetings", summary="A contact booked a meeting (HMAC-signed)")
async def meeting_booked(request: Request) -> dict[str, Any]:
    st = state(request)
    secret = st.settings.meetings_webhook_secret
    if secret is None:
        raise Unavailable("meeting webhooks are off: set NURTURE_MEETINGS_WEBHOOK_SECRET")
    body = await request.body()
    verify(secret.get_secret_value(), request.headers.get("X-Nurture-Timestamp"),
           request.headers.get("X-Nurture-Signature"), body, now=time.time())
    try:
        event = MeetingBooked.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidInput(f"invalid meeting event: {exc.errors()[0]['msg']} at {'.'.join(map(str, exc.errors()[0]['loc']))}") from None
    contact = await run_in_threadpool(st.store.find_record, RecordType.CONTACT, event.contact)
    key = f"meeting:{event.event_id}"
    first = await run_in_threadpool(st.store.record_event, EmailEvent(
        id=key, record_id=contact.id, type="meeting_booked", occurred_at=dt.datetime.now(dt.timezone.utc),
        data=event.model_dump(mode="json"),
    ))
    if not first:
        raise Conflict(f"meeting event {event.event_id} was already received")
    open_sequences = await run_in_threadpool(st.store.open_enrollments, record_id=contact.id, kind="sequence")
    ended = []
    for enrollment in open_sequences:
        try:
            await (await st.sequences()).report(enrollment.id, ExitReason.MEETING_BOOKED, event.title or event.event_id)
            ended.append(enrollment.id)
        except (NotFound, Conflict):
            pass
    return {"ok": True, "contact_id": contact.id, "unenrolled": ended}
