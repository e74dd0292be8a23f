"""Which workflows and activities a Nurture worker runs. The one place to add a new one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.deps import ActivityDeps
from activities.inbox_watch import InboxWatchActivities
from activities.sequence_email import SequenceEmailActivities
from activities.sequence_enrollment import SequenceEnrollmentActivities
from activities.sequence_tasks import SequenceTaskActivities
from workflows.inbox_watcher import InboxWatcherWorkflow
from workflows.sequence_enrollment import SequenceEnrollmentWorkflow

WORKFLOWS: Sequence[type] = (SequenceEnrollmentWorkflow, InboxWatcherWorkflow)


def activities(deps: ActivityDeps) -> list[Callable[..., Any]]:
    enrollment = SequenceEnrollmentActivities(deps)
    email = SequenceEmailActivities(deps)
    tasks = SequenceTaskActivities(deps)
    inbox = InboxWatchActivities(deps)
    return [
        enrollment.begin_enrollment,
        enrollment.plan_next_step,
        enrollment.record_status,
        enrollment.unenroll_company_peers,
        email.send_email,
        tasks.create_task,
        inbox.poll_history,
    ]
