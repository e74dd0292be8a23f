"""Bookkeeping of sequence enrollments: the enrollment index, the schedule, company unenroll."""

from __future__ import annotations

import datetime as dt
import logging

from temporalio import activity

from activities.deps import ActivityDeps
from activities.schedule_rules import due_after, resolve_rules
from activities.sequence_email import message_key_prefix
from nurture.contracts.sequence import (
    ActivityName,
    BeginEnrollmentInput,
    CompanyUnenrollInput,
    ExitReason,
    PlanNextInput,
    RecordStatusInput,
    StepOutcome,
    StepResult,
    UnenrollRequest,
)
from nurture.store.models import BOUNCED_PROPERTY, OPT_OUT_PROPERTY, Enrollment, EnrollmentStatus

log = logging.getLogger(__name__)



class SequenceEnrollmentActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name=ActivityName.BEGIN_ENROLLMENT)
    def begin_enrollment(self, inp: BeginEnrollmentInput) -> StepResult:
        """Record the enrollment in the index (idempotent) and plan the first step."""
        store = self.deps.store
        store.upsert_enrollment(
            Enrollment(
                id=inp.enrollment_id, kind="sequence", definition_id=inp.definition_id,
                definition_version=inp.definition_version, record_id=inp.contact_id, company_id=inp.company_id,
                sender_id=inp.sender_id, workflow_id=inp.workflow_id, status=EnrollmentStatus.ACTIVE,
                current_step=inp.start_step + 1, enrolled_at=inp.enrolled_at, updated_at=inp.enrolled_at,
            )
        )
        rules = resolve_rules(inp.settings, store.get_user(inp.sender_id), store.get_record(inp.contact_id), self.deps.settings)
        due = due_after(inp.enrolled_at, inp.first_delay, rules, immediate_first=True)
        return StepResult(outcome=StepOutcome.DONE, next_due=due)

    @activity.defn(name=ActivityName.PLAN_NEXT)
    def plan_next_step(self, inp: PlanNextInput) -> StepResult:
        store = self.deps.store
        rules = resolve_rules(inp.settings, store.get_user(inp.sender_id), store.get_record(inp.contact_id), self.deps.settings)
        return StepResult(outcome=StepOutcome.DONE, next_due=due_after(inp.anchor, inp.delay, rules))

    @activity.defn(name=ActivityName.RECORD_STATUS)
    def record_status(self, inp: RecordStatusInput) -> None:
        """Keep the index in step with the workflow. On an exit: close open tasks, and flag the
        contact after a bounce or an opt-out so later enrollments are refused."""
        store = self.deps.store
        fields: dict[str, object] = {"status": inp.status, "status_detail": inp.status_detail}
        if inp.current_step is not None:
            fields["current_step"] = inp.current_step
        if inp.exit_reason is not None:
            fields["exit_reason"] = inp.exit_reason
        elif not inp.ended:
            # Back to active (or paused) after "needs review": the failure text kept in
            # exit_reason no longer applies and must not linger on a running enrollment.
            fields["exit_reason"] = None
        if inp.ended:
            fields["ended_at"] = dt.datetime.now(dt.timezone.utc)
        store.update_enrollment(inp.enrollment_id, **fields)
        if inp.ended:
            # Give back the inbox's send slots this enrollment reserved but will not use.
            store.release_unsent_slots(message_key_prefix(inp.enrollment_id))
            # An exit (reply, bounce, unenroll, ...) makes the rep's open tasks moot. A finished
            # sequence does not: its open tasks are steps that did not wait for completion (a
            # last "call" or "to-do" step would otherwise be canceled the moment it is created).
            if inp.exit_reason != ExitReason.FINISHED:
                store.cancel_open_tasks(inp.enrollment_id)
            if inp.contact_id and inp.exit_reason == ExitReason.BOUNCED:
                store.upsert_record("contact", {BOUNCED_PROPERTY: True}, record_id=inp.contact_id)
            if inp.contact_id and inp.exit_reason == ExitReason.UNSUBSCRIBED:
                store.upsert_record("contact", {OPT_OUT_PROPERTY: True}, record_id=inp.contact_id)

    @activity.defn(name=ActivityName.UNENROLL_COMPANY)
    async def unenroll_company_peers(self, inp: CompanyUnenrollInput) -> int:
        """Signal every other open enrollment of the same company in the same sequence (found
        through the index, by key) to leave. Returns how many were signalled."""
        import asyncio

        peers = await asyncio.to_thread(
            self.deps.store.open_enrollments, company_id=inp.company_id, definition_id=inp.definition_id
        )
        client = self.deps.client or activity.client()
        count = 0
        for peer in peers:
            if peer.id == inp.enrollment_id:
                continue
            handle = client.get_workflow_handle(peer.workflow_id)
            try:
                await handle.signal(
                    "unenroll",
                    UnenrollRequest(
                        enrollment_id=peer.id, reason=ExitReason.COMPANY_REPLIED,
                        detail=f"enrollment {inp.enrollment_id} of the same company: {inp.trigger.value}",
                    ),
                )
                count += 1
            except Exception as exc:  # a peer that closed meanwhile needs nothing
                log.info("company unenroll: %s not signalled: %s", peer.id, exc)
        return count
