"""The HTTP API: auth, JSON errors, idempotent writes, and a sequence enrollment end to end."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from nurture.api.app import create_app
from tests.conftest import nurture_worker

SEQ = {
    "kind": "sequence", "id": "api-seq", "name": "API sequence", "settings": {"eligible_days": "every_day"},
    "steps": [{"type": "email", "subject": "Hi {{ contact.firstname }}", "body": "Hello"},
              {"type": "todo_task", "delay": "1d", "title": "Check in"}],
}
TOKEN = "test-token"


@pytest.fixture
async def api(store, settings, time_env):  # type: ignore[no-untyped-def]
    settings.api_tokens = [TOKEN]
    app = create_app(settings, store, time_env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            yield c


async def test_health_is_open_everything_else_needs_a_token(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz", headers={"Authorization": ""})).json() == {"ok": True}
    r = await api.get("/records", headers={"Authorization": ""})
    assert r.status_code == 401 and r.json()["error"]["message"].startswith("missing bearer token")
    r = await api.get("/records", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid bearer token"
    spec = (await api.get("/openapi.json")).json()
    assert "/sequences/{sequence_id}/enrollments" in spec["paths"] and "/records/{record_type}" in spec["paths"]


async def test_errors_are_json_with_a_message(api: httpx.AsyncClient) -> None:
    r = await api.get("/records/ct_missing")
    assert r.status_code == 404 and r.json() == {"error": {"code": "not_found", "message": "no record with ID 'ct_missing'", "details": None}}
    r = await api.put("/records/planet", json={"properties": {}})
    assert r.status_code == 422 and "record_type" in r.json()["error"]["message"]
    bad = dict(SEQ, steps=[{"type": "email", "subject": "x", "body": "y", "delay": "2 days"}])
    r = await api.post("/definitions", json=bad)
    assert r.status_code == 422 and "steps[0].delay" in r.json()["error"]["message"]
    assert "Traceback" not in r.text


async def test_idempotent_writes(api: httpx.AsyncClient) -> None:
    body = {"properties": {"email": "ada@x.test", "firstname": "Ada"}}
    first = await api.put("/records/contact", json=body, headers={"Idempotency-Key": "k-1"})
    again = await api.put("/records/contact", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    assert first.json()["created"] is True
    other = await api.put("/records/contact", json={"properties": {"email": "b@x.test"}}, headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 409 and "different request" in other.json()["error"]["message"]
    r = await api.post("/lists", json={"name": "VIP"}, headers={"Idempotency-Key": "l-1"})
    r2 = await api.post("/lists", json={"name": "VIP"}, headers={"Idempotency-Key": "l-1"})
    assert r.status_code == r2.status_code == 201 and r.json()["id"] == r2.json()["id"]
    cid = first.json()["record"]["id"]
    assert (await api.post(f"/lists/{r.json()['id']}/members", json={"record_ids": [cid]})).json() == {"added": 1}
    assert [m["id"] for m in (await api.get(f"/lists/{r.json()['id']}/members")).json()] == [cid]


async def test_sequence_enrollment_over_http(api: httpx.AsyncClient, store, settings, time_env) -> None:  # type: ignore[no-untyped-def]
    assert (await api.post("/definitions", json=SEQ)).json()["version"] == 1
    rep = (await api.put("/users", json={"email": "rep@acme.test", "name": "Rep"})).json()
    store.upsert_inbox(rep["id"], email=rep["email"], provider="local")
    contact = (await api.put("/records/contact", json={"properties": {"email": "ada@x.test", "firstname": "Ada"}})).json()["record"]
    async with nurture_worker(time_env.client, store, settings):
        r = await api.post("/sequences/api-seq/enrollments", json={"contact": "ada@x.test", "sender": "rep@acme.test"},
                           headers={"Idempotency-Key": "e-1"})
        assert r.status_code == 201, r.text
        eid = r.json()["enrollment_id"]
        replay = await api.post("/sequences/api-seq/enrollments", json={"contact": "ada@x.test", "sender": "rep@acme.test"},
                                headers={"Idempotency-Key": "e-1"})
        assert replay.json()["enrollment_id"] == eid  # a retried request does not enroll twice
        dup = await api.post("/sequences/api-seq/enrollments", json={"contact": contact["id"], "sender": "rep@acme.test"})
        assert dup.status_code == 409 and dup.json()["error"]["code"] == "already_enrolled" and eid in dup.json()["error"]["message"]

        for _ in range(100):  # the task step comes due a day later (time-skipping)
            tasks = (await api.get("/tasks", params={"enrollment_id": eid})).json()
            if tasks:
                break
            await time_env.sleep(3600)
        assert tasks and tasks[0]["title"] == "Check in"
        status = (await api.get(f"/enrollments/{eid}")).json()
        assert status["enrollment"]["status"] == "active" and "task" in status["live"]["waiting_for"]
        assert (await api.post(f"/enrollments/{eid}/unenroll", json={"reason": "changed plans"})).status_code == 200
        for _ in range(50):
            row = (await api.get("/enrollments", params={"record_id": contact["id"]})).json()[0]
            if row["status"] != "active":
                break
            await asyncio.sleep(0.1)
        assert row["status"] == "unenrolled" and row["exit_reason"].startswith("manual")
        assert (await api.get("/tasks", params={"enrollment_id": eid, "status": "canceled"})).json()[0]["id"] == tasks[0]["id"]
        again = await api.post(f"/enrollments/{eid}/pause")
        assert again.status_code == 409 and "already ended" in again.json()["error"]["message"]


async def test_unsubscribe_link_opts_out_and_unenrolls(api: httpx.AsyncClient, store, settings, time_env) -> None:  # type: ignore[no-untyped-def]
    seq = dict(SEQ, id="unsub-seq", settings={"eligible_days": "every_day", "unsubscribe_link": True})
    await api.post("/definitions", json=seq)
    rep = (await api.put("/users", json={"email": "rep@acme.test", "name": "Rep"})).json()
    store.upsert_inbox(rep["id"], email=rep["email"], provider="local", min_spacing_seconds=0)
    await api.put("/records/contact", json={"properties": {"email": "ada@x.test", "firstname": "Ada"}})
    async with nurture_worker(time_env.client, store, settings):
        r = await api.post("/sequences/unsub-seq/enrollments", json={"contact": "ada@x.test", "sender": "rep@acme.test"})
        eid = r.json()["enrollment_id"]
        for _ in range(100):
            sent = store.get_message(f"msg_{eid}_0")
            if sent and sent.status == "sent":
                break
            await asyncio.sleep(0.05)
        link = next(line for line in _email_text(settings, eid).splitlines() if "/u/" in line).split("Unsubscribe: ")[1]
        path = link.split(settings.unsubscribe_base_url)[1]
        assert (await api.get(path, headers={"Authorization": ""})).status_code == 200
        forged = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
        assert (await api.post(forged, headers={"Authorization": ""})).status_code == 422
        assert (await api.post(path, headers={"Authorization": ""})).status_code == 200
        for _ in range(100):
            row = store.get_enrollment(eid)
            if row.status.value != "active":
                break
            await asyncio.sleep(0.05)
    assert row.status.value == "unenrolled" and row.exit_reason == "unsubscribed"
    contact = store.find_record("contact", "ada@x.test")
    assert contact.properties.get("sales_email_opt_out") is True
    again = await api.post("/sequences/unsub-seq/enrollments", json={"contact": "ada@x.test", "sender": "rep@acme.test"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "unsubscribed"


def _email_text(settings, enrollment_id: str) -> str:  # type: ignore[no-untyped-def]
    """The body of the enrollment's first email, as the local Gmail endpoint captured it."""
    import base64
    import email

    import httpx as _httpx

    from nurture.local.gmail_api import access_token_for

    headers = {"Authorization": f"Bearer {access_token_for('rep@acme.test')}"}
    base = settings.gmail_url
    found = _httpx.get(f"{base}/gmail/v1/users/me/messages", params={"q": f"rfc822msgid:nurture.{enrollment_id}.0@acme.test"}, headers=headers).json()
    raw = _httpx.get(f"{base}/gmail/v1/users/me/messages/{found['messages'][0]['id']}", params={"format": "raw"}, headers=headers).json()["raw"]
    msg = email.message_from_bytes(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    return msg.get_payload(decode=True).decode()
