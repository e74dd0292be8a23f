"""Follow a connected inbox's Gmail history and tell enrollments what arrived.

Matching is by key: the deterministic Message-IDs Nurture sends carry the enrollment ID, so an
inbound message's In-Reply-To/References name its enrollment; failing that, its Gmail thread is
looked up in the message log. Every inbound message is logged once (its Gmail ID is the event
key), so polling the same history twice signals nothing twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deps import ActivityDeps
from activities.gmail_send import GmailAccess, classify_inbound
from nurture.contracts.inbox import InboxActivityName, PollInboxInput, PollResult
from nurture.contracts.sequence import EnrollmentSignal, SignalName
from nurture.store.models import EmailEvent, Inbox

log = logging.getLogger(__name__)

NURTURE_MESSAGE_ID = re.compile(r"<nurture\.(enr_[0-9a-z]+)\.(\d+)@[^>]+>", re.IGNORECASE)
METADATA_HEADERS = [
    "From", "Subject", "Message-ID", "In-Reply-To", "References", "Auto-Submitted", "X-Autoreply",
    "Precedence", "Content-Type", "X-Failed-Recipients",
]
RESYNC_MAX_MESSAGES = 500


class InboxWatchActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name=InboxActivityName.POLL)
    async def poll_history(self, inp: PollInboxInput) -> PollResult:
        store = self.deps.store
        inbox = await asyncio.to_thread(store.get_inbox, inp.user_id)
        if inbox is None:
            return PollResult(state="no_inbox")
        if inbox.state != "connected":
            return PollResult(state="disconnected")
        try:
            gmail = await asyncio.to_thread(GmailAccess, store, self.deps.settings, inbox)
            found, history_id, state = await asyncio.to_thread(self._new_messages, gmail, inbox)
        except ApplicationError as err:
            if err.type == "InboxDisconnected":
                return PollResult(state="disconnected")
            raise
        result = PollResult(state=state, history_id=history_id)
        for message_id in found:
            kind = await self._process(gmail, inbox, message_id)
            if kind:
                result.messages_seen += 1
                if kind == "reply":
                    result.replies += 1
                elif kind == "bounce":
                    result.bounces += 1
                elif kind == "auto_reply":
                    result.auto_replies += 1
        if history_id:
            await asyncio.to_thread(store.set_inbox_history_id, inbox.user_id, history_id)
        return result

    # ---------------------------------------------------------------------------- reading
    def _new_messages(self, gmail: GmailAccess, inbox: Inbox) -> tuple[list[str], str | None, str]:
        users = gmail.service.users()
        if inbox.history_id is None:
            return self._resync(gmail, "initialized")
        ids: list[str] = []
        page_token = None
        latest = inbox.history_id
        while True:
            page = gmail.call(
                users.history().list(
                    userId="me", startHistoryId=inbox.history_id, historyTypes=["messageAdded"],
                    pageToken=page_token, maxResults=500,
                ),
                "history", none_if_not_found=True,
            )
            if page is None:
                # Gmail keeps history for a limited time: too old an ID means a full resync.
                log.warning("history %s of %s is too old; resyncing", inbox.history_id, inbox.email)
                return self._resync(gmail, "resynced")
            for entry in page.get("history", []):
                for added in entry.get("messagesAdded", []):
                    mid = added["message"]["id"]
                    if "SENT" not in added["message"].get("labelIds", []) and mid not in ids:
                        ids.append(mid)
            latest = page.get("historyId", latest)
            page_token = page.get("nextPageToken")
            if not page_token:
                return ids, latest, "polled"

    def _resync(self, gmail: GmailAccess, state: str) -> tuple[list[str], str | None, str]:
        users = gmail.service.users()
        profile = gmail.call(users.getProfile(userId="me"), "profile")
        listed = gmail.call(users.messages().list(userId="me", labelIds=["INBOX"], maxResults=RESYNC_MAX_MESSAGES), "resync")
        ids = [m["id"] for m in listed.get("messages", [])]
        return ids, str(profile.get("historyId")), state

    # ------------------------------------------------------------------------- processing
    async def _process(self, gmail: GmailAccess, inbox: Inbox, message_id: str) -> str | None:
        store = self.deps.store
        event_id = f"gmail:{inbox.user_id}:{message_id}"
        if await asyncio.to_thread(store.event_exists, event_id):
            return None
        msg = await asyncio.to_thread(
            gmail.call,
            gmail.service.users().messages().get(userId="me", id=message_id, format="metadata", metadataHeaders=METADATA_HEADERS),
            "message lookup",
        )
        if "SENT" in msg.get("labelIds", []):
            return None  # the sender's own copy
        headers = {h["name"].lower(): h["value"] for h in msg.get("payload", {}).get("headers", [])}
        kind = classify_inbound(headers)
        enrollment_id = await asyncio.to_thread(self._match, headers, msg.get("threadId"))
        enrollment = await asyncio.to_thread(store.get_enrollment, enrollment_id) if enrollment_id else None
        occurred = dt.datetime.fromtimestamp(int(msg.get("internalDate", "0")) / 1000, dt.timezone.utc)
        await asyncio.to_thread(store.record_event, EmailEvent(
            id=event_id, enrollment_id=enrollment_id, record_id=enrollment.record_id if enrollment else None,
            type=kind if enrollment_id else f"unmatched_{kind}", occurred_at=occurred,
            data={"gmail_id": message_id, "thread_id": msg.get("threadId"), "subject": headers.get("subject", ""),
                  "auto_submitted": headers.get("auto-submitted"), "precedence": headers.get("precedence")},
        ))
        if kind == "auto_reply":
            log.info("automatic reply %s for %s logged; the enrollment keeps running", message_id, enrollment_id)
        elif enrollment is not None and enrollment.status.is_open and enrollment.kind == "sequence":
            signal = SignalName.REPLIED if kind == "reply" else SignalName.BOUNCED
            client = self.deps.client or activity.client()
            try:
                await client.get_workflow_handle(enrollment.workflow_id).signal(
                    signal, EnrollmentSignal(enrollment_id=enrollment.id, detail=f"{kind} {message_id} in the inbox"),
                )
            except Exception as exc:  # noqa: BLE001 — a run that just ended needs nothing
                log.info("could not signal %s about %s: %s", enrollment.id, message_id, exc)
        return kind

    def _match(self, headers: dict[str, str], thread_id: str | None) -> str | None:
        refs = f"{headers.get('in-reply-to', '')} {headers.get('references', '')}"
        for match in NURTURE_MESSAGE_ID.finditer(refs):
            return match.group(1)
        if thread_id:
            sent = self.deps.store.find_message_by_thread(thread_id)
            if sent and sent.enrollment_id:
                return sent.enrollment_id
        return None
