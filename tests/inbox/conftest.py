"""Sales-inbox integration tests: a real Temporal dev server, the local Gmail endpoint driven by
the real google-api-python-client, and workers running the real activities."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr

from nurture.contracts.sequence import SequenceEnrollmentResult
from nurture.definitions import definition_body, parse_definition
from nurture.local import MailStore, RunningServer
from nurture.local.outbox import OutboxMessage, list_outbox
from nurture.settings import Settings
from nurture.store import Store
from nurture.store.models import Enrollment, Record, User
from starters.inboxes import Inboxes
from starters.sequences import Sequences
from tests.conftest import nurture_worker

SENDER = "rep@acme.test"


@dataclass
class InboxWorld:
    store: Store
    settings: Settings
    mail: MailStore
    gmail: RunningServer
    client: Any
    sequences: Sequences
    inboxes: Inboxes
    sender: User
    contacts: list[Record]

    def apply(self, text: str) -> str:
        d = parse_definition(yaml.safe_load(text), "test")
        self.store.save_definition(d.id, d.kind, d.name, definition_body(d))
        return d.id

    def sent_to(self, contact: Record) -> list[OutboxMessage]:
        out = [m for m in list_outbox(self.mail, limit=1000, channel="gmail") if contact.email in m.to]
        return sorted(out, key=lambda m: (m.sent_at, m.id))

    def enrollment(self, enrollment_id: str) -> Enrollment:
        return self.store.get_enrollment(enrollment_id)

    async def admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.gmail.url) as http:
            r = await http.post(path, json=body)
            r.raise_for_status()
            return r.json() if r.content else {}

    async def reply(self, contact: Record, to_message_id: str, text: str = "Sounds good", headers: dict[str, str] | None = None,
                    subject: str = "Re: hello") -> dict[str, Any]:
        return await self.admin("/_local/gmail/inbound", {
            "mailbox": SENDER, "from": contact.email, "subject": subject, "text": text,
            "in_reply_to": to_message_id, "headers": headers or {},
        })

    def result(self, workflow_id: str) -> Awaitable[SequenceEnrollmentResult]:
        return self.client.get_workflow_handle(workflow_id, result_type=SequenceEnrollmentResult).result()


async def eventually(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.fixture
async def inbox_world(dev_env, store, settings, mail, gmail) -> AsyncIterator[InboxWorld]:  # type: ignore[no-untyped-def]
    settings.gmail_search_grace_seconds = 8
    settings.inbox_poll_seconds_setting = 0.5
    settings.google_client_secret = SecretStr("local-client-secret")
    sender = store.upsert_user(SENDER, name="Riley Rep", timezone="UTC", country="US")
    contacts = [
        store.upsert_record("contact", {"email": f"{n.lower()}@globex.test", "firstname": n}).record
        for n in ("Ada", "Grace", "Linus", "Barbara", "Ken")
    ]
    client = dev_env.client
    world = InboxWorld(
        store=store, settings=settings, mail=mail, gmail=gmail, client=client,
        sequences=Sequences(client=client, store=store, settings=settings),
        inboxes=Inboxes(client=client, store=store, settings=settings), sender=sender, contacts=contacts,
    )
    async with nurture_worker(client, store, settings):
        yield world
        # Watchers are long-running: stop this test's so they do not poll a closed store.
        for inbox in store.list_inboxes():
            try:
                await client.get_workflow_handle(f"inbox-watch-{inbox.user_id}").terminate("test over")
            except Exception:
                pass
