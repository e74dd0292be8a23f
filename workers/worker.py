"""``nurture worker``: run a worker against the configured Temporal.

Graceful shutdown on SIGINT/SIGTERM (running activities get time to finish). A small HTTP server
on ``NURTURE_WORKER_METRICS_PORT`` answers ``/healthz`` and serves Nurture's Prometheus metrics
at ``/metrics``; the Temporal SDK's own runtime metrics are exported on
``NURTURE_WORKER_SDK_METRICS_PORT``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.deps import ActivityDeps
from nurture.metrics import WORKERS_STARTED
from nurture.settings import Settings
from nurture.store import Store
from starters.connect import connect_temporal
from workers import registry

log = logging.getLogger("nurture.worker")

def build_worker(client: Client, deps: ActivityDeps, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(registry.WORKFLOWS),
        activities=registry.activities(deps),
        activity_executor=executor,
        max_concurrent_activities=settings.worker_activity_threads,
        # Each cached workflow keeps its state in memory so a new event costs no history replay.
        # 2,000 cached enrollments is a few hundred MB at most; raise it for large fleets of
        # long-lived enrollments on big machines (NURTURE_WORKER_MAX_CACHED_WORKFLOWS).
        max_cached_workflows=settings.worker_max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=20),
    )


def sdk_runtime(settings: Settings) -> Runtime:
    return Runtime(telemetry=TelemetryConfig(
        metrics=PrometheusConfig(bind_address=f"{settings.worker_metrics_host}:{settings.worker_sdk_metrics_port}")
    ))


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None, serve_health: bool = True) -> None:
    from workers.health import start_health_server

    store = Store.open(settings.resolved_database_url)
    runtime = sdk_runtime(settings) if serve_health else None
    client = await connect_temporal(settings, runtime=runtime)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    health = start_health_server(settings) if serve_health else None
    WORKERS_STARTED.inc()
    with ThreadPoolExecutor(max_workers=settings.worker_activity_threads, thread_name_prefix="activity") as executor:
        worker = build_worker(client, ActivityDeps(store=store, settings=settings, client=client), settings, executor)
        log.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_address)
        async with worker:
            await stop.wait()
            log.info("shutting down: finishing running activities")
    if health:
        health.shutdown()
    store.close()
