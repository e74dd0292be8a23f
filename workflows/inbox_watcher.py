"""The inbox watcher: a singleton workflow per connected inbox (ID ``inbox-watch-<user>``).

It polls the inbox's Gmail history through an activity, which matches inbound messages to
enrollments and signals them. A ``wake`` signal (for example from Gmail push) polls early;
polling alone suffices. The history is kept short with continue-as-new.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from nurture.contracts.inbox import WATCHER_WORKFLOW_NAME, InboxActivityName, PollInboxInput, PollResult, WatchInboxInput

POLL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5))


@workflow.defn(name=WATCHER_WORKFLOW_NAME)
class InboxWatcherWorkflow:
    def __init__(self) -> None:
        self._wake = False
        self._stop = False
        self._last: PollResult | None = None

    @workflow.run
    async def run(self, inp: WatchInboxInput) -> None:
        for _ in range(inp.polls_before_continue_as_new):
            self._wake = False
            self._last = await workflow.execute_activity(
                InboxActivityName.POLL,
                PollInboxInput(user_id=inp.user_id),
                result_type=PollResult,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=POLL_RETRY,
                summary="read new inbox history; signal replies and bounces",
            )
            if self._stop:
                return
            # A disconnected inbox is looked at less often; reconnecting wakes the watcher.
            pause = inp.poll_seconds if self._last.state != "disconnected" else max(inp.poll_seconds, 300)
            workflow.set_current_details(f"Last poll: {self._last.state}, {self._last.messages_seen} new messages; next in {pause:.0f} s")
            try:
                await workflow.wait_condition(lambda: self._wake or self._stop, timeout=timedelta(seconds=pause),
                                              timeout_summary="next poll")
            except TimeoutError:
                pass
            if self._stop:
                return
        workflow.continue_as_new(inp)

    @workflow.signal(name="wake")
    def wake(self) -> None:
        self._wake = True

    @workflow.signal(name="stop")
    def stop(self) -> None:
        self._stop = True

    @workflow.query(name="last_poll")
    def last_poll(self) -> PollResult | None:
        return self._last
