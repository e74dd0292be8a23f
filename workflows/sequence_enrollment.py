"""One sales-sequence enrollment: one contact, one sender, one durable workflow.

The workflow ID is ``sequence-contact-<contact>``: Temporal itself refuses a second running
sequence for the same contact. The enrollment's own ID (in the input and in every signal) tells
this enrollment apart from later ones that reuse the workflow ID.

Reading guide: ``run`` is the schedule loop; each step type lives in ``sequence_steps/``; signals
only set state that the loop's waits observe; every side effect is an activity.
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from nurture import search_attributes as sa
    from nurture.contracts.sequence import (
        WORKFLOW_NAME,
        ActivityName,
        BeginEnrollmentInput,
        CompanyUnenrollInput,
        EnrollmentSignal,
        EnrollmentState,
        INBOX_DISCONNECTED,
        ExitReason,
        RecordStatusInput,
        SequenceEnrollmentInput,
        SequenceEnrollmentResult,
        StepOutcome,
        StepResult,
        TaskCompleted,
        UnenrollRequest,
    )
    from nurture.definitions.sequence import EmailStep

from workflows.sequence_steps.base import StepRun
from workflows.sequence_steps.email import run_email_step
from workflows.sequence_steps.task import run_task_step

# workflow.patched() IDs: each marks a change that running histories would notice.
PATCH_INBOX_DISCONNECT_PAUSES = "inbox-disconnect-pauses"

BOOKKEEPING_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
BOOKKEEPING_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name=WORKFLOW_NAME)
class SequenceEnrollmentWorkflow:
    @workflow.init
    def __init__(self, inp: SequenceEnrollmentInput) -> None:
        # The input is known before any signal handler runs: a signal that arrives with the
        # workflow's first task (e.g. "replied" or "pause" sent right after enroll) is applied
        # before ``run`` starts, and without the input ``_mine`` used to drop it as "not mine".
        self._input: SequenceEnrollmentInput | None = inp
        self._status = "active"
        self._step: int | None = None
        self._steps_completed = 0
        self._waiting_for = "starting"
        self._waiting_until: dt.datetime | None = None
        self._paused = False
        self._paused_remaining: timedelta | None = None
        self._exit: ExitReason | None = None
        self._exit_detail = ""
        self._failure: str | None = None
        self._retry_requested = False
        self._completions: dict[str, dt.datetime] = {}

    # ------------------------------------------------------------------------------ the loop
    @workflow.run
    async def run(self, inp: SequenceEnrollmentInput) -> SequenceEnrollmentResult:
        self._input = inp
        steps = inp.definition.steps
        begin = await workflow.execute_activity(
            ActivityName.BEGIN_ENROLLMENT,
            BeginEnrollmentInput(
                enrollment_id=inp.enrollment_id,
                workflow_id=workflow.info().workflow_id,
                definition_id=inp.definition.id,
                definition_version=inp.definition_version,
                contact_id=inp.contact_id,
                company_id=inp.company_id,
                sender_id=inp.sender_id,
                start_step=inp.start_step,
                first_delay=steps[inp.start_step].delay,
                settings=inp.definition.settings,
                enrolled_at=workflow.now(),
            ),
            result_type=StepResult,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
            summary="record enrollment, plan first step",
        )
        due = begin.next_due or workflow.now()
        index = inp.start_step
        # An immediate first step goes at once, like HubSpot's first email. A first step with a
        # delay was planned under the rules, so a late timer must not break them (it used to be
        # sent outside the window or on a weekend when its timer fired late).
        enforce_rules = not steps[inp.start_step].delay.is_zero

        while index < len(steps) and self._exit is None:
            if not await self._wait_until(due, index):
                break
            self._set_step(index)
            run = StepRun(inp, index, due, enforce_rules, should_stop=lambda: self._exit is not None)
            result = await self._run_step(run)
            if result is None:  # failed permanently; a person resumed it: run the step again
                due, enforce_rules = workflow.now(), False
                continue
            if self._exit is not None:
                break
            if result.outcome is StepOutcome.DEFERRED:
                # The timer fired late, outside the allowed days or window: never send outside
                # it; wait for the next allowed moment instead.
                due, enforce_rules = result.deferred_until or workflow.now(), True
                continue
            if result.outcome is StepOutcome.EXIT:
                self._request_exit(result.exit_reason or ExitReason.MANUAL, result.detail)
                break
            self._steps_completed += 1
            index += 1
            due = result.next_due or workflow.now()
            enforce_rules = True

        return await self._finish()

    async def _run_step(self, run: StepRun) -> StepResult | None:
        step = run.enrollment.definition.steps[run.index]
        self._describe(f"Running {run.label}", None)
        try:
            if isinstance(step, EmailStep):
                return await run_email_step(run)
            return await run_task_step(run, self._completions, lambda text: self._describe(text, None))
        except ActivityError as err:
            cause = err.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            if (
                isinstance(cause, ApplicationError)
                and cause.type == "InboxDisconnected"
                and workflow.patched(PATCH_INBOX_DISCONNECT_PAUSES)
            ):
                await self._paused_for_inbox(run.index, reason)
            else:
                await self._needs_review(run.index, reason)
            return None if self._exit is None else StepResult(outcome=StepOutcome.EXIT)

    async def _wait_until(self, due: dt.datetime, index: int) -> bool:
        """Sleep until ``due``, honouring pause (the remaining delay is kept) and exit signals.
        Returns False when the enrollment must stop."""
        label = f"step {index + 1} ({self._input.definition.steps[index].type})"  # type: ignore[union-attr]
        while self._exit is None:
            if self._paused:
                remaining = max(due - workflow.now(), timedelta(0))
                self._paused_remaining = remaining
                self._set_status("paused")
                self._describe(f"Paused; {label} will be due {_human(remaining)} after resume", None)
                await self._record_status("paused")
                await workflow.wait_condition(lambda: not self._paused or self._exit is not None)
                if self._exit is not None:
                    return False
                due = workflow.now() + remaining
                self._paused_remaining = None
                self._set_status("active")
                await self._record_status("active")
                continue
            remaining = due - workflow.now()
            if remaining <= timedelta(0):
                return True
            self._describe(f"Waiting to run {label}", due)
            try:
                await workflow.wait_condition(
                    lambda: self._paused or self._exit is not None,
                    timeout=remaining,
                    timeout_summary=f"{label} due {due.isoformat(timespec='seconds')}",
                )
            except TimeoutError:
                return self._exit is None
        return False

    async def _paused_for_inbox(self, index: int, reason: str) -> None:
        """The sender's inbox lost its grant. Unlike HubSpot, the enrollment is not dropped: it
        pauses where it stopped and reconnecting the inbox resumes it (``resume`` signal)."""
        self._failure = f"step {index + 1}: {reason}"
        self._paused = True
        self._set_status("paused")
        self._describe(f"Paused: {INBOX_DISCONNECTED} ({reason}). Reconnect the inbox to resume step {index + 1}.", None)
        await self._record_status("paused", status_detail=INBOX_DISCONNECTED)
        await workflow.wait_condition(lambda: not self._paused or self._exit is not None)
        self._retry_requested = False
        if self._exit is None:
            self._failure = None
            self._set_status("active")
            await self._record_status("active")

    async def _needs_review(self, index: int, reason: str) -> None:
        """A step failed for a reason retries cannot fix (missing token, rejected message). The
        enrollment waits for a person: ``resume`` runs the step again, ``unenroll`` ends it."""
        self._failure = f"step {index + 1}: {reason}"
        # Forget earlier resumes *before* anything can yield: the query shows "needs review" from
        # here on, and a resume that arrives while the index is being written is this review's
        # answer (it used to be cleared after that write, leaving the enrollment stuck).
        self._retry_requested = False
        self._set_status("needs_review")
        self._describe(f"Needs review: {self._failure}. Resume to retry the step, or unenroll.", None)
        await self._record_status("needs_review", status_detail=self._failure[:500])
        await workflow.wait_condition(lambda: self._retry_requested or self._exit is not None)
        self._retry_requested = False
        self._paused = False
        if self._exit is None:
            self._failure = None
            self._set_status("active")
            await self._record_status("active")

    async def _finish(self) -> SequenceEnrollmentResult:
        inp = self._input
        assert inp is not None
        reason = self._exit or ExitReason.FINISHED
        status = "finished" if reason is ExitReason.FINISHED else "unenrolled"
        self._set_status(status, exit_reason=reason.value)
        self._describe(f"Ended: {reason.value}" + (f" ({self._exit_detail})" if self._exit_detail else ""), None)
        index_reason = reason.value
        if reason is ExitReason.MANUAL and self._exit_detail:
            # The index keeps the rep's reason beside "manual" (the search attribute and the
            # result stay the bare enum value); without this it was only in the live query.
            index_reason = f"{reason.value}: {self._exit_detail}"[:200]
        await self._record_status(status, exit_reason=index_reason, ended=True)
        if (
            reason in (ExitReason.REPLIED, ExitReason.MEETING_BOOKED)
            and inp.definition.settings.unenroll_company_on_reply
            and inp.company_id
        ):
            await workflow.execute_activity(
                ActivityName.UNENROLL_COMPANY,
                CompanyUnenrollInput(
                    enrollment_id=inp.enrollment_id, definition_id=inp.definition.id,
                    company_id=inp.company_id, trigger=reason,
                ),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=BOOKKEEPING_RETRY,
                summary="unenroll the company's other contacts from this sequence",
            )
        return SequenceEnrollmentResult(
            enrollment_id=inp.enrollment_id, status=status, exit_reason=reason.value,
            steps_completed=self._steps_completed,
        )

    # ----------------------------------------------------------------------------- signals
    def _mine(self, signal: EnrollmentSignal) -> bool:
        if self._input is not None and signal.enrollment_id == self._input.enrollment_id:
            return True
        workflow.logger.warning(
            "ignoring a signal for enrollment %s: this run is enrollment %s",
            signal.enrollment_id, self._input.enrollment_id if self._input else "?",
        )
        return False

    def _request_exit(self, reason: ExitReason, detail: str = "") -> None:
        if self._exit is None:  # the first exit wins; later ones are late news
            self._exit = reason
            self._exit_detail = detail

    @workflow.signal(name="replied")
    def replied(self, signal: EnrollmentSignal) -> None:
        if self._mine(signal):
            self._request_exit(ExitReason.REPLIED, signal.detail)

    @workflow.signal(name="meeting_booked")
    def meeting_booked(self, signal: EnrollmentSignal) -> None:
        if self._mine(signal):
            self._request_exit(ExitReason.MEETING_BOOKED, signal.detail)

    @workflow.signal(name="bounced")
    def bounced(self, signal: EnrollmentSignal) -> None:
        if self._mine(signal):
            self._request_exit(ExitReason.BOUNCED, signal.detail)

    @workflow.signal(name="unsubscribed")
    def unsubscribed(self, signal: EnrollmentSignal) -> None:
        if self._mine(signal):
            self._request_exit(ExitReason.UNSUBSCRIBED, signal.detail)

    @workflow.signal(name="unenroll")
    def unenroll(self, request: UnenrollRequest) -> None:
        if self._mine(request):
            # Contact events have their own signals; "unenroll" may only say by hand or because of
            # the company, so no client can end an enrollment as "finished" or "bounced" with it.
            reason = request.reason if request.reason in (ExitReason.MANUAL, ExitReason.COMPANY_REPLIED) else ExitReason.MANUAL
            self._request_exit(reason, request.detail)

    @workflow.signal(name="pause")
    def pause(self, signal: EnrollmentSignal) -> None:
        if self._mine(signal):
            self._paused = True

    @workflow.signal(name="resume")
    def resume(self, signal: EnrollmentSignal) -> None:
        if self._mine(signal):
            self._paused = False
            self._retry_requested = True

    @workflow.signal(name="task_completed")
    def task_completed(self, signal: TaskCompleted) -> None:
        if self._mine(signal):
            # The next delay counts from the completion. ``completed_at`` comes from the store's
            # clock (another host); never let it read earlier than the moment this workflow
            # learns of it, or the next step's due time may already be in the workflow's past and
            # the delay is skipped (seen under the time-skipping server, and with clock skew).
            # Same rule as the activities' max(wall clock, workflow start-of-step time).
            completed_at = signal.completed_at
            if completed_at.tzinfo is None:  # a naive time from a caller: UTC (comparing would raise)
                completed_at = completed_at.replace(tzinfo=dt.timezone.utc)
            self._completions.setdefault(signal.task_id, max(completed_at, workflow.now()))

    # ------------------------------------------------------------------------------- query
    @workflow.query(name="status")
    def status(self) -> EnrollmentState:
        inp = self._input
        return EnrollmentState(
            enrollment_id=inp.enrollment_id if inp else "",
            status=self._status,
            current_step=(self._step + 1) if self._step is not None else None,
            steps_total=len(inp.definition.steps) if inp else 0,
            steps_completed=self._steps_completed,
            waiting_for=self._waiting_for,
            waiting_until=self._waiting_until,
            paused_remaining_seconds=self._paused_remaining.total_seconds() if self._paused_remaining is not None else None,
            exit_reason=self._exit.value if self._exit else None,
            exit_detail=self._exit_detail or None,
            failure=self._failure,
        )

    # ----------------------------------------------------------------------------- helpers
    def _describe(self, text: str, until: dt.datetime | None) -> None:
        self._waiting_for = text
        self._waiting_until = until
        suffix = f" until {until.isoformat(timespec='seconds')}" if until else ""
        workflow.set_current_details(f"{text}{suffix}")

    def _set_step(self, index: int) -> None:
        if self._step != index:
            self._step = index
            workflow.upsert_search_attributes([SearchAttributePair(sa.STEP, index + 1)])

    def _set_status(self, status: str, exit_reason: str | None = None) -> None:
        self._status = status
        pairs = [SearchAttributePair(sa.STATUS, status)]
        if exit_reason:
            pairs.append(SearchAttributePair(sa.EXIT_REASON, exit_reason))
        workflow.upsert_search_attributes(pairs)

    async def _record_status(
        self, status: str, *, exit_reason: str | None = None, ended: bool = False, status_detail: str | None = None,
    ) -> None:
        inp = self._input
        assert inp is not None
        await workflow.execute_activity(
            ActivityName.RECORD_STATUS,
            RecordStatusInput(
                enrollment_id=inp.enrollment_id, status=status, current_step=(self._step + 1) if self._step is not None else None,
                exit_reason=exit_reason, ended=ended, contact_id=inp.contact_id, status_detail=status_detail,
            ),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
            summary=f"record status {status}",
        )


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if v]
    return " ".join(parts) or "0s"
