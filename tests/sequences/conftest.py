"""A small world for sequence tests: a sender with a local inbox, contacts of one company.

Time: every test shares the session's time-skipping server, whose clock only moves forward.
Tests never assume a calendar date for a workflow: they read the server's clock
(``World.now``), move it on with ``World.skip``/``skip_to``/``align`` (no real sleeping),
observe waits through the workflow's ``status`` query (``World.wait_state``) and run an
enrollment to its end with ``World.result`` (which skips exactly to each timer). Exact dates are
pinned by calling the activities directly (``test_schedule_activities.py``).

The test server stops its clock while a workflow or activity task is outstanding, for good if
that task's worker is gone; ``World.worker`` therefore lets tasks finish before it stops, and
the fixtures terminate what a test leaves running.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.deps import ActivityDeps
from activities.sequence_email import SequenceEmailActivities
from nurture.contracts.sequence import ActivityName, EnrollmentState, SendEmailInput, SequenceEnrollmentResult, StepResult
from nurture.definitions import definition_body, parse_definition
from nurture.ids import sequence_workflow_id
from nurture.local import MailStore
from nurture.local.outbox import OutboxMessage, list_outbox
from nurture.settings import Settings
from nurture.store import Store
from nurture.store.models import Record, User
from starters.sequences import EnrollmentStarted, Sequences

UTC = dt.timezone.utc


@dataclass
class World:
    store: Store
    settings: Settings
    mail: MailStore
    sequences: Sequences
    sender: User
    company: Record
    contacts: list[Record]
    env: WorkflowEnvironment | None = None

    # ------------------------------------------------------------------ records and mail
    def apply(self, text: str, **overrides: Any) -> str:
        data = yaml.safe_load(text)
        data.update(overrides)
        d = parse_definition(data, "test")
        self.store.save_definition(d.id, d.kind, d.name, definition_body(d))
        return d.id

    def sent_to(self, contact: Record) -> list[OutboxMessage]:
        """Messages the local Gmail captured for this contact, oldest first."""
        out = [m for m in list_outbox(self.mail, limit=1000, channel="gmail") if contact.email in m.to]
        return sorted(out, key=lambda m: (m.sent_at, m.id))

    def contact(self, record: Record) -> Record:
        """The record as stored now (activities may have flagged it)."""
        return self.store.get_record(record.id)

    # --------------------------------------------------------------------------- temporal
    @property
    def client(self) -> Any:
        return self.sequences.client

    def handle(self, started: EnrollmentStarted | str) -> WorkflowHandle[Any, SequenceEnrollmentResult]:
        wid = started if isinstance(started, str) else started.workflow_id
        return self.client.get_workflow_handle(wid, result_type=SequenceEnrollmentResult)

    async def enroll(self, definition_id: str, contact: Record | None = None, **kwargs: Any) -> EnrollmentStarted:
        contact = contact or self.contacts[0]
        return await self.sequences.enroll(definition_id, contact=contact.email or contact.id, sender=self.sender.email, **kwargs)

    async def result(self, started: EnrollmentStarted, timeout: float = 30) -> SequenceEnrollmentResult:
        """Drive the enrollment to its end (see ``drive``) and return its result."""
        await self.drive(started, timeout=timeout)
        return await self.handle(started).result()

    async def drive(
        self, started: EnrollmentStarted, until: Callable[[WorkflowHistory], bool] | None = None, timeout: float = 30,
    ) -> WorkflowHistory:
        """Let the enrollment run, skipping the server clock exactly to each timer its history
        shows, until ``until(history)`` holds or the workflow closed; returns the history.

        Why not ``handle.result()`` with time skipping unlocked: once nothing is left to run, the
        test server skips to its next timer anyway — a ten-year run timeout — and every other
        workflow of the test would jump ten years ahead. Why the history and not the status
        query: the test server answers each query with an extra (empty) workflow task in
        history. Activity retry back-offs are not timers in history: when nothing moves for a
        moment while an activity is open, the clock moves on a few seconds.
        """
        handle = self.handle(started)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen, since = -1, loop.time()
        while True:
            history = await handle.fetch_history()
            if _closed(history) or (until is not None and until(history)):
                return history
            if loop.time() > deadline:
                raise AssertionError(f"enrollment {started.enrollment_id} did not get there:\n{await self.describe_history(started)}")
            fires = _open_timer(history)
            if fires is not None and not _in_flight(history) and fires > await self.now():
                await self.skip_to(fires)
            elif len(history.events) != seen:
                seen, since = len(history.events), loop.time()
            elif loop.time() - since > 0.3 and _in_flight(history):
                await self.skip(dt.timedelta(seconds=5))  # an activity waits for its next attempt
                since = loop.time()
            await asyncio.sleep(0.01)

    async def state(self, started: EnrollmentStarted) -> EnrollmentState:
        return await self.handle(started).query("status", result_type=EnrollmentState)

    async def wait_state(
        self, started: EnrollmentStarted, predicate: Callable[[EnrollmentState], bool], timeout: float = 15,
    ) -> EnrollmentState:
        """Poll the status query (tiny real sleeps, no time skipping) until ``predicate`` holds."""
        deadline = asyncio.get_running_loop().time() + timeout
        last: EnrollmentState | None = None
        while True:
            try:
                last = await self.state(started)
                if last.enrollment_id == started.enrollment_id and predicate(last):
                    return last
            except RPCError:
                pass  # not started yet
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"enrollment {started.enrollment_id} never reached the expected state; last: {last}\n"
                    f"server time {await self.now()}; history:\n{await self.describe_history(started)}"
                )
            await asyncio.sleep(0.02)

    async def eventually(self, check: Callable[[], bool], timeout: float = 5) -> None:
        """Poll ``check`` (e.g. the index, which a workflow updates just after its state)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the expected state never came")
            await asyncio.sleep(0.02)

    async def wait_until_timer(self, started: EnrollmentStarted, step: int | None = None) -> EnrollmentState:
        """Wait for the enrollment to sleep on its next step's timer (optionally: for step ``step``, 1-based)."""
        return await self.wait_state(
            started,
            lambda s: s.waiting_until is not None and s.status == "active"
            and (step is None or s.waiting_for.startswith(f"Waiting to run step {step} ")),
        )

    async def now(self) -> dt.datetime:
        assert self.env is not None
        return (await self.env.get_current_time()).astimezone(UTC)

    async def skip(self, delta: dt.timedelta) -> None:
        assert self.env is not None
        await self.env.sleep(delta)

    async def skip_to(self, moment: dt.datetime) -> None:
        now = await self.now()
        if moment > now:
            await self.skip(moment - now)

    async def align(self, *, hour: int, minute: int = 0, weekday: int | None = None) -> dt.datetime:
        """Move the server clock to the next ``hour:minute`` UTC (on ``weekday``, Monday=0)."""
        now = await self.now()
        target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        while target <= now or (weekday is not None and target.weekday() != weekday):
            target += dt.timedelta(days=1)
        await self.skip_to(target)
        return target

    async def history(self, started: EnrollmentStarted) -> WorkflowHistory:
        return await self.handle(started).fetch_history()

    async def describe_history(self, started: EnrollmentStarted) -> str:
        """The history as text, one event a line: for failure messages."""
        lines = []
        for e in (await self.history(started)).events:
            name = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
            detail = ""
            if e.HasField("activity_task_scheduled_event_attributes"):
                detail = e.activity_task_scheduled_event_attributes.activity_type.name
            elif e.HasField("activity_task_completed_event_attributes"):
                detail = e.activity_task_completed_event_attributes.result.payloads[0].data.decode()[:200]
            elif e.HasField("activity_task_failed_event_attributes"):
                detail = e.activity_task_failed_event_attributes.failure.message[:200]
            elif e.HasField("workflow_execution_signaled_event_attributes"):
                detail = e.workflow_execution_signaled_event_attributes.signal_name
            elif e.HasField("timer_started_event_attributes"):
                detail = str(e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta())
            lines.append(f"  {e.event_id:3} {event_time(e).isoformat()} {name} {detail}")
        return "\n".join(lines)

    @asynccontextmanager
    async def worker(self, **overrides: object) -> AsyncIterator[Worker]:
        """Nurture's worker, as ``tests.conftest.nurture_worker`` builds it (``overrides`` swaps
        activities by name); on the way out it first lets in-flight tasks finish (``quiesce``)."""
        from workers import registry

        acts = registry.activities(ActivityDeps(store=self.store, settings=self.settings, client=self.client))
        names = {getattr(a, "__temporal_activity_definition").name: a for a in acts}
        names.update(overrides)  # type: ignore[arg-type]
        with ThreadPoolExecutor(max_workers=8) as executor:
            worker = Worker(
                self.client, task_queue=self.settings.task_queue, workflows=list(registry.WORKFLOWS),
                activities=list(names.values()), activity_executor=executor,
            )
            async with worker:
                try:
                    yield worker
                finally:
                    await self.quiesce()

    def _workflow_ids(self) -> set[str]:
        return {sequence_workflow_id(c.id) for c in self.store.list_records("contact", limit=1000)}

    async def quiesce(self, timeout: float = 5) -> None:
        """Before a worker stops: let the workflow and activity tasks it holds finish. (A task
        lost with its worker keeps the test server's clock locked for good, even after the
        workflow is terminated, and every later test's time skipping would hang. The test
        server's describe does not report pending workflow tasks, so this reads the history.)"""
        deadline = asyncio.get_running_loop().time() + timeout
        for wid in self._workflow_ids():
            handle = self.client.get_workflow_handle(wid)
            while asyncio.get_running_loop().time() < deadline:
                try:
                    history = await handle.fetch_history()
                except RPCError:
                    break
                if not _in_flight(history):
                    break
                await asyncio.sleep(0.02)

    async def end_all(self) -> None:
        """Terminate whatever a test left running, so no timer of it fires in later tests."""
        for wid in self._workflow_ids():
            try:
                desc = await self.client.get_workflow_handle(wid).describe()
                if desc.status == WorkflowExecutionStatus.RUNNING:
                    await self.client.get_workflow_handle(wid).terminate("test over")
            except RPCError:
                pass


