"""Gmail API access for a sender's connected inbox, through google-api-python-client.

The API endpoint is configurable (``NURTURE_GMAIL_API_ENDPOINT``): the embedded stack and the
tests point it at the local Gmail endpoint, production at Google. Credentials come from the
inbox's stored grant, never from workflow input.
"""

from __future__ import annotations

import base64
import email.utils
from email.message import EmailMessage
from typing import Any

from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from nurture.errors import NurtureError
from nurture.settings import Settings
from nurture.store.models import Inbox

GMAIL_SCOPES = ["https://www.googleapis.com/auth/gmail.send", "https://www.googleapis.com/auth/gmail.readonly"]


class InboxDisconnected(NurtureError):
    code = "inbox_disconnected"


def credentials_for(inbox: Inbox, settings: Settings, stored_grant: dict[str, Any] | None) -> Credentials:
    if inbox.state != "connected":
        raise InboxDisconnected(f"the inbox of user {inbox.user_id} is disconnected; reconnect it with `nurture inbox connect`")
    if inbox.provider == "local":
        # The local Gmail endpoint knows a mailbox by its address; no OAuth is involved.
        return Credentials(token=f"local:{inbox.email}")
    if not stored_grant or not stored_grant.get("refresh_token"):
        raise InboxDisconnected(f"the inbox of user {inbox.user_id} has no stored grant; reconnect it with `nurture inbox connect`")
    return Credentials(
        token=stored_grant.get("token"),
        refresh_token=stored_grant["refresh_token"],
        token_uri=settings.token_uri,
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret.get_secret_value() if settings.google_client_secret else None,
        scopes=GMAIL_SCOPES,
    )


def gmail_service(credentials: Credentials, settings: Settings) -> Any:
    return build(
        "gmail", "v1", credentials=credentials, static_discovery=True, cache_discovery=False,
        client_options={"api_endpoint": settings.gmail_url},
    )


def build_mime(
    *,
    from_name: str,
    from_addr: str,
    to_addr: str,
    subject: str,
    text: str,
    message_id: str,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    list_unsubscribe: str | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = email.utils.formataddr((from_name, from_addr)) if from_name else from_addr
    msg["To"] = to_addr
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = " ".join(references or [in_reply_to])
    if list_unsubscribe:
        msg["List-Unsubscribe"] = f"<{list_unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text)
    return msg


def encode_raw(msg: EmailMessage) -> str:
    return base64.urlsafe_b64encode(msg.as_bytes()).decode().rstrip("=")
