"""Enroll contacts in sequences and act on enrollments (Python API; the CLI and HTTP call these).

"One active sequence per contact" is enforced by Temporal: the workflow ID is per contact and the
start uses the FAIL conflict policy, so two concurrent enrollments cannot both start — there is no
check-then-start race. The store is read only to explain a refusal and to validate input.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from nurture import search_attributes
from nurture.contracts.sequence import (
    WORKFLOW_NAME,
    EnrollmentSignal,
    EnrollmentState,
    ExitReason,
    SequenceEnrollmentInput,
    SignalName,
    TaskCompleted,
    UnenrollRequest,
)
from nurture.definitions import SequenceDefinition, parse_definition
from nurture.errors import Conflict, InvalidInput, NotFound, Refused
from nurture.ids import new_id, sequence_workflow_id
from nurture.settings import Settings
from nurture.store import Store
from nurture.store.models import BOUNCED_PROPERTY, OPT_OUT_PROPERTY, DefinitionStatus, Enrollment, EnrollmentStatus, Record, RecordType, Task



class EnrollmentStarted(BaseModel):
    enrollment_id: str
    workflow_id: str
    run_id: str | None
    definition_id: str
    definition_version: int
    contact_id: str
    sender_id: str
    start_step: int


class EnrollmentView(BaseModel):
    """What ``nurture status`` shows: the index row and, while it runs, the live query."""

    enrollment: Enrollment
    live: EnrollmentState | None = None


@dataclass
class Sequences:
    client: Client
    store: Store
    settings: Settings

    async def enroll(
        self, definition_id: str, *, contact: str, sender: str, start_step: int = 1, version: int | None = None,
    ) -> EnrollmentStarted:
        """Enroll one contact (ID or email) in a sequence, sent from ``sender`` (user ID or email).
        ``start_step`` is 1-based. Raises Refused with a clear reason when the rules say no."""
        definition, ver = await asyncio.to_thread(self._definition, definition_id, version)
        contact_rec, sender_user = await asyncio.to_thread(self._contact_and_sender, contact, sender)
        if not 1 <= start_step <= len(definition.steps):
            raise InvalidInput(f"start step {start_step} is out of range: {definition.id} has steps 1 to {len(definition.steps)}")
        company = await asyncio.to_thread(self.store.primary_company, contact_rec.id)
        enrollment_id = new_id("enr")
        workflow_id = sequence_workflow_id(contact_rec.id)
        name = contact_rec.display_name
        try:
            handle = await self.client.start_workflow(
                WORKFLOW_NAME,
                SequenceEnrollmentInput(
                    enrollment_id=enrollment_id, definition=definition, definition_version=ver,
                    contact_id=contact_rec.id, company_id=company.id if company else None,
                    sender_id=sender_user.id, start_step=start_step - 1,
                ),
                id=workflow_id,
                task_queue=self.settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=search_attributes.enrollment_attributes(
                    kind="sequence", definition_id=definition.id, version=ver, enrollment_id=enrollment_id,
                    record_id=contact_rec.id, company_id=company.id if company else None, sender_id=sender_user.id,
                    step=start_step, status="active",
                ),
                # Summaries are shown in the Temporal UI; payloads there are not encrypted, so they
                # name the contact but carry no email address.
                static_summary=f"Sequence {definition.name!r}: {name} (sender {sender_user.name or sender_user.id})",
                static_details=(
                    f"Enrollment {enrollment_id}\n\nSequence `{definition.id}` v{ver}, {len(definition.steps)} steps, "
                    f"starting at step {start_step}.\nContact `{contact_rec.id}`"
                    + (f", company `{company.id}`" if company else "") + f".\nSender `{sender_user.id}`."
                ),
            )
        except WorkflowAlreadyStartedError:
            raise await self._already_enrolled(contact_rec) from None
        now = dt.datetime.now(dt.timezone.utc)
        await asyncio.to_thread(self.store.upsert_enrollment, Enrollment(
            id=enrollment_id, kind="sequence", definition_id=definition.id, definition_version=ver,
            record_id=contact_rec.id, company_id=company.id if company else None, sender_id=sender_user.id,
            workflow_id=workflow_id, status=EnrollmentStatus.ACTIVE, current_step=start_step,
            enrolled_at=now, updated_at=now,
        ))
        return EnrollmentStarted(
            enrollment_id=enrollment_id, workflow_id=workflow_id, run_id=handle.first_execution_run_id or handle.result_run_id,
            definition_id=definition.id, definition_version=ver, contact_id=contact_rec.id,
            sender_id=sender_user.id, start_step=start_step,
        )

    async def enroll_many(
        self, definition_id: str, *, contacts: list[str], sender: str, start_step: int = 1,
    ) -> list[EnrollmentStarted | Exception]:
        """Bulk enrollment: every contact is tried; each result is a start or the refusal."""
        sem = asyncio.Semaphore(16)

        async def one(contact: str) -> EnrollmentStarted | Exception:
            async with sem:
                try:
                    return await self.enroll(definition_id, contact=contact, sender=sender, start_step=start_step)
                except (Refused, NotFound, InvalidInput) as exc:
                    return exc

        return list(await asyncio.gather(*(one(c) for c in contacts)))

    # --------------------------------------------------------------------------- actions
    async def unenroll(self, enrollment_id: str, *, reason: str = "unenrolled by hand") -> Enrollment:
        enrollment = await self._open(enrollment_id)
        await self._signal(enrollment, SignalName.UNENROLL, UnenrollRequest(enrollment_id=enrollment.id, reason=ExitReason.MANUAL, detail=reason))
        return enrollment

    async def pause(self, enrollment_id: str) -> Enrollment:
        enrollment = await self._open(enrollment_id)
        await self._signal(enrollment, SignalName.PAUSE, EnrollmentSignal(enrollment_id=enrollment.id))
        return enrollment

    async def resume(self, enrollment_id: str) -> Enrollment:
        enrollment = await self._open(enrollment_id)
        await self._signal(enrollment, SignalName.RESUME, EnrollmentSignal(enrollment_id=enrollment.id))
        return enrollment

    async def report(self, enrollment_id: str, event: ExitReason, detail: str = "") -> Enrollment:
        """Tell an enrollment the contact replied, booked a meeting, bounced or unsubscribed."""
        names = {
            ExitReason.REPLIED: SignalName.REPLIED, ExitReason.MEETING_BOOKED: SignalName.MEETING_BOOKED,
            ExitReason.BOUNCED: SignalName.BOUNCED, ExitReason.UNSUBSCRIBED: SignalName.UNSUBSCRIBED,
        }
        if event not in names:
            raise InvalidInput(f"{event.value} is not an event; use replied, meeting_booked, bounced or unsubscribed")
        enrollment = await self._open(enrollment_id)
        await self._signal(enrollment, names[event], EnrollmentSignal(enrollment_id=enrollment.id, detail=detail))
        return enrollment

    async def complete_task(self, task_id: str) -> Task:
        """Complete a task; if a sequence waits on it, signal the enrollment to go on."""
        task, changed = await asyncio.to_thread(self.store.complete_task, task_id)
        if task.enrollment_id:
            enrollment = await asyncio.to_thread(self.store.get_enrollment, task.enrollment_id)
            if enrollment.status.is_open:
                await self._signal(enrollment, SignalName.TASK_COMPLETED, TaskCompleted(
                    enrollment_id=enrollment.id, task_id=task.id, completed_at=task.completed_at or dt.datetime.now(dt.timezone.utc),
                ))
        return task

    async def status(self, enrollment_id: str) -> EnrollmentView:
        enrollment = await asyncio.to_thread(self.store.get_enrollment, enrollment_id)
        live = None
        if enrollment.status.is_open:
            try:
                handle = self.client.get_workflow_handle(enrollment.workflow_id)
                state = await handle.query("status", result_type=EnrollmentState)
                if state.enrollment_id == enrollment.id:
                    live = state
            except RPCError:
                live = None
        return EnrollmentView(enrollment=enrollment, live=live)

    # --------------------------------------------------------------------------- helpers
    def _definition(self, definition_id: str, version: int | None) -> tuple[SequenceDefinition, int]:
        row = self.store.get_definition(definition_id)
        if row.kind != "sequence":
            raise InvalidInput(f"{definition_id!r} is a {row.kind}, not a sequence")
        if row.status is not DefinitionStatus.ON:
            raise Refused(
                f"sequence {definition_id!r} is {row.status.value}; turn it on with `nurture definitions on {definition_id}`",
                reason="definition_off",
            )
        stored = self.store.get_definition_version(definition_id, version)
        definition = parse_definition(stored.body, f"{definition_id} v{stored.version}")
        assert isinstance(definition, SequenceDefinition)
        return definition, stored.version

    def _contact_and_sender(self, contact: str, sender: str) -> tuple[Record, object]:
        rec = self.store.find_record(RecordType.CONTACT, contact)
        if not rec.email:
            raise Refused(f"contact {rec.id} has no email address; set one with `nurture records upsert`", reason="no_email")
        if rec.properties.get(OPT_OUT_PROPERTY):
            raise Refused(f"contact {rec.id} unsubscribed from sales email and cannot be enrolled", reason="unsubscribed")
        if rec.properties.get(BOUNCED_PROPERTY):
            raise Refused(f"contact {rec.id} previously bounced and cannot be enrolled; fix the address first", reason="bounced")
        user = self.store.find_user(sender)
        inbox = self.store.get_inbox(user.id)
        if inbox is None or inbox.state != "connected":
            raise Refused(
                f"sender {user.email} has no connected inbox; connect one with `nurture inbox connect {user.email}`",
                reason="no_inbox",
            )
        return rec, user

    async def _already_enrolled(self, contact: Record) -> Refused:
        # Ask the running workflow first: it is the lock, and it says which enrollment holds it
        # in its search attributes. The index may not have the row yet (a concurrent enroll that
        # won a moment ago writes it after its start returns) or may be stale; it is the fallback.
        enrollment_id = definition_id = None
        try:
            desc = await self.client.get_workflow_handle(sequence_workflow_id(contact.id)).describe()
            if desc.status == WorkflowExecutionStatus.RUNNING:
                enrollment_id = desc.typed_search_attributes.get(search_attributes.ENROLLMENT_ID)
                definition_id = desc.typed_search_attributes.get(search_attributes.DEFINITION_ID)
        except RPCError:
            pass
        if enrollment_id is None:
            current = await asyncio.to_thread(self.store.open_enrollments, record_id=contact.id, kind="sequence")
            if current:
                enrollment_id, definition_id = current[0].id, current[0].definition_id
        which = f" {definition_id!r} (enrollment {enrollment_id})" if enrollment_id else " another sequence"
        return Refused(
            f"contact {contact.id} is already in sequence{which}; a contact can be in one sequence at a time",
            reason="already_enrolled",
            details={"enrollment_id": enrollment_id},
        )

    async def _open(self, enrollment_id: str) -> Enrollment:
        enrollment = await asyncio.to_thread(self.store.get_enrollment, enrollment_id)
        if not enrollment.status.is_open:
            raise Conflict(f"enrollment {enrollment_id} has already ended ({enrollment.status.value}: {enrollment.exit_reason})")
        return enrollment

    async def _signal(self, enrollment: Enrollment, name: str, payload: BaseModel) -> None:
        handle = self.client.get_workflow_handle(enrollment.workflow_id)
        try:
            desc = await handle.describe()
        except RPCError:
            raise NotFound(f"the workflow of enrollment {enrollment.id} ({enrollment.workflow_id}) was not found") from None
        if desc.status != WorkflowExecutionStatus.RUNNING:
            raise Conflict(f"enrollment {enrollment.id} is no longer running")
        await handle.signal(name, payload)
