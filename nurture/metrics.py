"""Nurture's own Prometheus metrics (the worker serves them at :9464/metrics)."""

from __future__ import annotations

from prometheus_client import Counter

EMAILS_SENT = Counter("nurture_emails_sent", "Emails sent, by channel", ["channel"])
EMAIL_SENDS_SKIPPED = Counter(
    "nurture_email_sends_deduplicated", "Sends skipped because the message was already sent (a retried activity)"
)
STEPS_DEFERRED = Counter("nurture_steps_deferred", "Steps whose timer fired outside the allowed days or window")
TASKS_CREATED = Counter("nurture_tasks_created", "Tasks created by sequence steps")
ENROLLMENTS_ENDED = Counter("nurture_enrollments_ended", "Enrollments that ended, by kind and exit reason", ["kind", "reason"])
ENROLLMENTS_NEEDING_REVIEW = Counter("nurture_enrollments_needs_review", "Enrollments moved to needs review")
WORKERS_STARTED = Counter("nurture_worker_starts", "Worker processes started")
