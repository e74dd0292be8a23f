"""The local Gmail API, driven by the real google-api-python-client and google-auth."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from typing import Any

import httpx
import pytest
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request as AuthRequest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import Resource
from googleapiclient.errors import HttpError

from nurture.local import (
    LocalServer,
    MailStore,
    PortInUseError,
    RunningServer,
    create_gmail_app,
    refresh_token_for,
    serve,
    start_in_thread,
)

from .conftest import build_gmail

GmailFor = Callable[[str], Resource]
SendMail = Callable[..., dict[str, Any]]


def headers_of(message: dict[str, Any]) -> dict[str, str]:
    return {h["name"]: h["value"] for h in message["payload"]["headers"]}


def search(gmail: Resource, q: str, **params: Any) -> list[str]:
    found = gmail.users().messages().list(userId="me", q=q, **params).execute()
    return [m["id"] for m in found.get("messages", [])]


def error_json(exc: HttpError) -> dict[str, Any]:
    return json.loads(exc.content)["error"]


def decode(data: str) -> str:
    return base64.urlsafe_b64decode(data).decode()


# -- send / get / threads ---------------------------------------------------------------


def test_send_get_and_reply_threading(gmail_for: GmailFor, send_mail: SendMail, address) -> None:
    alice, bob = address("alice"), address("bob")
    gmail = gmail_for(alice)

    sent = send_mail(alice, to=bob, subject="Quick question", text="Hi Bob", html="<p>Hi Bob</p>")
    assert sent["labelIds"] == ["SENT"]
    assert len(sent["id"]) == 16 and int(sent["id"], 16)
    assert sent["threadId"] == sent["id"]  # a new thread is named after its first message

    full = gmail.users().messages().get(userId="me", id=sent["id"]).execute()
    headers = headers_of(full)
    assert headers["To"] == bob and headers["Subject"] == "Quick question"
    assert headers["Message-ID"].endswith("@mail.gmail.com>")  # Gmail fills it in
    assert full["snippet"] == "Hi Bob"
    assert int(full["internalDate"]) > 0 and int(full["historyId"]) > 0
    assert full["payload"]["mimeType"] == "multipart/alternative"
    plain, rich = full["payload"]["parts"]
    assert (plain["partId"], plain["mimeType"], decode(plain["body"]["data"])) == (
        "0",
        "text/plain",
        "Hi Bob\n",
    )
    assert (rich["partId"], decode(rich["body"]["data"])) == ("1", "<p>Hi Bob</p>\n")

    raw = gmail.users().messages().get(userId="me", id=sent["id"], format="raw").execute()
    parsed = BytesParser(policy=policy.default).parsebytes(base64.urlsafe_b64decode(raw["raw"]))
    assert parsed["Message-ID"] == headers["Message-ID"]

    minimal = gmail.users().messages().get(userId="me", id=sent["id"], format="minimal").execute()
    assert "payload" not in minimal and minimal["labelIds"] == ["SENT"]

    meta = (
        gmail.users()
        .messages()
        .get(
            userId="me", id=sent["id"], format="metadata", metadataHeaders=["message-id", "Subject"]
        )
        .execute()
    )
    assert [h["name"] for h in meta["payload"]["headers"]] == ["Message-ID", "Subject"]

    follow_up = send_mail(
        alice,
        to=bob,
        subject="Re: Quick question",
        thread_id=sent["threadId"],
        headers={"In-Reply-To": headers["Message-ID"], "References": headers["Message-ID"]},
    )
    assert follow_up["threadId"] == sent["threadId"] and follow_up["id"] != sent["id"]

    stray = send_mail(alice, to=bob, thread_id="ffffffffffffffff")  # unknown thread: new one
    assert stray["threadId"] == stray["id"]

    thread = (
        gmail.users()
        .threads()
        .get(userId="me", id=sent["threadId"], format="metadata", metadataHeaders=["Subject"])
        .execute()
    )
    assert [m["id"] for m in thread["messages"]] == [sent["id"], follow_up["id"]]
    assert thread["historyId"] == thread["messages"][-1]["historyId"]
    assert headers_of(thread["messages"][1]) == {"Subject": "Re: Quick question"}

    profile = gmail.users().getProfile(userId="me").execute()
    assert profile["emailAddress"] == alice
    assert (profile["messagesTotal"], profile["threadsTotal"]) == (3, 2)


def test_message_id_header_is_kept(gmail_for: GmailFor, send_mail: SendMail, address) -> None:
    alice = address("alice")
    sent = send_mail(
        alice, to=address(), headers={"Message-ID": "<step-1.contact-42@nurture.test>"}
    )
    got = (
        gmail_for(alice)
        .users()
        .messages()
        .get(userId="me", id=sent["id"], format="metadata")
        .execute()
    )
    assert headers_of(got)["Message-ID"] == "<step-1.contact-42@nurture.test>"
    assert headers_of(got)["From"] == alice  # Gmail fills in the account when From is missing


def test_user_id_may_be_own_address_but_not_another(gmail_for: GmailFor, address) -> None:
    alice = address("alice")
    gmail = gmail_for(alice)
    assert gmail.users().getProfile(userId=alice).execute()["emailAddress"] == alice
    with pytest.raises(HttpError) as exc:
        gmail.users().getProfile(userId=address("mallory")).execute()
    assert exc.value.status_code == 403
    assert error_json(exc.value)["status"] == "PERMISSION_DENIED"


def test_bad_requests_get_gmail_errors(gmail_for: GmailFor, address) -> None:
    gmail = gmail_for(address("alice"))
    with pytest.raises(HttpError) as exc:
        gmail.users().messages().send(userId="me", body={"raw": raw_no_recipient()}).execute()
    assert exc.value.status_code == 400
    assert error_json(exc.value)["message"] == "Recipient address required"

    with pytest.raises(HttpError) as exc:
        gmail.users().messages().get(userId="me", id="0123456789abcdef").execute()
    assert exc.value.status_code == 404
    assert error_json(exc.value) == {
        "code": 404,
        "message": "Requested entity was not found.",
        "errors": [
            {"message": "Requested entity was not found.", "domain": "global", "reason": "notFound"}
        ],
        "status": "NOT_FOUND",
    }

    with pytest.raises(HttpError) as exc:
        gmail.users().messages().get(userId="me", id="not-an-id").execute()
    assert exc.value.status_code == 400 and error_json(exc.value)["message"] == "Invalid id value"


def raw_no_recipient() -> str:
    return base64.urlsafe_b64encode(b"Subject: nobody\r\n\r\nhello\r\n").decode()


def test_labels_watch_and_stop(gmail_for: GmailFor, address) -> None:
    gmail = gmail_for(address("alice"))
    labels = {lbl["id"] for lbl in gmail.users().labels().list(userId="me").execute()["labels"]}
    assert {"INBOX", "SENT", "SPAM", "TRASH", "UNREAD"} <= labels

    watch = gmail.users().watch(userId="me", body={"topicName": "projects/p/topics/t"}).execute()
    assert int(watch["expiration"]) > time.time() * 1000
    assert watch["historyId"] == gmail.users().getProfile(userId="me").execute()["historyId"]
    assert gmail.users().stop(userId="me").execute() == ""  # empty 204, as Gmail answers


# -- search -----------------------------------------------------------------------------


def test_rfc822msgid_search_waits_for_the_index(
    gmail_for: GmailFor, send_mail: SendMail, admin: httpx.Client, address
) -> None:
    admin.post("/_local/gmail/settings", json={"search_lag_seconds": 0.3}).raise_for_status()
    alice = address("alice")
    gmail = gmail_for(alice)
    message_id = "<lag-check@nurture.test>"
    sent = send_mail(alice, to=address(), headers={"Message-ID": message_id})

    assert search(gmail, f"rfc822msgid:{message_id}") == []  # not indexed yet
    # Listing by label is not a search, so it sees the message at once.
    assert search(gmail, "", labelIds=["SENT"]) == [sent["id"]]

    time.sleep(0.35)
    assert search(gmail, f"rfc822msgid:{message_id}") == [sent["id"]]
    assert search(gmail, "rfc822msgid:lag-check@nurture.test") == [sent["id"]]
    assert search(gmail, "rfc822msgid:<other@nurture.test>") == []


def test_search_lag_per_mailbox_with_store_clock(address) -> None:
    now = [1_700_000_000.0]
    mail_store = MailStore(search_lag_seconds=5, clock=lambda: now[0])
    alice, bob = address("alice"), address("bob")
    mail_store.set_search_lag(60, mailbox=alice)
    assert (mail_store.search_lag_seconds(alice), mail_store.search_lag_seconds(bob)) == (60, 5)
    with start_in_thread(create_gmail_app(mail_store)) as server:
        gmail = build_gmail(server.url, Credentials(token=f"local:{alice}"))
        body = {
            "raw": base64.urlsafe_b64encode(
                f"To: {bob}\r\nMessage-ID: <clock@test>\r\nSubject: x\r\n\r\nbody\r\n".encode()
            ).decode()
        }
        sent = gmail.users().messages().send(userId="me", body=body).execute()
        now[0] += 59
        assert search(gmail, "rfc822msgid:clock@test") == []
        now[0] += 1
        assert search(gmail, "rfc822msgid:clock@test") == [sent["id"]]
    mail_store.close()


def test_spam_and_trash_only_with_include_spam_trash(
    gmail_for: GmailFor, send_mail: SendMail, admin: httpx.Client, address
) -> None:
    alice = address("alice")
    gmail = gmail_for(alice)
    spam = admin.post(
        "/_local/gmail/inbound",
        json={
            "mailbox": alice,
            "from": "spammer@example.net",
            "subject": "WIN",
            "text": "prize",
            "labels": ["SPAM"],
            "message_id": "spam-1@example.net",
        },
    ).json()
    trashed = send_mail(alice, to=address(), headers={"Message-ID": "<trash-1@nurture.test>"})
    result = gmail.users().messages().trash(userId="me", id=trashed["id"]).execute()
    assert "TRASH" in result["labelIds"]

    for q, message_id in (
        ("rfc822msgid:spam-1@example.net", spam["id"]),
        ("rfc822msgid:<trash-1@nurture.test>", trashed["id"]),
    ):
        assert search(gmail, q) == []
        assert search(gmail, q, includeSpamTrash=True) == [message_id]
        assert search(gmail, f"{q} in:anywhere") == [message_id]
    assert search(gmail, "in:spam") == [spam["id"]]
    assert set(search(gmail, "", includeSpamTrash=True)) == {spam["id"], trashed["id"]}
    assert search(gmail, "") == []

    gmail.users().messages().untrash(userId="me", id=trashed["id"]).execute()
    assert search(gmail, "rfc822msgid:trash-1@nurture.test") == [trashed["id"]]


def test_list_pages_and_query_operators(gmail_for: GmailFor, send_mail: SendMail, address) -> None:
    alice, bob = address("alice"), address("bob")
    gmail = gmail_for(alice)
    ids = [send_mail(alice, to=bob, subject=f"Note {i}", text=f"body {i}")["id"] for i in range(3)]

    first = gmail.users().messages().list(userId="me", maxResults=2).execute()
    assert [m["id"] for m in first["messages"]] == ids[::-1][:2]  # newest first
    rest = (
        gmail.users()
        .messages()
        .list(userId="me", maxResults=2, pageToken=first["nextPageToken"])
        .execute()
    )
    assert [m["id"] for m in rest["messages"]] == [ids[0]] and "nextPageToken" not in rest

    assert search(gmail, 'subject:"Note 1"') == [ids[1]]
    assert search(gmail, f"to:{bob} -subject:note") == []
    assert search(gmail, '"body 2"') == [ids[2]]


# -- history ----------------------------------------------------------------------------


def test_history_list_and_expiry(
    gmail_for: GmailFor, send_mail: SendMail, admin: httpx.Client, address
) -> None:
    alice = address("alice")
    gmail = gmail_for(alice)
    start = gmail.users().getProfile(userId="me").execute()["historyId"]

    empty = gmail.users().history().list(userId="me", startHistoryId=start).execute()
    assert empty == {"historyId": start}

    first = send_mail(alice, to=address())
    second = send_mail(alice, to=address())
    history = (
        gmail.users()
        .history()
        .list(userId="me", startHistoryId=start, historyTypes=["messageAdded"])
        .execute()
    )
    added = [h["messagesAdded"][0]["message"] for h in history["history"]]
    assert [m["id"] for m in added] == [first["id"], second["id"]]
    assert added[0] == {"id": first["id"], "threadId": first["threadId"], "labelIds": ["SENT"]}
    assert int(history["historyId"]) == int(start) + 2

    assert (
        "history"
        not in gmail.users()
        .history()
        .list(userId="me", startHistoryId=start, labelId="INBOX")
        .execute()
    )

    page = gmail.users().history().list(userId="me", startHistoryId=start, maxResults=1).execute()
    assert len(page["history"]) == 1 and page["nextPageToken"]
    page2 = (
        gmail.users()
        .history()
        .list(userId="me", startHistoryId=start, maxResults=1, pageToken=page["nextPageToken"])
        .execute()
    )
    assert page2["history"][0]["messages"][0]["id"] == second["id"]

    expired = admin.post("/_local/gmail/expire-history", json={"mailbox": alice}).json()
    assert expired["historyId"] == history["historyId"]
    with pytest.raises(HttpError) as exc:
        gmail.users().history().list(userId="me", startHistoryId=start).execute()
    assert exc.value.status_code == 404
    assert error_json(exc.value)["status"] == "NOT_FOUND"
    assert error_json(exc.value)["message"] == "Requested entity was not found."
    # Starting from the current id (what a full sync yields) works again.
    fresh = gmail.users().history().list(userId="me", startHistoryId=expired["historyId"]).execute()
    assert fresh == {"historyId": expired["historyId"]}


def test_inbound_reply_arrives_in_thread_and_history(
    gmail_for: GmailFor, send_mail: SendMail, admin: httpx.Client, address
) -> None:
    alice, contact = address("alice"), address("contact")
    gmail = gmail_for(alice)
    sent = send_mail(
        alice, to=contact, subject="Intro", headers={"Message-ID": "<intro-1@nurture.test>"}
    )
    start = gmail.users().getProfile(userId="me").execute()["historyId"]

    reply = admin.post(
        "/_local/gmail/inbound",
        json={
            "mailbox": alice,
            "from": f"Carla Contact <{contact}>",
            "subject": "Re: Intro",
            "text": "Sounds good, let's talk.",
            "in_reply_to": "intro-1@nurture.test",
        },
    ).json()
    assert reply["threadId"] == sent["threadId"]
    assert reply["message_id"].startswith("<") and reply["message_id"].endswith(">")

    history = (
        gmail.users()
        .history()
        .list(userId="me", startHistoryId=start, historyTypes=["messageAdded"], labelId="INBOX")
        .execute()
    )
    (record,) = history["history"]
    assert record["messagesAdded"][0]["message"] == {
        "id": reply["id"],
        "threadId": sent["threadId"],
        "labelIds": ["INBOX", "UNREAD"],
    }

    thread = gmail.users().threads().get(userId="me", id=sent["threadId"], format="full").execute()
    assert [m["id"] for m in thread["messages"]] == [sent["id"], reply["id"]]
    reply_headers = headers_of(thread["messages"][1])
    assert reply_headers["In-Reply-To"] == "<intro-1@nurture.test>"
    assert reply_headers["References"] == "<intro-1@nurture.test>"
    assert reply_headers["From"] == f"Carla Contact <{contact}>"
    assert thread["messages"][1]["snippet"] == "Sounds good, let&#39;s talk."

    # An auto-reply threaded by `thread_of`, with extra headers passed through.
    auto = admin.post(
        "/_local/gmail/inbound",
        json={
            "mailbox": alice,
            "from": contact,
            "subject": "Out of office",
            "text": "Away",
            "thread_of": "<intro-1@nurture.test>",
            "headers": {"Auto-Submitted": "auto-replied"},
        },
    ).json()
    assert auto["threadId"] == sent["threadId"]
    got = gmail.users().messages().get(userId="me", id=auto["id"], format="metadata").execute()
    assert headers_of(got)["Auto-Submitted"] == "auto-replied"

    unrelated = admin.post(
        "/_local/gmail/inbound",
        json={"mailbox": alice, "from": contact, "text": "New topic", "in_reply_to": "<nope@x>"},
    ).json()
    assert unrelated["threadId"] == unrelated["id"]


# -- bounces ----------------------------------------------------------------------------


def test_bounce_produces_a_delivery_status_notification(
    gmail_for: GmailFor, send_mail: SendMail, address
) -> None:
    alice = address("alice")
    gmail = gmail_for(alice)
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    sent = send_mail(alice, to="nobody@bounce.test, fine@example.com", subject="Hello")
    original = headers_of(
        gmail.users().messages().get(userId="me", id=sent["id"], format="metadata").execute()
    )

    history = (
        gmail.users().history().list(userId="me", startHistoryId=start, labelId="INBOX").execute()
    )
    (record,) = history["history"]
    dsn_ref = record["messagesAdded"][0]["message"]
    assert dsn_ref["threadId"] == sent["threadId"]
    assert dsn_ref["labelIds"] == ["INBOX", "UNREAD"]

    dsn = gmail.users().messages().get(userId="me", id=dsn_ref["id"]).execute()
    headers = headers_of(dsn)
    assert headers["From"] == "Mail Delivery Subsystem <mailer-daemon@googlemail.com>"
    assert headers["Subject"] == "Delivery Status Notification (Failure)"
    assert headers["X-Failed-Recipients"] == "nobody@bounce.test"
    assert headers["In-Reply-To"] == headers["References"] == original["Message-ID"]
    assert headers["Content-Type"].startswith("multipart/report")
    assert "report-type" in headers["Content-Type"] and "delivery-status" in headers["Content-Type"]
    human, status, returned = dsn["payload"]["parts"]
    assert "Address not found" in decode(human["body"]["data"])
    assert status["mimeType"] == "message/delivery-status"
    report = decode(status["body"]["data"])
    assert "Final-Recipient: rfc822; nobody@bounce.test" in report and "Status: 5.1.1" in report
    assert returned["mimeType"] == "text/rfc822-headers"
    assert f"Message-ID: {original['Message-ID']}" in decode(returned["body"]["data"])

    # A local part starting with "bounce" bounces on any domain.
    other = send_mail(alice, to="bounce-7@example.com")
    thread = (
        gmail.users().threads().get(userId="me", id=other["threadId"], format="minimal").execute()
    )
    assert len(thread["messages"]) == 2


# -- auth -------------------------------------------------------------------------------


def test_unknown_and_revoked_tokens_get_401(
    gmail_server: RunningServer, gmail_for: GmailFor, admin: httpx.Client, address
) -> None:
    alice = address("alice")
    profile_url = "/gmail/v1/users/me/profile"
    bogus = admin.get(profile_url, headers={"Authorization": "Bearer ya29.real-looking"})
    assert bogus.status_code == 401
    error = bogus.json()["error"]
    assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")
    assert error["errors"][0]["reason"] == "authError"
    assert admin.get(profile_url).status_code == 401

    good = {"Authorization": f"Bearer local:{alice}"}
    assert admin.get(profile_url, headers=good).status_code == 200
    admin.post("/_local/gmail/revoke", json={"email": alice}).raise_for_status()
    assert admin.get(profile_url, headers=good).status_code == 401

    # The SDK answers a 401 by trying to refresh; a bare access token cannot.
    with pytest.raises(RefreshError):
        gmail_for(alice).users().getProfile(userId="me").execute()

    admin.post("/_local/gmail/reconnect", json={"email": alice}).raise_for_status()
    assert gmail_for(alice).users().getProfile(userId="me").execute()["emailAddress"] == alice


def test_refresh_token_grant_and_revocation(
    gmail_server: RunningServer, admin: httpx.Client, address
) -> None:
    alice = address("alice")

    def credentials() -> Credentials:
        return Credentials(
            token=None,
            refresh_token=refresh_token_for(alice),
            token_uri=gmail_server.url + "/token",
            client_id="local-client",
            client_secret="local-secret",
        )

    creds = credentials()
    creds.refresh(AuthRequest())
    assert creds.token == f"local:{alice}" and creds.expiry is not None

    # The SDK refreshes on its own before the first call.
    gmail = build_gmail(gmail_server.url, credentials())
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"] == alice

    admin.post("/_local/gmail/revoke", json={"email": alice}).raise_for_status()
    with pytest.raises(RefreshError) as exc:
        credentials().refresh(AuthRequest())
    assert "invalid_grant" in str(exc.value)
    assert "Token has been expired or revoked." in str(exc.value)
    # A client holding a (now revoked) access token: 401, refresh, invalid_grant.
    with pytest.raises(RefreshError):
        gmail.users().getProfile(userId="me").execute()

    response = admin.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "c",
            "refresh_token": refresh_token_for(alice),
        },
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }

    admin.post("/_local/gmail/reconnect", json={"email": alice}).raise_for_status()
    creds = credentials()
    creds.refresh(AuthRequest())
    assert creds.token == f"local:{alice}"


# -- faults -----------------------------------------------------------------------------


def test_accept_then_500_stores_the_message(
    gmail_for: GmailFor, admin: httpx.Client, address
) -> None:
    alice = address("alice")
    gmail = gmail_for(alice)
    admin.post(
        "/_local/faults",
        json={"service": "gmail", "operation": "send", "kind": "accept_then_500", "count": 1},
    ).raise_for_status()
    body = {
        "raw": base64.urlsafe_b64encode(
            f"To: {address()}\r\nMessage-ID: <lost-answer@nurture.test>\r\nSubject: x\r\n\r\nhi\r\n".encode()
        ).decode()
    }
    with pytest.raises(HttpError) as exc:
        gmail.users().messages().send(userId="me", body=body).execute()
    assert exc.value.status_code == 500
    assert error_json(exc.value)["status"] == "INTERNAL"

    # The provider did accept it: a reconciler finds it by Message-ID.
    (found,) = search(gmail, "rfc822msgid:<lost-answer@nurture.test>")
    assert gmail.users().messages().get(userId="me", id=found).execute()["labelIds"] == ["SENT"]
    # The fault was used up.
    assert gmail.users().messages().send(userId="me", body=body).execute()["labelIds"] == ["SENT"]


def test_500_and_429_faults_reject_without_storing(
    gmail_for: GmailFor, send_mail: SendMail, admin: httpx.Client, address
) -> None:
    alice = address("alice")
    admin.post(
        "/_local/faults", json={"service": "gmail", "kind": "500", "count": 2}
    ).raise_for_status()
    admin.post(
        "/_local/faults", json={"service": "gmail", "kind": "429", "retry_after": 7}
    ).raise_for_status()
    assert [f["kind"] for f in admin.get("/_local/faults").json()["pending"]] == ["500", "429"]

    for expected in (500, 500, 429):
        with pytest.raises(HttpError) as exc:
            send_mail(alice, to=address())
        assert exc.value.status_code == expected
    assert exc.value.resp["retry-after"] == "7"
    assert error_json(exc.value)["status"] == "RESOURCE_EXHAUSTED"
    assert error_json(exc.value)["errors"][0]["reason"] == "rateLimitExceeded"

    gmail = gmail_for(alice)
    assert gmail.users().getProfile(userId="me").execute()["messagesTotal"] == 0
    assert admin.get("/_local/faults").json() == {"pending": []}
    send_mail(alice, to=address())
    assert gmail.users().getProfile(userId="me").execute()["messagesTotal"] == 1

    bad = admin.post("/_local/faults", json={"service": "gmail", "kind": "503"})
    assert bad.status_code == 422


# -- servers ----------------------------------------------------------------------------


def test_busy_port_raises_port_in_use(gmail_server: RunningServer, mail_store: MailStore) -> None:
    with pytest.raises(PortInUseError) as exc:
        start_in_thread(
            create_gmail_app(mail_store), port=gmail_server.port, setting="NURTURE_GMAIL_PORT"
        )
    message = str(exc.value)
    assert f"port {gmail_server.port} on 127.0.0.1 is already in use" in message
    assert "NURTURE_GMAIL_PORT" in message


async def test_serve_inside_a_running_loop(mail_store: MailStore) -> None:
    server = LocalServer(create_gmail_app(mail_store))
    task = asyncio.create_task(server.serve())
    async with httpx.AsyncClient(base_url=server.url) as client:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert (await client.get("/_local/healthz")).json() == {"ok": True}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The port is free again.
    with socket.create_server(("127.0.0.1", server.port)):
        pass


async def test_serve_reports_busy_port(mail_store: MailStore) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(PortInUseError):
            await serve(create_gmail_app(mail_store), "127.0.0.1", port)
