"""Exactly-once, threaded sends through a sender's Gmail inbox.

Why this is more than ``messages.send``: a send whose response is lost after Gmail accepted it
would, on retry, send the email twice. Every message has a deterministic Message-ID (built from
the enrollment's own ID and the step). Before sending — and again on every retry — we look that
Message-ID up in Gmail (``rfc822msgid:``, spam and trash included). Gmail's search lags behind a
send, so after an attempt whose outcome is unknown a retry keeps looking for a grace period before
it may send again; it never sleeps inside the activity, it asks Temporal to retry later.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError
from temporalio.exceptions import ApplicationError

from activities.gmail_client import InboxDisconnected, credentials_for, encode_raw, gmail_service
from nurture.settings import Settings
from nurture.store import Store
from nurture.store.models import Inbox, Message

log = logging.getLogger(__name__)

AUTO_REPLY_SUBJECT_PREFIXES = ("out of office", "automatic reply", "auto:", "autoreply", "abwesenheitsnotiz", "absence")


class GmailAccess:
    """Builds the Gmail service for one inbox and turns Gmail errors into Temporal failures."""

    def __init__(self, store: Store, settings: Settings, inbox: Inbox) -> None:
        self.store, self.settings, self.inbox = store, settings, inbox
        grant = None
        stored = store.inbox_credentials(inbox.user_id)
        if stored:
            from nurture.crypto import decrypt

            grant = json.loads(decrypt(stored, settings))
        try:
            self.service = gmail_service(credentials_for(inbox, settings, grant), settings)
        except InboxDisconnected as exc:
            raise ApplicationError(exc.message, type="InboxDisconnected", non_retryable=True) from None

    def call(self, request: Any, what: str, *, none_if_not_found: bool = False) -> Any:
        """Execute a Gmail request: 401/revoked → the inbox is disconnected; 429, 5xx and rate
        limits → retried by Temporal (honouring Retry-After); other 4xx → permanent failure."""
        try:
            return request.execute(num_retries=0)
        except RefreshError as exc:
            raise self._disconnected(f"Google refused the stored grant ({exc.args[0] if exc.args else exc})") from None
        except HttpError as exc:
            status = exc.status_code
            if status == 404 and none_if_not_found:
                return None
            if status == 401:
                raise self._disconnected("Gmail answered 401: the grant was revoked or expired") from None
            retry_after = _retry_after(exc)
            content = (exc.content or b"").decode(errors="replace")
            if status == 429 or status >= 500 or (status == 403 and "ateLimit" in content):
                raise ApplicationError(
                    f"Gmail {what} answered {status}; retrying" + (f" after {retry_after:.0f} s" if retry_after else ""),
                    type="GmailTransient", next_retry_delay=dt.timedelta(seconds=retry_after) if retry_after else None,
                ) from None
            raise ApplicationError(
                f"Gmail rejected the {what} ({status}): {exc.reason}", type="PermanentSendFailure", non_retryable=True,
            ) from None

    def _disconnected(self, why: str) -> ApplicationError:
        self.store.set_inbox_state(self.inbox.user_id, "disconnected", error=why)
        return ApplicationError(f"inbox of user {self.inbox.user_id} disconnected: {why}", type="InboxDisconnected", non_retryable=True)

    def find_by_message_id(self, message_id: str) -> dict[str, Any] | None:
        bare = message_id.strip("<>")
        found = self.call(
            self.service.users().messages().list(userId="me", q=f"rfc822msgid:{bare}", includeSpamTrash=True, maxResults=5),
            "search",
        )
        msgs = found.get("messages") or []
        return msgs[0] if msgs else None

    def inbound_in_thread(self, thread_id: str, own_address: str) -> dict[str, str] | None:
        """The first message in the thread that the contact sent (not ours, not an automatic
        reply, not a bounce); None if there is none."""
        thread = self.call(
            self.service.users().threads().get(
                userId="me", id=thread_id, format="metadata",
                metadataHeaders=["From", "Subject", "Auto-Submitted", "X-Autoreply", "Precedence", "Content-Type"],
            ),
            "thread lookup",
        )
        for m in thread.get("messages", []):
            if "SENT" in m.get("labelIds", []):
                continue
            headers = {h["name"].lower(): h["value"] for h in m.get("payload", {}).get("headers", [])}
            if classify_inbound(headers) == "reply" and own_address.lower() not in headers.get("from", "").lower():
                return {"id": m["id"], "from": headers.get("from", "")}
        return None


def _retry_after(exc: HttpError) -> float | None:
    value = exc.resp.get("retry-after") if exc.resp is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


def classify_inbound(headers: dict[str, str]) -> str:
    """'bounce', 'auto_reply' or 'reply' for an inbound message, from its (lower-cased) headers."""
    sender = headers.get("from", "").lower()
    ctype = headers.get("content-type", "").lower()
    if "report-type=delivery-status" in ctype or "mailer-daemon@" in sender or "postmaster@" in sender:
        return "bounce"
    if headers.get("auto-submitted", "no").lower() not in ("", "no"):
        return "auto_reply"
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return "auto_reply"
    if headers.get("precedence", "").lower() in ("auto_reply", "bulk", "junk"):
        return "auto_reply"
    if headers.get("subject", "").lower().startswith(AUTO_REPLY_SUBJECT_PREFIXES):
        return "auto_reply"
    return "reply"


class SlotTaken(Exception):
    """The inbox sent too recently (or too much today): try again at ``until``."""

    def __init__(self, until: dt.datetime) -> None:
        super().__init__(f"send slot taken until {until.isoformat()}")
        self.until = until


@dataclass
class SendOutcome:
    provider_id: str
    thread_id: str
    deduplicated: bool  # True: found already sent, nothing was sent now


def send_once(
    gmail: GmailAccess,
    store: Store,
    record: Message,
    mime: EmailMessage,
    *,
    thread_id: str | None,
    now: dt.datetime,
    grace: dt.timedelta,
    claim: Callable[[], dt.datetime | None] | None = None,
) -> SendOutcome:
    """Send ``mime`` at most once, whatever happened to earlier attempts. ``claim`` runs just
    before the send and may answer that the inbox's slot is taken until a later time."""
    assert record.rfc822_message_id
    previous = store.get_message(record.id)
    found = gmail.find_by_message_id(record.rfc822_message_id)
    if found:
        return _mark_sent(store, previous or record, found, now, deduplicated=True)
    if previous is not None and previous.status == "sending":
        # An earlier attempt may have reached Gmail while search has not caught up yet.
        unsure_until = previous.created_at + grace
        if now < unsure_until:
            wait = (unsure_until - now).total_seconds()
            raise ApplicationError(
                f"an earlier attempt may have sent {record.rfc822_message_id}; Gmail search has not "
                f"confirmed it yet, looking again in {min(wait, 30):.0f} s before sending",
                type="SendUnconfirmed", next_retry_delay=dt.timedelta(seconds=min(wait, 30)),
            )
        log.info("no trace of %s after the grace period: sending again", record.rfc822_message_id)
    if claim is not None:
        later = claim()
        if later is not None:
            raise SlotTaken(later)
    store.save_message(record.model_copy(update={"status": "sending", "created_at": now}))
    body: dict[str, Any] = {"raw": encode_raw(mime)}
    if thread_id:
        body["threadId"] = thread_id
    sent = gmail.call(gmail.service.users().messages().send(userId="me", body=body), "send")
    return _mark_sent(store, record, sent, now, deduplicated=False)


def _mark_sent(store: Store, record: Message, gmail_msg: dict[str, Any], now: dt.datetime, *, deduplicated: bool) -> SendOutcome:
    store.save_message(record.model_copy(update={
        "status": "sent", "provider_message_id": gmail_msg.get("id"), "thread_id": gmail_msg.get("threadId"),
        "sent_at": record.sent_at or now,
    }))
    return SendOutcome(provider_id=gmail_msg.get("id", ""), thread_id=gmail_msg.get("threadId", ""), deduplicated=deduplicated)
