"""Send one automated sequence email from the sender's Gmail inbox.

In order, one activity: refuses to send outside the allowed days and window (a late timer),
stops for a contact who opted out, bounced or already replied in the thread, takes a send slot
of the inbox (rolling 24-hour cap, minimum spacing — when the slot is later, the workflow sleeps
until it on a timer), renders the templates, and sends exactly once (``gmail_send.send_once``).
It also plans the next step, so an email step costs one activity in history.
"""

from __future__ import annotations

import datetime as dt
import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.clock import activity_now
from activities.deps import ActivityDeps
from activities.gmail_client import build_mime
from activities.gmail_send import GmailAccess, SlotTaken, send_once
from activities.schedule_rules import due_after, resolve_rules
from nurture import metrics
from nurture.contracts.sequence import ActivityName, ExitReason, SendEmailInput, StepOutcome, StepResult
from nurture.scheduling import ScheduleRules, is_allowed, next_allowed
from nurture.store.models import BOUNCED_PROPERTY, OPT_OUT_PROPERTY, Inbox, Message, Record, User
from nurture.templating import render
from nurture.unsubscribe import unsubscribe_url

log = logging.getLogger(__name__)

# A slot this close to now is "now": timers and clocks are never exactly on time.
SLOT_TOLERANCE = dt.timedelta(seconds=1)
# A reserved slot whose timer fired later than this re-checks the days and window.
LATE_SLOT = dt.timedelta(minutes=1)


def message_key_prefix(enrollment_id: str) -> str:
    return f"msg_{enrollment_id}_"


def message_key(enrollment_id: str, step_index: int) -> str:
    return f"{message_key_prefix(enrollment_id)}{step_index}"


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


def _waiting_for_slot(inbox: Inbox, until: dt.datetime) -> StepResult:
    return StepResult(outcome=StepOutcome.DEFERRED, deferred_until=until,
                      detail=f"waiting for a send slot of the sender's inbox (daily cap {inbox.daily_cap}, "
                             f"{inbox.min_spacing_seconds} s apart)")


def inbox_disconnected(message: str) -> ApplicationError:
    return ApplicationError(message, type="InboxDisconnected", non_retryable=True)


class SequenceEmailActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name=ActivityName.SEND_EMAIL)
    def send_email(self, inp: SendEmailInput) -> StepResult:
        store, settings = self.deps.store, self.deps.settings
        contact = store.get_record(inp.contact_id)
        sender = store.get_user(inp.sender_id)
        rules = resolve_rules(inp.settings, sender, contact, settings)
        now = activity_now(inp.started_at)
        key = message_key(inp.enrollment_id, inp.step_index)
        already = store.get_message(key)

        if already is not None and already.status == "sent":
            metrics.EMAIL_SENDS_SKIPPED.inc()
            log.info("step %s of %s already sent as %s; not sending again", inp.step_index, inp.enrollment_id, key)
        else:
            slot = store.send_slot(key)
            stop = self._not_now(inp, contact, rules, now, key, slot)
            if stop is not None:
                return stop
            inbox = self._inbox(inp.sender_id)
            slot = slot or self._reserve_slot(inp, inbox, rules, now, key)
            if slot > now + SLOT_TOLERANCE:
                return _waiting_for_slot(inbox, slot)
            replied = self._send(inp, contact, sender, inbox, key, now)
            if replied is not None:
                return replied

        store.update_enrollment(inp.enrollment_id, current_step=inp.step_index + 1)
        next_due = due_after(inp.scheduled_for, inp.next_delay, rules) if inp.next_delay is not None else None
        return StepResult(outcome=StepOutcome.DONE, next_due=next_due, detail="sent")

    def _not_now(
        self, inp: SendEmailInput, contact: Record, rules: ScheduleRules, now: dt.datetime, key: str,
        slot: dt.datetime | None,
    ) -> StepResult | None:
        """A reason not to send now: outside the days or window (deferred), or the contact can no
        longer be emailed (exit)."""
        late = slot is None or now - slot > LATE_SLOT
        if inp.enforce_rules and late and not is_allowed(now, rules):
            # A timer that fires late (worker down, backlog) must not send outside the eligible
            # days or window: release any slot and tell the workflow when to try again.
            self.deps.store.release_send_slot(key)
            metrics.STEPS_DEFERRED.inc()
            return StepResult(outcome=StepOutcome.DEFERRED, deferred_until=next_allowed(now, rules),
                              detail="outside the allowed days or send window")
        if contact.properties.get(OPT_OUT_PROPERTY):
            return StepResult(outcome=StepOutcome.EXIT, exit_reason=ExitReason.UNSUBSCRIBED, detail="contact opted out")
        if contact.properties.get(BOUNCED_PROPERTY):
            return StepResult(outcome=StepOutcome.EXIT, exit_reason=ExitReason.BOUNCED, detail="contact address bounced")
        if not contact.email:
            raise ApplicationError(f"contact {contact.id} has no email address", type="InvalidInput", non_retryable=True)
        return None

    def _reserve_slot(self, inp: SendEmailInput, inbox: Inbox, rules: ScheduleRules, now: dt.datetime, key: str) -> dt.datetime:
        """The inbox's next send slot for this message (rolling cap, spacing, and the rules)."""
        allowed = (lambda t: next_allowed(t, rules)) if inp.enforce_rules else (lambda t: t)
        return self.deps.store.reserve_send_slot(
            inbox.user_id, key, now, daily_cap=inbox.daily_cap,
            min_spacing=dt.timedelta(seconds=inbox.min_spacing_seconds), allowed=allowed,
        )

    def _inbox(self, user_id: str) -> Inbox:
        inbox = self.deps.store.get_inbox(user_id)
        if inbox is None:
            raise inbox_disconnected("the sender has no connected inbox; connect one with `nurture inbox connect`")
        if inbox.state != "connected":
            raise inbox_disconnected(f"the inbox of user {inbox.user_id} is disconnected ({inbox.last_error or 'reconnect it'})")
        return inbox

    def _send(
        self, inp: SendEmailInput, contact: Record, sender: User, inbox: Inbox, key: str, now: dt.datetime,
    ) -> StepResult | None:
        """Send the step's email; returns an exit result instead when the contact already replied."""
        store, settings = self.deps.store, self.deps.settings
        gmail = GmailAccess(store, settings, inbox)

        # The contact may have answered since the last step, even if the watcher has not seen it
        # yet: look at this enrollment's threads (lookups by key) just before sending.
        sent_before = [m for m in store.list_messages(enrollment_id=inp.enrollment_id) if m.status == "sent" and m.thread_id]
        for thread_id in dict.fromkeys(m.thread_id for m in sent_before if m.thread_id):
            reply = gmail.inbound_in_thread(thread_id, inbox.email)
            if reply:
                store.release_send_slot(key)
                return StepResult(outcome=StepOutcome.EXIT, exit_reason=ExitReason.REPLIED,
                                  detail=f"reply {reply['id']} found in the thread just before sending")

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
                thread_id = first.thread_id
                references = [m.rfc822_message_id for m in sorted(sent_before, key=lambda m: m.created_at)
                              if m.thread_id == thread_id and m.rfc822_message_id]
                # A reply answers the thread's latest message (RFC 5322 3.6.4), not always the
                # first: with three or more emails in a thread, In-Reply-To used to name the first.
                in_reply_to = references[-1] if references else first.rfc822_message_id

        message_id = rfc822_message_id(inp.enrollment_id, inp.step_index, inbox.email)
        mime = build_mime(
            from_name=sender.name, from_addr=inbox.email, to_addr=contact.email or "", subject=subject.text,
            text=text, message_id=message_id, in_reply_to=in_reply_to, references=references or None,
            list_unsubscribe=unsubscribe,
        )
        record = Message(
            id=key, channel="gmail", enrollment_id=inp.enrollment_id, step_index=inp.step_index, record_id=contact.id,
            sender_id=sender.id, to_address=contact.email or "", from_address=inbox.email, subject=subject.text,
            rfc822_message_id=message_id, thread_id=thread_id, status="sending", created_at=now,
        )
        def claim() -> dt.datetime | None:
            # Right before the send: timers fire late, so the sends that really went are
            # spaced and capped again here, not only the reservations.
            return store.claim_send_slot(
                inbox.user_id, key, max(dt.datetime.now(dt.timezone.utc), now), daily_cap=inbox.daily_cap,
                min_spacing=dt.timedelta(seconds=inbox.min_spacing_seconds),
            )

        try:
            outcome = send_once(gmail, store, record, mime, thread_id=thread_id, now=now, claim=claim,
                                grace=dt.timedelta(seconds=settings.gmail_search_grace_seconds))
        except SlotTaken as busy:
            return _waiting_for_slot(inbox, busy.until)
        if outcome.deduplicated:
            metrics.EMAIL_SENDS_SKIPPED.inc()
        else:
            metrics.EMAILS_SENT.labels(channel="gmail").inc()
        return None
