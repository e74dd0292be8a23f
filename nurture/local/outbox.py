"""The outbox: every message the local providers captured, for humans to read.

Nothing sent through the local Gmail or SendGrid endpoints leaves the machine; this
module turns the captured sends of both channels into one newest-first list (what
``nurture outbox`` prints), and provides the admin routes that both local apps
share (outbox, fault injection, health).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from nurture.local.mailstore import Fault as StoredFault
from nurture.local.mailstore import (
    FaultKind,
    GmailMessage,
    MailStore,
    SendGridMessage,
    Service,
)

__all__ = ["Channel", "FaultRequest", "OutboxMessage", "admin_router", "list_outbox"]

Channel = Literal["gmail", "sendgrid"]


class OutboxMessage(BaseModel):
    """One captured outgoing message, whichever provider it went through."""

    channel: Channel
    id: str = Field(description="Gmail message id, or SendGrid's X-Message-Id")
    sent_at: AwareDatetime
    from_addr: str
    from_name: str | None = None
    to: list[str]
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    subject: str
    message_id: str | None = Field(
        default=None, description="The Message-ID header, when the sender set or Gmail assigned one"
    )
    thread_id: str | None = Field(default=None, description="Gmail thread id")
    mailbox: str | None = Field(default=None, description="Gmail account that sent it")
    text: str | None = None
    html: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    custom_args: dict[str, str] = Field(default_factory=dict, description="SendGrid only")
    categories: list[str] = Field(default_factory=list, description="SendGrid only")


def list_outbox(
    store: MailStore, limit: int = 50, channel: Channel | None = None
) -> list[OutboxMessage]:
    """Captured sends of both channels (or one), newest first, at most ``limit``."""
    if limit <= 0:
        return []
    items: list[OutboxMessage] = []
    if channel in (None, "gmail"):
        items.extend(_from_gmail(m) for m in store.sent_gmail_messages(limit))
    if channel in (None, "sendgrid"):
        items.extend(_from_sendgrid(m) for m in store.sendgrid_messages(limit))
    # Each source is already newest-first; a stable sort keeps that order on ties.
    items.sort(key=lambda m: m.sent_at, reverse=True)
    return items[:limit]


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC)


def _from_gmail(m: GmailMessage) -> OutboxMessage:
    headers: dict[str, str] = {}
    for name, value in m.headers:
        # Repeated headers (Received, ...) are rare on a sent message; keep the first.
        headers.setdefault(name, value)
    from_name = parseaddr(headers.get("From", ""))[0] or None
    return OutboxMessage(
        channel="gmail",
        id=m.id,
        sent_at=_utc(m.added_at),
        from_addr=m.from_addr,
        from_name=from_name,
        to=m.to,
        cc=m.cc,
        bcc=m.bcc,
        subject=m.subject,
        message_id=m.message_id_header or None,
        thread_id=m.thread_id,
        mailbox=m.mailbox,
        text=m.text_body,
        html=m.html_body,
        headers=headers,
    )


def _from_sendgrid(m: SendGridMessage) -> OutboxMessage:
    message_id = next((v for k, v in m.headers.items() if k.lower() == "message-id"), None)
    return OutboxMessage(
        channel="sendgrid",
        id=m.id,
        sent_at=_utc(m.received_at),
        from_addr=m.from_addr,
        from_name=m.from_name,
        to=m.to,
        cc=m.cc,
        bcc=m.bcc,
        subject=m.subject,
        message_id=message_id,
        text=m.text_body,
        html=m.html_body,
        headers=m.headers,
        custom_args=m.custom_args,
        categories=m.categories,
    )


class FaultRequest(BaseModel):
    """Body of ``POST /_local/faults``."""

    service: Service
    # Only sends can fail for now; a Literal makes a typo an error instead of a
    # fault that silently never fires.
    operation: Literal["send"] = "send"
    kind: FaultKind
    count: int = Field(default=1, ge=1)
    retry_after: int | None = Field(default=None, ge=0, description="seconds, for kind 429")
    message: str | None = Field(default=None, description="override the error message")


def _fault_json(fault: StoredFault) -> dict[str, Any]:
    return {
        "service": fault.service,
        "operation": fault.operation,
        "kind": fault.kind,
        "count": fault.count,
        "retry_after": fault.retry_after,
        "message": fault.message,
    }


def admin_router(store: MailStore) -> APIRouter:
    """Admin routes mounted on both local apps (they share one store)."""
    router = APIRouter(prefix="/_local", tags=["local admin"])

    @router.get("/healthz")
    def healthz() -> dict[str, bool]:
        """Liveness probe for ``nurture dev``: ``{"ok": true}``."""
        return {"ok": True}

    @router.get("/outbox", response_model=list[OutboxMessage])
    def outbox(
        limit: int = Query(default=50, ge=1, le=1000),
        channel: Channel | None = None,
    ) -> list[OutboxMessage]:
        """Captured sends, newest first. ``?limit=`` (default 50), ``?channel=gmail|sendgrid``."""
        return list_outbox(store, limit=limit, channel=channel)

    @router.post("/faults")
    def add_fault(request: FaultRequest) -> dict[str, Any]:
        """Make the next ``count`` calls of ``service``/``operation`` fail.

        Body: ``{"service": "gmail"|"sendgrid", "operation": "send", "kind":
        "accept_then_500"|"500"|"429"|"400", "count": 1, "retry_after"?: seconds,
        "message"?: text}``. ``accept_then_500`` stores the message exactly as a
        success would, then answers 500 (a response lost after the provider accepted
        the send). ``429`` carries a ``Retry-After`` header (default 1 s). Faults queue
        up in the order they were added. Returns the fault and everything pending.
        """
        fault = store.add_fault(
            StoredFault(
                service=request.service,
                operation=request.operation,
                kind=request.kind,
                count=request.count,
                retry_after=request.retry_after,
                message=request.message,
            )
        )
        return {
            "queued": _fault_json(fault),
            "pending": [_fault_json(f) for f in store.pending_faults()],
        }

    @router.get("/faults")
    def list_faults() -> dict[str, Any]:
        """Faults still waiting to fire: ``{"pending": [...]}``."""
        return {"pending": [_fault_json(f) for f in store.pending_faults()]}

    @router.delete("/faults")
    def clear_faults() -> dict[str, Any]:
        """Drop every pending fault: ``{"pending": []}``."""
        store.clear_faults()
        return {"pending": []}

    return router