def make_world(store: Store, settings: Settings, mail: MailStore, client: Any, n_contacts: int = 3,
               env: WorkflowEnvironment | None = None) -> World:
    sender = store.upsert_user("rep@acme.test", name="Riley Rep", timezone="UTC", country="US")
    # No spacing between sends: these tests are about the engine; tests/inbox covers the limits.
    store.upsert_inbox(sender.id, email=sender.email, provider="local", min_spacing_seconds=0)
    company = store.upsert_record("company", {"name": "Globex", "domain": "globex.test"}).record
    contacts = []
    for i, name in enumerate(["Ada", "Grace", "Linus", "Barbara", "Ken"][:n_contacts]):
        c = store.upsert_record("contact", {"email": f"{name.lower()}@globex.test", "firstname": name}).record
        store.associate(c.id, company.id)
        contacts.append(c)
    return World(store, settings, mail, Sequences(client=client, store=store, settings=settings), sender, company, contacts, env)


@pytest.fixture
async def bare_world(time_env, store, settings, mail, gmail) -> AsyncIterator[World]:  # type: ignore[no-untyped-def]
    """The world without a worker: the test starts (and stops) workers itself with ``world.worker()``."""
    w = make_world(store, settings, mail, time_env.client, env=time_env)
    yield w
    await w.end_all()


