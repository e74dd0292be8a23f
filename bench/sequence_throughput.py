"""Benchmark: sequence enrollments through a real dev server, against a baseline taken in the
same run.

Baseline: a bare workflow that runs one no-op activity per step — the least any engine on
Temporal pays. Measured: Nurture's sequence enrollment with the same number of email steps, the
real activities, the store (SQLite) and the local Gmail endpoint. Reported: the ratio of their
throughputs, and history events per email step (budget: 12 when nothing throttles).

    .venv/bin/python bench/sequence_throughput.py [--enrollments 40] [--steps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.deps import ActivityDeps  # noqa: E402
from bench.baseline import BaselineWorkflow, noop  # noqa: E402
from nurture import search_attributes  # noqa: E402
from nurture.contracts.sequence import SequenceEnrollmentResult  # noqa: E402
from nurture.definitions import definition_body, parse_definition  # noqa: E402
from nurture.local import MailStore, create_gmail_app, start_in_thread  # noqa: E402
from nurture.settings import Settings  # noqa: E402
from nurture.store import Store  # noqa: E402
from starters.sequences import Sequences  # noqa: E402
from workers import registry  # noqa: E402


async def main(enrollments: int, steps: int) -> None:
    bin_dir = Path(sys.executable).parent
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(bin_dir / "temporal"), data_converter=pydantic_data_converter,
        search_attributes=list(search_attributes.ALL_KEYS), dev_server_extra_args=["--log-level", "error"], ui=False,
    )
    tmp = Path(tempfile.mkdtemp())
    mail = MailStore(":memory:")
    gmail = start_in_thread(create_gmail_app(mail))
    settings = Settings(_env_file=None, home=tmp, gmail_api_endpoint=gmail.url, task_queue=f"bench-{uuid.uuid4().hex[:6]}")  # type: ignore[call-arg]
    store = Store.open(f"sqlite:///{tmp / 'bench.db'}")
    rep = store.upsert_user("rep@bench.test", name="Rep")
    store.upsert_inbox(rep.id, email=rep.email, provider="local", min_spacing_seconds=0, daily_cap=100000)
    for seq_id, delay in (("bench", "0"), ("bench-timed", "2s")):
        d = parse_definition({
            "kind": "sequence", "id": seq_id, "name": seq_id,
            "settings": {"eligible_days": "every_day", "unsubscribe_link": False},
            "steps": [{"type": "email", "subject": "S{{ contact.firstname }}", "body": "B", "delay": delay if i else "0"}
                      for i in range(steps)],
        })
        store.save_definition(d.id, d.kind, d.name, definition_body(d))
    timed = store.upsert_record("contact", {"email": "timed@bench.test", "firstname": "T"}).record
    contacts = [store.upsert_record("contact", {"email": f"c{i}@bench.test", "firstname": f"C{i}"}).record for i in range(enrollments)]

    with ThreadPoolExecutor(max_workers=32) as pool:
        async with Worker(env.client, task_queue=settings.task_queue, workflows=[*registry.WORKFLOWS, BaselineWorkflow],
                          activities=[*registry.activities(ActivityDeps(store, settings, env.client)), noop],
                          activity_executor=pool, max_cached_workflows=2000):
            t0 = time.perf_counter()
            handles = await asyncio.gather(*(
                env.client.start_workflow(BaselineWorkflow.run, steps, id=f"base-{uuid.uuid4().hex}", task_queue=settings.task_queue)
                for _ in range(enrollments)
            ))
            await asyncio.gather(*(h.result() for h in handles))
            baseline = time.perf_counter() - t0

            seqs = Sequences(env.client, store, settings)
            t0 = time.perf_counter()
            started = await asyncio.gather(*(seqs.enroll("bench", contact=c.id, sender=rep.id) for c in contacts))
            results = await asyncio.gather(*(
                env.client.get_workflow_handle(s.workflow_id, result_type=SequenceEnrollmentResult).result() for s in started
            ))
            nurture = time.perf_counter() - t0
            assert all(r.exit_reason == "finished" for r in results)

            one = await seqs.enroll("bench-timed", contact=timed.id, sender=rep.id)
            await env.client.get_workflow_handle(one.workflow_id, result_type=SequenceEnrollmentResult).result()
            history = await env.client.get_workflow_handle(one.workflow_id).fetch_history()
            starts = [i for i, e in enumerate(history.events)
                      if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                      and e.activity_task_scheduled_event_attributes.activity_type.name == "sequence.send_email"]
            per_step = [b - a for a, b in zip(starts, starts[1:])]

    print(f"enrollments={enrollments} email steps each={steps}")
    print(f"baseline (bare workflow, no-op activities): {enrollments / baseline:8.1f} workflows/s")
    print(f"nurture sequence enrollments:               {enrollments / nurture:8.1f} enrollments/s")
    print(f"ratio nurture/baseline throughput:          {baseline / nurture:8.2f}")
    print(f"history events per email step with a 2 s delay (after the first): {per_step} (budget 12)")
    gmail.stop()
    store.close()
    await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--enrollments", type=int, default=40)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.enrollments, args.steps))
