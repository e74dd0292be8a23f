"""The baseline the benchmarks divide by: a bare workflow running one no-op activity per step."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench.noop")
def noop(step: int) -> int:
    return step


@workflow.defn(name="BenchBaseline")
class BaselineWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        for i in range(steps):
            await workflow.execute_activity("bench.noop", i, start_to_close_timeout=timedelta(seconds=30))
        return steps