@pytest.fixture
async def world(bare_world: World) -> AsyncIterator[World]:
    async with bare_world.worker():
        yield bare_world


# --------------------------------------------------------------------------- swapped activities
def late_send_email(world: World, step_index: int, late_by: dt.timedelta):
    """SEND_EMAIL as it behaves when its task runs ``late_by`` after the step started (the worker
    was down, the queue backed up): the activity's clock reads that much later, once.

    (The time-skipping server cannot simulate a worker outage itself: it stops the clock while
    a workflow task waits for a worker.)"""
    real = SequenceEmailActivities(ActivityDeps(store=world.store, settings=world.settings))
    late = {"left": 1}

    @activity.defn(name=ActivityName.SEND_EMAIL)
    def send_email(inp: SendEmailInput) -> StepResult:
        if inp.step_index == step_index and late["left"]:
            late["left"] -= 1
            inp = inp.model_copy(update={"started_at": inp.started_at + late_by})
        return real.send_email(inp)

    return send_email


# ---------------------------------------------------------------------------- history helpers
_CLOSE_EVENTS = (
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
)


def readable_history(history_json: str) -> str:
    """A history's JSON with every payload's data decoded (in JSON it is base64), so a search of
    the text sees what the payloads hold."""
    import base64
    import json

    parts = [history_json]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "metadata" in node and isinstance(node.get("data"), str):
                parts.append(base64.b64decode(node["data"]).decode("utf-8", errors="replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(history_json))
    return "\n".join(parts)


def timer_open(history: WorkflowHistory) -> bool:
    """``drive`` predicate: the workflow sleeps on a timer (a step's delay)."""
    return _open_timer(history) is not None and not _in_flight(history)


def idle(history: WorkflowHistory) -> bool:
    """``drive`` predicate: nothing runs and no timer is set: it waits for a signal (a task's
    completion, resume after pause or review)."""
    return _open_timer(history) is None and not _in_flight(history) and not _closed(history)


def _closed(history: WorkflowHistory) -> bool:
    return bool(history.events) and history.events[-1].event_type in _CLOSE_EVENTS


def _open_timer(history: WorkflowHistory) -> dt.datetime | None:
    """When the open timer (if any) fires."""
    open_timers: dict[str, dt.datetime] = {}
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            a = e.timer_started_event_attributes
            open_timers[a.timer_id] = event_time(e) + a.start_to_fire_timeout.ToTimedelta()
        elif e.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            open_timers.pop(e.timer_fired_event_attributes.timer_id, None)
        elif e.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
            open_timers.pop(e.timer_canceled_event_attributes.timer_id, None)
    return min(open_timers.values()) if open_timers else None


def _in_flight(history: WorkflowHistory) -> bool:
    """Whether a running workflow has a workflow task or an activity open."""
    E = EventType
    open_wft: set[int] = set()
    open_acts: set[int] = set()
    for e in history.events:
        t = e.event_type
        if t == E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            open_wft.add(e.event_id)
        elif t == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            open_wft.discard(e.workflow_task_completed_event_attributes.scheduled_event_id)
        elif t == E.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            open_wft.discard(e.workflow_task_failed_event_attributes.scheduled_event_id)
        elif t == E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            open_wft.discard(e.workflow_task_timed_out_event_attributes.scheduled_event_id)
        elif t == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            open_acts.add(e.event_id)
        elif t == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            open_acts.discard(e.activity_task_completed_event_attributes.scheduled_event_id)
        elif t == E.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            open_acts.discard(e.activity_task_failed_event_attributes.scheduled_event_id)
        elif t == E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            open_acts.discard(e.activity_task_timed_out_event_attributes.scheduled_event_id)
        elif t == E.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
            open_acts.discard(e.activity_task_canceled_event_attributes.scheduled_event_id)
        elif t in _CLOSE_EVENTS:
            return False
    return bool(open_wft or open_acts)


def event_time(event: HistoryEvent) -> dt.datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


@dataclass
class ActivityRun:
    name: str
    scheduled: HistoryEvent
    input: Any
    closed: HistoryEvent | None = None
    result: StepResult | None = None

    @property
    def at(self) -> dt.datetime:
        return event_time(self.scheduled)


def activity_runs(history: WorkflowHistory, name: str | None = None) -> list[ActivityRun]:
    """The activities a history scheduled (optionally of one type), with decoded step results."""
    conv = pydantic_data_converter.payload_converter
    runs: dict[int, ActivityRun] = {}
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = e.activity_task_scheduled_event_attributes
            runs[e.event_id] = ActivityRun(a.activity_type.name, e, conv.from_payloads(a.input.payloads)[0])
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            a = e.activity_task_completed_event_attributes
            run = runs[a.scheduled_event_id]
            run.closed = e
            if run.name in (ActivityName.SEND_EMAIL, ActivityName.CREATE_TASK, ActivityName.BEGIN_ENROLLMENT, ActivityName.PLAN_NEXT):
                run.result = conv.from_payloads(a.result.payloads, [StepResult])[0]
        elif e.event_type in (EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT):
            attrs = e.activity_task_failed_event_attributes if e.HasField("activity_task_failed_event_attributes") else e.activity_task_timed_out_event_attributes
            runs[attrs.scheduled_event_id].closed = e
    out = list(runs.values())
    return [r for r in out if name is None or r.name == name]


def sends(history: WorkflowHistory) -> list[ActivityRun]:
    """SEND_EMAIL runs that sent (not deferred), in order."""
    return [r for r in activity_runs(history, ActivityName.SEND_EMAIL) if r.result is not None and r.result.detail == "sent"]


def close(a: dt.datetime, b: dt.datetime, seconds: float = 5) -> bool:
    return abs((a - b).total_seconds()) <= seconds
