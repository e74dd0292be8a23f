"""Send one automated sequence email from the sender's inbox through the Gmail API.

Idempotent: the message has a deterministic ID (enrollment + step) and is logged before and after
the send, so a retried activity whose first attempt got through does not send again. (The sales
inbox issue strengthens this with a Gmail ``rfc822msgid:`` lookup for sends whose response was lost.)
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from googleapiclient.errors import HttpError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deps import ActivityDeps
from activities.gmail_client import InboxDisconnected, build_mime, credentials_for, encode_raw, gmail_service
from activities.schedule_rules import due_after, resolve_rules
from nurture.contracts.sequence import ActivityName, ExitReason, SendEmailInput, StepOutcome, StepResult
from nurture.scheduling import is_allowed, next_allowed
from nurture.store.models import BOUNCED_PROPERTY, OPT_OUT_PROPERTY, Message, Record, User
from nurture.templating import render
from nurture.unsubscribe import unsubscribe_url

log = logging.getLogger(__name__)


def message_key(enrollment_id: str, step_index: int) -> str:
    return f"msg_{enrollment_id}_{step_index}"


def rfc822_message_id(enrollment_id: str, step_index: int, sender_email: str) -> str:
    """Built from the enrollment's own ID, never the workflow ID (which a re-enrollment reuses)."""
    domain = sender_email.rsplit("@", 1)[-1]
    return f"<nurture.{enrollment_id}.{step_index}@{domain}>"


def token_context(contact: Record, company: Record | None, sender: User, unsubscribe: str | None) -> dict[str, object]:
    return {
        "contact": dict(contact.properties),
        "company": dict(company.properties) if company else {},
        "sender": {"name": sender.name, "email": sender.email, "firstname": sender.name.split(" ")[0], **sender.properties},
        "unsubscribe_url": unsubscribe or "",
    }


class SequenceEmailActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name=ActivityName.SEND_EMAIL)
    def send_email(self, inp: SendEmailInput) -> StepResult:
        store, settings = self.deps.store, self.deps.settings
        contact = store.get_record(inp.contact_id)
        sender = store.get_user(inp.sender_id)
        rules = resolve_rules(inp.settings, sender, contact, settings)
        now = max(dt.datetime.now(dt.timezone.utc), inp.started_at)
        key = message_key(inp.enrollment_id, inp.step_index)
        already = store.get_message(key)

        if already is None or already.status != "sent":
            if inp.enforce_rules and not is_allowed(now, rules):
                # A timer that fires late (worker down, queue backlog) must not send outside the
                # eligible days or window: tell the workflow when to try again.
                return StepResult(outcome=StepOutcome.DEFERRED, deferred_until=next_allowed(now, rules),
                                  detail="outside the allowed days or send window")
            if contact.properties.get(OPT_OUT_PROPERTY):
                return StepResult(outcome=StepOutcome.EXIT, exit_reason=ExitReason.UNSUBSCRIBED, detail="contact opted out")
            if contact.properties.get(BOUNCED_PROPERTY):
                return StepResult(outcome=StepOutcome.EXIT, exit_reason=ExitReason.BOUNCED, detail="contact address bounced")
            if not contact.email:
                raise ApplicationError(f"contact {contact.id} has no email address", type="InvalidInput", non_retryable=True)
            self._send(inp, contact, sender, key)
        else:
            log.info("step %s of %s already sent as %s; not sending again", inp.step_index, inp.enrollment_id, key)

        store.update_enrollment(inp.enrollment_id, current_step=inp.step_index + 1)
        next_due = due_after(inp.scheduled_for, inp.next_delay, rules) if inp.next_delay is not None else None
        return StepResult(outcome=StepOutcome.DONE, next_due=next_due, detail="sent")

    def _send(self, inp: SendEmailInput, contact: Record, sender: User, key: str) -> None:
        store, settings = self.deps.store, self.deps.settings
        inbox = store.get_inbox(sender.id)
        if inbox is None:
            raise ApplicationError(
                f"sender {sender.email} has no connected inbox; connect one with `nurture inbox connect`",
                type="InboxDisconnected", non_retryable=True,
            )
        company = store.primary_company(contact.id)
        unsubscribe = (
            unsubscribe_url(settings.unsubscribe_base_url, settings.secret_key.get_secret_value(), inp.enrollment_id, contact.id)
            if inp.settings.unsubscribe_link else None
        )
        context = token_context(contact, company, sender, unsubscribe)
        subject = render(inp.subject, context)
        body = render(inp.step.body, context)
        missing = sorted(set(subject.missing) | set(body.missing))
        if missing:
            raise ApplicationError(
                f"missing token value for {', '.join(missing)}: fill the property or add a fallback "
                "like {{ contact.firstname | default('there') }}",
                type="MissingToken", non_retryable=True,
            )
        text = body.text
        if unsubscribe and "unsubscribe_url" not in inp.step.body:
            text += f"\n\n--\nDon't want these emails? Unsubscribe: {unsubscribe}\n"

        thread_id = in_reply_to = None
        references: list[str] = []
        if inp.thread_with_index is not None:
            first = store.get_message(message_key(inp.enrollment_id, inp.thread_with_index))
            if first and first.status == "sent":
                thread_id, in_reply_to = first.thread_id, first.rfc822_message_id
                references = [m.rfc822_message_id for m in self._thread_messages(inp.enrollment_id, first.thread_id)]

        message_id = rfc822_message_id(inp.enrollment_id, inp.step_index, inbox.email)
        mime = build_mime(
            from_name=sender.name, from_addr=inbox.email, to_addr=contact.email or "", subject=subject.text,
            text=text, message_id=message_id, in_reply_to=in_reply_to, references=references or None,
            list_unsubscribe=unsubscribe,
        )
        record = Message(
            id=key, channel="gmail", enrollment_id=inp.enrollment_id, step_index=inp.step_index, record_id=contact.id,
            sender_id=sender.id, to_address=contact.email or "", from_address=inbox.email, subject=subject.text,
            rfc822_message_id=message_id, thread_id=thread_id, status="sending",
            created_at=dt.datetime.now(dt.timezone.utc),
        )
        store.save_message(record)
        grant = None
        stored = store.inbox_credentials(sender.id)
        if stored:
            from nurture.crypto import decrypt

            grant = json.loads(decrypt(stored, settings))
        try:
            service = gmail_service(credentials_for(inbox, settings, grant), settings)
            body_json: dict[str, object] = {"raw": encode_raw(mime)}
            if thread_id:
                body_json["threadId"] = thread_id
            sent = service.users().messages().send(userId="me", body=body_json).execute()
        except InboxDisconnected as exc:
            raise ApplicationError(exc.message, type="InboxDisconnected", non_retryable=True) from None
        except HttpError as exc:
            status = exc.status_code
            if status in (400, 403, 404):
                raise ApplicationError(f"Gmail rejected the message ({status}): {exc.reason}",
                                       type="PermanentSendFailure", non_retryable=True) from None
            raise  # 401 (token refresh), 429 and 5xx: retried with backoff
        store.save_message(record.model_copy(update={
            "status": "sent", "provider_message_id": sent.get("id"), "thread_id": sent.get("threadId"),
            "sent_at": dt.datetime.now(dt.timezone.utc),
        }))

    def _thread_messages(self, enrollment_id: str, thread_id: str | None) -> list[Message]:
        msgs = [m for m in self.deps.store.list_messages(enrollment_id=enrollment_id) if m.thread_id == thread_id and m.rfc822_message_id]
        return sorted(msgs, key=lambda m: m.created_at)
