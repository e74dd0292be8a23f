"""The time an activity acts at.

The wall clock, but never earlier than the workflow time the step started at nor the moment
Temporal scheduled this attempt: a worker whose clock lags the server's (or the time-skipping test
server) must not see the past, and a retried attempt must see time move on.
"""

from __future__ import annotations

import datetime as dt

from temporalio import activity


def activity_now(step_started_at: dt.datetime) -> dt.datetime:
    moments = [dt.datetime.now(dt.timezone.utc), step_started_at]
    if activity.in_activity():
        scheduled = activity.info().current_attempt_scheduled_time
        if scheduled is not None:
            moments.append(scheduled if scheduled.tzinfo else scheduled.replace(tzinfo=dt.timezone.utc))
    return max(moments)
