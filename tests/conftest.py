"""Shared fixtures: the record store (SQLite, and PostgreSQL when a server answers), the
time-skipping Temporal test server, a dev server with Nurture's search attributes, the local
SendGrid and Gmail endpoints (the code `nurture dev` runs) on free ports, and a worker that runs
the real activities against them."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.deps import ActivityDeps
from nurture.local import MailStore, RunningServer, create_gmail_app, create_sendgrid_app, start_in_thread
from nurture.settings import Settings
from nurture.store import Store
from nurture import search_attributes
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

BIN = Path(sys.executable).parent
PG_URL = os.environ.get("NURTURE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# ------------------------------------------------------------------------------------ store
@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'nurture.db'}")
    yield s
    s.close()


def postgres_available() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as c:
            c.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"no PostgreSQL server answers at {PG_URL} ({type(exc).__name__}); set NURTURE_TEST_POSTGRES_URL"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the PostgreSQL test database, dropped afterwards."""
    why = postgres_available()
    if why:
        if os.environ.get("NURTURE_REQUIRE_POSTGRES"):
            pytest.fail(why)
        pytest.skip(why)
    schema = f"nurture_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as c:
        c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same store tests on both backends."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nurture.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    s = Store.open(url, migrate=True)
    yield s
    s.close()


# ------------------------------------------------------------------------- local providers
@pytest.fixture
def mail() -> Iterator[MailStore]:
    m = MailStore(":memory:")
    yield m
    m.close()


@pytest.fixture
def gmail(mail: MailStore) -> Iterator[RunningServer]:
    server = start_in_thread(create_gmail_app(mail))
    yield server
    server.stop()


@pytest.fixture
def sendgrid(mail: MailStore) -> Iterator[RunningServer]:
    server = start_in_thread(create_sendgrid_app(mail))
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, gmail: RunningServer) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        home=tmp_path / "home",
        gmail_api_endpoint=gmail.url,
        google_token_uri=f"{gmail.url}/token",
        timezone="UTC",
        country="US",
        task_queue=f"test-{uuid.uuid4().hex[:8]}",
        secret_key="test-secret",
    )


# -------------------------------------------------------------------------------- temporal
@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"), data_converter=pydantic_data_converter,
    )
    # The test server implements AddSearchAttributes but not ListSearchAttributes.
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace,
        search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in search_attributes.ALL_KEYS},
    ))
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real dev server (real visibility) with Nurture's search attributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=list(search_attributes.ALL_KEYS),
        dev_server_extra_args=["--log-level", "error"],
        ui=False,
    )
    yield env
    await env.shutdown()


@asynccontextmanager
async def nurture_worker(client: Client, store: Store, settings: Settings, **overrides: object) -> AsyncIterator[Worker]:
    """A worker with Nurture's workflows and real activities; ``overrides`` swaps activities by name."""
    from workers import registry

    acts = registry.activities(ActivityDeps(store=store, settings=settings, client=client))
    if overrides:
        names = {getattr(a, "__temporal_activity_definition").name: a for a in acts}
        names.update(overrides)  # type: ignore[arg-type]
        acts = list(names.values())
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = Worker(
            client, task_queue=settings.task_queue, workflows=list(registry.WORKFLOWS), activities=acts,
            activity_executor=executor,
        )
        async with worker:
            yield worker
