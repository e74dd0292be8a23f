"""Fixtures for the local Gmail/SendGrid endpoint tests: real servers on free ports."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import Resource, build

from nurture.local import (
    MailStore,
    RunningServer,
    access_token_for,
    create_gmail_app,
    create_sendgrid_app,
    start_in_thread,
)

# One MailStore and one server per service for the whole run (starting and stopping
# uvicorn costs ~0.1 s each); every test gets the store wiped clean instead. The name
# `mail_store` keeps clear of the project-wide `store` fixture (the record store).


@pytest.fixture(scope="package")
def _shared_store() -> Iterator[MailStore]:
    s = MailStore(":memory:")
    yield s
    s.close()


@pytest.fixture(scope="package")
def _shared_gmail_server(_shared_store: MailStore) -> Iterator[RunningServer]:
    server = start_in_thread(create_gmail_app(_shared_store))
    yield server
    server.stop()


@pytest.fixture(scope="package")
def _shared_sendgrid_server(_shared_store: MailStore) -> Iterator[RunningServer]:
    server = start_in_thread(create_sendgrid_app(_shared_store))
    yield server
    server.stop()


@pytest.fixture
def mail_store(_shared_store: MailStore) -> MailStore:
    """The MailStore behind the shared servers, empty at the start of each test."""
    _shared_store.reset()
    return _shared_store


@pytest.fixture
def gmail_server(mail_store: MailStore, _shared_gmail_server: RunningServer) -> RunningServer:
    return _shared_gmail_server


@pytest.fixture
def sendgrid_server(mail_store: MailStore, _shared_sendgrid_server: RunningServer) -> RunningServer:
    return _shared_sendgrid_server


@pytest.fixture
def admin(gmail_server: RunningServer) -> Iterator[httpx.Client]:
    """Plain HTTP client for the /_local admin routes (and raw protocol checks)."""
    with httpx.Client(base_url=gmail_server.url, timeout=10) as client:
        yield client


def build_gmail(base_url: str, credentials: Credentials) -> Resource:
    return build(
        "gmail",
        "v1",
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": base_url},
    )


@pytest.fixture
def gmail_for(gmail_server: RunningServer) -> Callable[[str], Resource]:
    """Gmail SDK service authenticated as the given address (token ``local:<email>``)."""

    def make(email: str) -> Resource:
        return build_gmail(gmail_server.url, Credentials(token=access_token_for(email)))

    return make


@pytest.fixture
def address() -> Callable[[str], str]:
    """A fresh address per call, so tests never see each other's mail."""

    def make(name: str = "user") -> str:
        return f"{name}-{uuid.uuid4().hex[:8]}@example.com"

    return make


def raw_message(
    *,
    to: str,
    subject: str = "Hello",
    text: str = "Hi there",
    html: str | None = None,
    sender: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A users.messages.send body: ``{"raw": base64url(RFC 822)}``."""
    msg = EmailMessage()
    if sender:
        msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return {"raw": base64.urlsafe_b64encode(msg.as_bytes()).decode()}


@pytest.fixture
def send_mail(gmail_for: Callable[[str], Resource]) -> Callable[..., dict[str, Any]]:
    """Send via the real SDK: ``send_mail(sender, to=..., thread_id=..., **raw_message kwargs)``."""

    def send(sender: str, *, thread_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        body = raw_message(sender=sender, **kwargs)
        if thread_id:
            body["threadId"] = thread_id
        return gmail_for(sender).users().messages().send(userId="me", body=body).execute()

    return send
