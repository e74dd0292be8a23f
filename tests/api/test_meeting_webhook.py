"""The meetings webhook: a signed, fresh, first-time post unenrolls the contact with
meeting_booked; a forged, stale or replayed post changes nothing."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from pydantic import SecretStr

from nurture.api.app import create_app
from nurture.webhook_signing import sign
from tests.conftest import nurture_worker

SECRET = "meetings-secret"
SEQ = {
    "kind": "sequence", "id": "meet-seq", "name": "Meet", "settings": {"eligible_days": "every_day", "unsubscribe_link": False},
    "steps": [{"type": "email", "subject": "Hi", "body": "Hello"}, {"type": "todo_task", "delay": "3d", "title": "Later"}],
}


@pytest.fixture
async def api(store, settings, time_env):  # type: ignore[no-untyped-def]
    settings.api_tokens = ["t"]
    settings.meetings_webhook_secret = SecretStr(SECRET)
    app = create_app(settings, store, time_env.client)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            yield c


def signed(body: dict, *, secret: str = SECRET, at: float | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    ts = int(at if at is not None else time.time())
    return raw, {"X-Nurture-Timestamp": str(ts), "X-Nurture-Signature": sign(secret, ts, raw), "Content-Type": "application/json"}


async def test_meeting_webhook(api: httpx.AsyncClient, store, settings, time_env) -> None:  # type: ignore[no-untyped-def]
    from nurture.definitions import definition_body, parse_definition
    from starters.sequences import Sequences

    d = parse_definition(SEQ)
    store.save_definition(d.id, d.kind, d.name, definition_body(d))
    rep = store.upsert_user("rep@acme.test", name="Rep")
    store.upsert_inbox(rep.id, email=rep.email, provider="local", min_spacing_seconds=0)
    ada = store.upsert_record("contact", {"email": "ada@x.test", "firstname": "Ada"}).record
    async with nurture_worker(time_env.client, store, settings):
        started = await Sequences(time_env.client, store, settings).enroll("meet-seq", contact=ada.email, sender=rep.email)
        event = {"event_id": "evt-1", "contact": ada.email, "title": "Demo call"}

        raw, headers = signed(event, secret="wrong-secret")
        r = await api.post("/webhooks/meetings", content=raw, headers=headers)
        assert r.status_code == 401 and "signature does not match" in r.json()["error"]["message"]
        raw, headers = signed(event, at=time.time() - 3600)
        r = await api.post("/webhooks/meetings", content=raw, headers=headers)
        assert r.status_code == 401 and "stale" in r.json()["error"]["message"]
        raw, headers = signed(event)
        tampered = raw.replace(b"evt-1", b"evt-2")
        assert (await api.post("/webhooks/meetings", content=tampered, headers=headers)).status_code == 401
        assert (await api.post("/webhooks/meetings", content=raw, headers={"Content-Type": "application/json"})).status_code == 401
        assert store.get_enrollment(started.enrollment_id).status.value == "active"  # nothing changed

        r = await api.post("/webhooks/meetings", content=raw, headers=headers)
        assert r.status_code == 200 and r.json()["unenrolled"] == [started.enrollment_id]
        replay = await api.post("/webhooks/meetings", content=raw, headers=headers)
        assert replay.status_code == 409 and "already received" in replay.json()["error"]["message"]

        for _ in range(100):
            row = store.get_enrollment(started.enrollment_id)
            if row.status.value != "active":
                break
            await asyncio.sleep(0.05)
        assert row.status.value == "unenrolled" and row.exit_reason.startswith("meeting_booked")
