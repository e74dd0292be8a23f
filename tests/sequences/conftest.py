"""A small world for sequence tests: a sender with a local inbox, contacts of one company."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from nurture.definitions import definition_body, parse_definition
from nurture.local import MailStore
from nurture.local.outbox import OutboxMessage, list_outbox
from nurture.settings import Settings
from nurture.store import Store
from nurture.store.models import Record, User
from starters.sequences import Sequences
from tests.conftest import nurture_worker


@dataclass
class World:
    store: Store
    settings: Settings
    mail: MailStore
    sequences: Sequences
    sender: User
    company: Record
    contacts: list[Record]

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


def make_world(store: Store, settings: Settings, mail: MailStore, client: Any, n_contacts: int = 3) -> World:
    sender = store.upsert_user("rep@acme.test", name="Riley Rep", timezone="UTC", country="US")
    store.upsert_inbox(sender.id, email=sender.email, provider="local")
    company = store.upsert_record("company", {"name": "Globex", "domain": "globex.test"}).record
    contacts = []
    for i, name in enumerate(["Ada", "Grace", "Linus", "Barbara", "Ken"][:n_contacts]):
        c = store.upsert_record("contact", {"email": f"{name.lower()}@globex.test", "firstname": name}).record
        store.associate(c.id, company.id)
        contacts.append(c)
    return World(store, settings, mail, Sequences(client=client, store=store, settings=settings), sender, company, contacts)


@pytest.fixture
async def world(time_env, store, settings, mail, gmail) -> AsyncIterator[World]:  # type: ignore[no-untyped-def]
    async with nurture_worker(time_env.client, store, settings):
        yield make_world(store, settings, mail, time_env.client)
