"""The local SendGrid Mail Send API, driven by the real sendgrid SDK; plus the outbox."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sendgrid
from python_http_client.exceptions import (
    BadRequestsError,
    InternalServerError,
    TooManyRequestsError,
    UnauthorizedError,
)
from sendgrid.helpers.mail import (
    Category,
    CustomArg,
    Header,
    Mail,
    Personalization,
    To,
)

from nurture.local import (
    MailStore,
    RunningServer,
    create_gmail_app,
    create_sendgrid_app,
    list_outbox,
    start_in_thread,
)

from .conftest import raw_message

SendMail = Callable[..., dict[str, Any]]


@pytest.fixture
def client(sendgrid_server: RunningServer) -> sendgrid.SendGridAPIClient:
    return sendgrid.SendGridAPIClient("SG.local-test-key", host=sendgrid_server.url)


@pytest.fixture
def sg_admin(sendgrid_server: RunningServer):
    with httpx.Client(base_url=sendgrid_server.url, timeout=10) as http:
        yield http


def simple_mail(to: str = "contact@example.com", **kwargs: Any) -> Mail:
    return Mail(
        from_email=kwargs.pop("from_email", "marketing@nurture.test"),
        to_emails=to,
        subject=kwargs.pop("subject", "Welcome"),
        plain_text_content=kwargs.pop("text", "Hello there"),
        html_content=kwargs.pop("html", "<p>Hello there</p>"),
    )


def errors_of(exc: Exception) -> list[dict[str, Any]]:
    return json.loads(exc.body)["errors"]  # type: ignore[attr-defined]


def test_valid_mail_is_accepted_and_captured(
    client: sendgrid.SendGridAPIClient, mail_store: MailStore
) -> None:
    mail = Mail(
        from_email=("marketing@nurture.test", "Nurture Team"),
        subject="Welcome aboard",
        plain_text_content="Hello Ann",
        html_content="<p>Hello Ann</p>",
    )
    first = Personalization()
    first.add_to(To("ann@example.com"))
    first.add_custom_arg(CustomArg("contact_id", "c-1"))
    second = Personalization()
    second.add_to(To("ben@example.com"))
    second.add_custom_arg(CustomArg("step", "2"))
    mail.add_personalization(first)
    mail.add_personalization(second)
    mail.custom_arg = CustomArg("workflow", "welcome")  # top level: the SDK sends an object
    mail.category = Category("onboarding")
    mail.header = Header("X-Nurture-Enrollment", "e-9")

    response = client.send(mail)
    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert len(message_id) == 22

    captured = mail_store.get_sendgrid_message(message_id)
    assert captured is not None
    assert (captured.from_addr, captured.from_name) == ("marketing@nurture.test", "Nurture Team")
    # (add_personalization prepends, so the SDK sends ben's personalization first.)
    assert captured.to == ["ben@example.com", "ann@example.com"]
    assert captured.subject == "Welcome aboard"
    assert (captured.text_body, captured.html_body) == ("Hello Ann", "<p>Hello Ann</p>")
    assert captured.custom_args == {"workflow": "welcome", "contact_id": "c-1", "step": "2"}
    assert captured.categories == ["onboarding"]
    assert captured.headers == {"X-Nurture-Enrollment": "e-9"}
    assert captured.body == mail.get()


def test_missing_or_empty_key_is_401(
    sendgrid_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no key the SDK falls back to $SENDGRID_API_KEY, and sends "Bearer None".
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    anonymous = sendgrid.SendGridAPIClient("", host=sendgrid_server.url)
    assert anonymous.client.request_headers["Authorization"] == "Bearer None"
    with pytest.raises(UnauthorizedError) as exc:
        anonymous.send(simple_mail())
    assert exc.value.status_code == 401
    assert errors_of(exc.value) == [
        {
            "field": None,
            "message": "The provided authorization grant is invalid, expired, or revoked",
            "help": None,
        }
    ]
    url = sendgrid_server.url + "/v3/mail/send"
    assert httpx.post(url, json=simple_mail().get()).status_code == 401
    assert (
        httpx.post(
            url, json=simple_mail().get(), headers={"Authorization": "Basic a2V5"}
        ).status_code
        == 401
    )


def test_bad_address_is_400_with_field_path(
    client: sendgrid.SendGridAPIClient, mail_store: MailStore
) -> None:
    with pytest.raises(BadRequestsError) as exc:
        # (The SDK itself chokes on strings without an "@"; this one it passes on.)
        client.send(simple_mail(to="ann@example..com"))
    (error,) = errors_of(exc.value)
    assert error["field"] == "personalizations.0.to.0.email"
    assert error["message"] == "Does not contain a valid address."
    assert error["help"].startswith("http://sendgrid.com/docs/")
    assert mail_store.sendgrid_messages(10) == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"personalizations", "from", "subject", "content"}),
        (
            {
                "personalizations": [{"to": []}],
                "from": {"email": "bad"},
                "subject": "s",
                "content": [{"type": "text/plain", "value": "x"}],
            },
            {"personalizations.0.to", "from.email"},
        ),
        (
            {
                "personalizations": [
                    {"to": [{"email": "a@example.com"}], "cc": [{"email": "A@example.com"}]}
                ],
                "from": {"email": "f@example.com"},
                "subject": "s",
                "content": [
                    {"type": "text/html", "value": "<p>x</p>"},
                    {"type": "text/plain", "value": "x"},
                ],
            },
            {"personalizations.0", "content.1.type"},
        ),
        (
            {
                "personalizations": [{"to": [{"email": "a@example.com"}], "custom_args": {"n": 1}}],
                "from": {"email": "f@example.com"},
                "subject": "s",
                "content": [{"type": "text/plain", "value": ""}],
            },
            {"personalizations.0.custom_args.n", "content.0.value"},
        ),
    ],
)
def test_validation_errors(
    sendgrid_server: RunningServer, body: dict[str, Any], fields: set[str]
) -> None:
    response = httpx.post(
        sendgrid_server.url + "/v3/mail/send", json=body, headers={"Authorization": "Bearer k"}
    )
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == fields


def test_subject_per_personalization_or_template(
    sendgrid_server: RunningServer, mail_store: MailStore
) -> None:
    url, auth = sendgrid_server.url + "/v3/mail/send", {"Authorization": "Bearer k"}
    per_personalization = {
        "personalizations": [{"to": [{"email": "a@example.com"}], "subject": "Hi A"}],
        "from": {"email": "f@example.com"},
        "content": [{"type": "text/plain", "value": "x"}],
    }
    templated = {
        "personalizations": [
            {"to": [{"email": "b@example.com"}], "dynamic_template_data": {"n": 1}}
        ],
        "from": {"email": "f@example.com"},
        "template_id": "d-123",
    }
    assert httpx.post(url, json=per_personalization, headers=auth).status_code == 202
    assert httpx.post(url, json=templated, headers=auth).status_code == 202
    assert [m.subject for m in mail_store.sendgrid_messages(10)] == ["", "Hi A"]
    assert httpx.post(url, content=b"{nope", headers=auth).status_code == 400


def test_sandbox_mode_validates_but_captures_nothing(
    client: sendgrid.SendGridAPIClient, mail_store: MailStore
) -> None:
    body = simple_mail().get()
    body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    response = client.client.mail.send.post(request_body=body)
    assert response.status_code == 200
    assert mail_store.sendgrid_messages(10) == []


def test_faults(
    client: sendgrid.SendGridAPIClient, sg_admin: httpx.Client, mail_store: MailStore
) -> None:
    for fault in (
        {"service": "sendgrid", "kind": "429", "retry_after": 3},
        {"service": "sendgrid", "kind": "500"},
        {"service": "sendgrid", "kind": "accept_then_500"},
        {"service": "sendgrid", "kind": "400", "message": "Sender identity not verified"},
    ):
        sg_admin.post("/_local/faults", json=fault).raise_for_status()

    with pytest.raises(TooManyRequestsError) as limited:
        client.send(simple_mail())
    assert limited.value.headers["Retry-After"] == "3"
    assert errors_of(limited.value)[0]["message"] == "too many requests"

    with pytest.raises(InternalServerError):
        client.send(simple_mail())
    assert mail_store.sendgrid_messages(10) == []  # a plain 500 stores nothing

    with pytest.raises(InternalServerError):
        client.send(simple_mail(subject="Accepted but unanswered"))
    (stored,) = mail_store.sendgrid_messages(10)  # ...but accept_then_500 did store it
    assert stored.subject == "Accepted but unanswered"

    with pytest.raises(BadRequestsError) as rejected:
        client.send(simple_mail())
    assert errors_of(rejected.value)[0]["message"] == "Sender identity not verified"

    assert client.send(simple_mail()).status_code == 202
    assert len(mail_store.sendgrid_messages(10)) == 2


# -- persistence and the outbox ---------------------------------------------------------


def test_state_survives_reopening_the_store(tmp_path) -> None:
    path = tmp_path / "mail.db"
    mail_store = MailStore(path)
    gmail_server = start_in_thread(create_gmail_app(mail_store))
    sendgrid_server = start_in_thread(create_sendgrid_app(mail_store))
    with httpx.Client(base_url=gmail_server.url) as http:
        auth = {"Authorization": "Bearer local:alice@example.com"}
        sent = http.post(
            "/gmail/v1/users/me/messages/send",
            json=raw_message(to="bob@example.com", subject="Persist me"),
            headers=auth,
        ).json()
        http.post("/_local/gmail/revoke", json={"email": "carol@example.com"}).raise_for_status()
        http.post("/_local/gmail/settings", json={"search_lag_seconds": 2.5}).raise_for_status()
        history_id = http.get("/gmail/v1/users/me/profile", headers=auth).json()["historyId"]
    sg_id = (
        sendgrid.SendGridAPIClient("k", host=sendgrid_server.url)
        .send(simple_mail())
        .headers["X-Message-Id"]
    )
    gmail_server.stop()
    sendgrid_server.stop()
    mail_store.close()

    reopened = MailStore(path)
    with (
        start_in_thread(create_gmail_app(reopened)) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        auth = {"Authorization": "Bearer local:alice@example.com"}
        got = http.get(f"/gmail/v1/users/me/messages/{sent['id']}", headers=auth).json()
        assert got["threadId"] == sent["threadId"]
        assert (
            http.get("/gmail/v1/users/me/profile", headers=auth).json()["historyId"] == history_id
        )
        denied = http.get(
            "/gmail/v1/users/me/profile",
            headers={"Authorization": "Bearer local:carol@example.com"},
        )
        assert denied.status_code == 401
        assert reopened.search_lag_seconds() == 2.5
        second = http.post(
            "/gmail/v1/users/me/messages/send", json=raw_message(to="bob@example.com"), headers=auth
        ).json()
        assert int(second["id"], 16) and second["id"] != sent["id"]
        assert (
            int(http.get("/gmail/v1/users/me/profile", headers=auth).json()["historyId"])
            == int(history_id) + 1
        )
    assert reopened.get_sendgrid_message(sg_id) is not None
    assert {m.id for m in list_outbox(reopened)} == {sent["id"], second["id"], sg_id}
    reopened.close()


def test_outbox_merges_channels_newest_first(
    client: sendgrid.SendGridAPIClient,
    send_mail: SendMail,
    mail_store: MailStore,
    sg_admin: httpx.Client,
    admin: httpx.Client,
) -> None:
    gmail_first = send_mail(
        "rep@example.com",
        to="lead@example.com",
        subject="Personal note",
        headers={"Message-ID": "<note-1@nurture.test>"},
    )
    time.sleep(0.01)
    mail = simple_mail(to="lead@example.com", subject="Newsletter")
    mail.custom_arg = CustomArg("campaign", "june")
    sg_id = client.send(mail).headers["X-Message-Id"]
    time.sleep(0.01)
    gmail_last = send_mail("rep@example.com", to="lead@example.com", subject="Follow-up")
    # Inbound mail is not part of the outbox.
    admin.post(
        "/_local/gmail/inbound",
        json={"mailbox": "rep@example.com", "from": "lead@example.com", "text": "thanks"},
    ).raise_for_status()

    outbox = list_outbox(mail_store)
    assert [(m.channel, m.id) for m in outbox] == [
        ("gmail", gmail_last["id"]),
        ("sendgrid", sg_id),
        ("gmail", gmail_first["id"]),
    ]
    assert all(
        m.sent_at.tzinfo is not None and m.sent_at.utcoffset().total_seconds() == 0 for m in outbox
    )
    assert outbox[0].sent_at <= datetime.now(UTC)

    newsletter = outbox[1]
    assert (newsletter.subject, newsletter.to, newsletter.custom_args) == (
        "Newsletter",
        ["lead@example.com"],
        {"campaign": "june"},
    )
    assert newsletter.text == "Hello there" and newsletter.html == "<p>Hello there</p>"
    note = outbox[2]
    assert (note.message_id, note.thread_id, note.mailbox) == (
        "<note-1@nurture.test>",
        gmail_first["threadId"],
        "rep@example.com",
    )
    assert note.text == "Hi there\n" and note.headers["Subject"] == "Personal note"

    assert [m.id for m in list_outbox(mail_store, limit=1)] == [gmail_last["id"]]
    assert [m.id for m in list_outbox(mail_store, channel="sendgrid")] == [sg_id]

    listed = sg_admin.get("/_local/outbox", params={"limit": 2}).json()
    assert [m["id"] for m in listed] == [gmail_last["id"], sg_id]
    assert listed[1]["custom_args"] == {"campaign": "june"}
    assert (
        sg_admin.get("/_local/outbox", params={"channel": "gmail"}).json()[-1]["id"]
        == gmail_first["id"]
    )
    assert sg_admin.get("/_local/healthz").json() == {"ok": True}
