"""The contact-facing opt-out link of sales emails (no bearer token: the link is signed).

GET shows a confirmation page; POST (also RFC 8058 one-click from mail clients) opts the contact
out of sales email and unenrolls them. Opting out twice is harmless.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from nurture.api.deps import state
from nurture.contracts.sequence import ExitReason
from nurture.errors import NurtureError
from nurture.store.models import OPT_OUT_PROPERTY
from nurture.unsubscribe import read_token

router = APIRouter(tags=["unsubscribe"])


@router.get("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
async def confirm_page(token: str, request: Request) -> HTMLResponse:
    read_token(state(request).settings.secret_key.get_secret_value(), token)
    return HTMLResponse(
        "<!doctype html><title>Unsubscribe</title><form method=post>"
        "<p>Stop receiving these sales emails?</p><button type=submit>Unsubscribe</button></form>"
    )


@router.post("/u/{token}", response_class=HTMLResponse, summary="Opt out of sales email (signed link)")
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    st = state(request)
    enrollment_id, contact_id = read_token(st.settings.secret_key.get_secret_value(), token)
    await run_in_threadpool(st.store.upsert_record, "contact", {OPT_OUT_PROPERTY: True}, record_id=contact_id)
    try:
        await (await st.sequences()).report(enrollment_id, ExitReason.UNSUBSCRIBED, "unsubscribe link")
    except NurtureError:
        pass  # already ended: the opt-out above is what matters
    return HTMLResponse("<!doctype html><title>Unsubscribed</title><p>You are unsubscribed.</p>")
