"""The sales inbox, end to end through the dev server and the local Gmail endpoint with the real
google-api-python-client: exactly-once threaded sends, replies found before a send and by the
watcher, automatic replies, bounces, resync, revoked grants, and per-inbox limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import urllib.request

from pydantic import SecretStr

from nurture.contracts.sequence import EnrollmentState
from nurture.local.gmail_api import refresh_token_for
from tests.inbox.conftest import SENDER, InboxWorld, eventually

TWO_EMAILS = """
kind: sequence
id: two-emails
name: Two emails
settings: {eligible_days: every_day, unsubscribe_link: false}
steps:
  - id: first
    type: email
    subject: "Hello {{ contact.firstname }}"
    body: "First"
  - type: email
    delay: 3s
    thread_with: first
    body: "Second"
"""

ONE_EMAIL = """
kind: sequence
id: one-email
name: One email
settings: {eligible_days: every_day, unsubscribe_link: false}
steps:
  - type: email
    subject: "Hi {{ contact.firstname }}"
    body: "Just one"
  - type: todo_task
    delay: 1d
    title: Later
"""


async def test_a_send_whose_response_was_lost_is_sent_once(inbox_world: InboxWorld) -> None:
    w = inbox_world
    w.store.upsert_inbox(w.sender.id, email=SENDER, provider="local", min_spacing_seconds=0)
    w.apply(ONE_EMAIL)
    # Gmail accepts the message but the response is lost (500), and search lags 3 s behind.
    await w.admin("/_local/gmail/settings", {"search_lag_seconds": 3})
    await w.admin("/_local/faults", {"service": "gmail", "operation": "send", "kind": "accept_then_500", "count": 1})
    ada = w.contacts[0]
    started = await w.sequences.enroll("one-email", contact=ada.email, sender=SENDER)
    msg = await eventually(lambda: (m := w.store.get_message(f"msg_{started.enrollment_id}_0")) and m.status == "sent" and m,
                           timeout=45, what="the send to be confirmed")
    await asyncio.sleep(1)
    assert len(w.sent_to(ada)) == 1, "the retry must find the accepted message instead of sending again"
    assert msg.provider_message_id and msg.thread_id


async def test_follow_ups_are_threaded_and_a_reply_just_before_a_send_stops_it(inbox_world: InboxWorld) -> None:
    w = inbox_world
    w.store.upsert_inbox(w.sender.id, email=SENDER, provider="local", min_spacing_seconds=0)  # no watcher runs
    w.apply(TWO_EMAILS)
    ada, grace = w.contacts[:2]
    a = await w.sequences.enroll("two-emails", contact=ada.email, sender=SENDER)
    g = await w.sequences.enroll("two-emails", contact=grace.email, sender=SENDER)
    first_g = await eventually(lambda: w.sent_to(grace), what="Grace's first email")
    # Grace answers between the first email and the timer of the follow-up; no watcher runs, so
    # only the check just before the send can see it.
    await w.reply(grace, first_g[0].message_id)
    result = await w.result(g.workflow_id)
    assert result.exit_reason == "replied" and len(w.sent_to(grace)) == 1

    await w.result(a.workflow_id)
    first, second = w.sent_to(ada)
    assert second.subject == first.subject == "Hello Ada"
    assert second.thread_id == first.thread_id
    assert second.headers["In-Reply-To"] == first.message_id
    assert first.message_id in second.headers["References"]


async def test_watcher_unenrolls_on_reply_and_bounce_but_not_on_auto_reply(inbox_world: InboxWorld) -> None:
    w = inbox_world
    await w.inboxes.connect_local(SENDER, min_spacing=0)
    w.apply(ONE_EMAIL)
    ada, grace, linus = w.contacts[:3]
    bouncer = w.store.upsert_record("contact", {"email": "nobody@bounce.test", "firstname": "Nobody"}).record
    started = {c.id: await w.sequences.enroll("one-email", contact=c.email, sender=SENDER) for c in (ada, grace, bouncer)}
    for c in (ada, grace):
        await eventually(lambda c=c: w.sent_to(c), what=f"first email to {c.email}")
    first_ada = w.sent_to(ada)[0]
    first_grace = w.sent_to(grace)[0]
    await w.reply(ada, first_ada.message_id, "I'm away", headers={"Auto-Submitted": "auto-replied"}, subject="Automatic reply: Hi")
    await w.reply(grace, first_grace.message_id, "Let's talk")

    grace_row = await eventually(lambda: (e := w.enrollment(started[grace.id].enrollment_id)).exit_reason == "replied" and e,
                                 what="Grace's reply to unenroll her")
    bounced = await eventually(lambda: (e := w.enrollment(started[bouncer.id].enrollment_id)).exit_reason == "bounced" and e,
                               what="the bounce to unenroll")
    assert grace_row.status.value == "unenrolled" and bounced.status.value == "unenrolled"
    assert w.store.get_record(bouncer.id).properties.get("email_bounced") is True
    await eventually(lambda: any(e.type == "auto_reply" for e in w.store.list_events(enrollment_id=started[ada.id].enrollment_id)),
                     what="the auto-reply to be logged")
    assert w.enrollment(started[ada.id].enrollment_id).status.value == "active"
    assert linus.id not in started


async def test_watcher_resyncs_after_a_too_old_history_id(inbox_world: InboxWorld) -> None:
    w = inbox_world
    await w.inboxes.connect_local(SENDER, min_spacing=0)
    w.apply(ONE_EMAIL)
    ada = w.contacts[0]
    started = await w.sequences.enroll("one-email", contact=ada.email, sender=SENDER)
    await eventually(lambda: w.store.get_inbox(w.sender.id).history_id, what="the watcher's first history ID")
    first = (await eventually(lambda: w.sent_to(ada), what="the first email"))[0]
    # Stop the watcher, let Gmail forget the history, then reply: only a full resync can find it.
    await w.client.get_workflow_handle(f"inbox-watch-{w.sender.id}").terminate("simulate downtime")
    await w.admin("/_local/gmail/expire-history", {"mailbox": SENDER})
    await w.reply(ada, first.message_id)
    await w.inboxes.ensure_watcher(w.sender.id)
    row = await eventually(lambda: (e := w.enrollment(started.enrollment_id)).exit_reason == "replied" and e, what="the resync")
    assert row.status.value == "unenrolled"


async def test_revoked_grant_pauses_and_reconnecting_resumes(inbox_world: InboxWorld) -> None:
    w = inbox_world
    w.settings.encryption_key = SecretStr("test-encryption-key")
    grant = {"refresh_token": refresh_token_for(SENDER)}
    await w.inboxes.connect_grant(SENDER, grant, min_spacing=0)
    stored = w.store.inbox_credentials(w.sender.id)
    assert stored and refresh_token_for(SENDER) not in stored  # encrypted at rest
    w.apply(TWO_EMAILS)
    ada = w.contacts[0]
    started = await w.sequences.enroll("two-emails", contact=ada.email, sender=SENDER)
    await eventually(lambda: w.sent_to(ada), what="the first email")
    await w.admin("/_local/gmail/revoke", {"email": SENDER})
    paused = await eventually(lambda: (e := w.enrollment(started.enrollment_id)).status.value == "paused" and e,
                              what="the enrollment to pause")
    assert paused.status_detail == "inbox disconnected"
    assert w.store.get_inbox(w.sender.id).state == "disconnected"
    assert len(w.sent_to(ada)) == 1

    await w.admin("/_local/gmail/reconnect", {"email": SENDER})
    await w.inboxes.connect_grant(SENDER, grant)
    result = await w.result(started.workflow_id)
    assert result.exit_reason == "finished" and len(w.sent_to(ada)) == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_cap_and_spacing_hold_across_two_workers(inbox_world: InboxWorld, dev_env) -> None:  # type: ignore[no-untyped-def]
    w = inbox_world
    w.store.upsert_inbox(w.sender.id, email=SENDER, provider="local", daily_cap=3, min_spacing_seconds=2)
    w.apply(ONE_EMAIL)
    # A second worker: `nurture worker` in its own process, on the same task queue and store.
    health_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update({
        "NURTURE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "NURTURE_TASK_QUEUE": w.settings.task_queue,
        "NURTURE_DATABASE_URL": w.store.engine.url.render_as_string(hide_password=False),
        "NURTURE_GMAIL_API_ENDPOINT": w.gmail.url,
        "NURTURE_WORKER_METRICS_PORT": str(health_port),
        "NURTURE_WORKER_SDK_METRICS_PORT": str(free_port()),
        "NURTURE_HOME": str(w.settings.home),
    })
    second = subprocess.Popen([sys.executable, "-m", "nurture.cli.main", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await eventually(lambda: _get(f"http://127.0.0.1:{health_port}/healthz"), what="the second worker's health endpoint")
        assert "nurture_worker_starts" in _get(f"http://127.0.0.1:{health_port}/metrics")
        starts = await w.sequences.enroll_many("one-email", contacts=[c.email for c in w.contacts], sender=SENDER)
        await eventually(lambda: sum(len(w.sent_to(c)) for c in w.contacts) >= 3, what="three sends")
        await asyncio.sleep(3)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, second.stderr.read().decode() if second.stderr else ""
    sent = sorted(m.sent_at for c in w.contacts for m in w.sent_to(c))
    assert len(sent) == 3, "the daily cap is 3"
    assert all(b - a >= dt.timedelta(seconds=1.9) for a, b in zip(sent, sent[1:])), [str(x.time()) for x in sent]
    waiting = []
    for s in starts:
        state = await w.client.get_workflow_handle(s.workflow_id).query("status", result_type=EnrollmentState)
        if state.steps_completed == 0 and state.waiting_until and state.waiting_until > dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=23):
            waiting.append(state)
    assert len(waiting) == 2, "the two sends over the cap wait for tomorrow's slots, none is dropped"


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


async def test_a_rejected_message_waits_for_review_and_429_is_retried(inbox_world: InboxWorld) -> None:
    w = inbox_world
    w.store.upsert_inbox(w.sender.id, email=SENDER, provider="local", min_spacing_seconds=0)
    w.apply(ONE_EMAIL)
    ada, grace = w.contacts[:2]
    # Gmail rejects the message for good: the step fails with the reason, nothing is dropped.
    await w.admin("/_local/faults", {"service": "gmail", "operation": "send", "kind": "400", "count": 1})
    rejected = await w.sequences.enroll("one-email", contact=ada.email, sender=SENDER)
    row = await eventually(lambda: (e := w.enrollment(rejected.enrollment_id)).status.value == "needs_review" and e,
                           what="needs review")
    assert "Gmail rejected the send (400)" in (row.status_detail or "") and w.sent_to(ada) == []
    await w.sequences.resume(rejected.enrollment_id)  # a person looked at it: retry the step
    await eventually(lambda: w.sent_to(ada), what="the resumed send")

    # Rate limited: retried after Retry-After, then sent once.
    await w.admin("/_local/faults", {"service": "gmail", "operation": "send", "kind": "429", "count": 1, "retry_after": 1})
    limited = await w.sequences.enroll("one-email", contact=grace.email, sender=SENDER)
    await eventually(lambda: w.sent_to(grace), what="the send after the 429")
    assert len(w.sent_to(grace)) == 1 and w.enrollment(limited.enrollment_id).status.value == "active"
