"""A local stand-in for the Gmail API (v1) and Google's OAuth token endpoint.

The real ``google-api-python-client`` talks to it unchanged: build the service with
``client_options={"api_endpoint": BASE_URL}`` and requests arrive as
``/gmail/v1/users/{userId}/...?alt=json``. Responses use Gmail's JSON shapes and
error envelope, so the engine's error handling is exercised for real.

Messages are captured, never delivered. Behaviour worth knowing (all deliberate,
because production code has to cope with it):

* Search lags: ``messages.list`` with a ``q`` only finds a message
  ``search_lag_seconds`` after it arrived (global or per-mailbox setting).
* SPAM/TRASH are hidden from ``messages.list`` unless ``includeSpamTrash=true``,
  ``in:anywhere``/``in:spam``/``in:trash`` or a SPAM/TRASH ``labelIds`` filter.
* ``history.list`` answers 404 once the requested start is older than the retained
  history (force it with ``POST /_local/gmail/expire-history``).
* Sending to ``*@bounce.test`` or a local part starting with ``bounce`` puts a
  delivery-status notification (bounce) into the sender's inbox, on the same thread.

Auth: the access token ``local:<email>`` is the mailbox ``<email>`` (created on first
use); the refresh token ``local-refresh:<email>`` refreshes it at ``POST /token``.
Everything under ``/_local/`` is for tests and the dev stack, not part of Gmail.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import secrets
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, parseaddr
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import Body, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from nurture.local.mailstore import (
    Fault,
    GmailMessage,
    HistoryRecord,
    MailStore,
    NewGmailMessage,
    is_email,
    normalize_email,
    strip_angle_brackets,
)
from nurture.local.outbox import admin_router

__all__ = [
    "ACCESS_TOKEN_PREFIX",
    "REFRESH_TOKEN_PREFIX",
    "GmailApiError",
    "access_token_for",
    "create_gmail_app",
    "refresh_token_for",
]

ACCESS_TOKEN_PREFIX = "local:"
REFRESH_TOKEN_PREFIX = "local-refresh:"
DEFAULT_SCOPE = "https://www.googleapis.com/auth/gmail.modify"

SYSTEM_LABELS: tuple[str, ...] = (
    "CHAT",
    "SENT",
    "INBOX",
    "IMPORTANT",
    "TRASH",
    "DRAFT",
    "SPAM",
    "CATEGORY_FORUMS",
    "CATEGORY_UPDATES",
    "CATEGORY_PERSONAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_SOCIAL",
    "STARRED",
    "UNREAD",
)
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
HIDDEN_LABELS = frozenset({"SPAM", "TRASH"})

MAILER_DAEMON = "Mail Delivery Subsystem <mailer-daemon@googlemail.com>"
BOUNCE_DOMAIN = "bounce.test"

_GMAIL_ID_RE = re.compile(r"^[0-9a-fA-F]{1,16}$")
_PARSER = BytesParser(policy=policy.default)
# Re-serialising parsed sub-messages must not refold their header lines.
_UNFOLDED = policy.default.clone(linesep="\r\n", max_line_length=None)


def access_token_for(email: str) -> str:
    """The local access token that authenticates as ``email``."""
    return f"{ACCESS_TOKEN_PREFIX}{normalize_email(email)}"


def refresh_token_for(email: str) -> str:
    """The local refresh token that ``POST /token`` exchanges for ``email``'s access token."""
    return f"{REFRESH_TOKEN_PREFIX}{normalize_email(email)}"


# --------------------------------------------------------------------------------------
# Errors in Gmail's envelope: {"error": {"code", "message", "errors": [...], "status"}}
# --------------------------------------------------------------------------------------


class GmailApiError(Exception):
    """An error answered in Gmail's JSON error shape (googleapiclient's HttpError parses it)."""

    def __init__(
        self,
        code: int,
        status: str,
        message: str,
        *,
        reason: str,
        domain: str = "global",
        extra: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.reason = reason
        self.domain = domain
        self.extra = extra or {}
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        detail = {
            "message": self.message,
            "domain": self.domain,
            "reason": self.reason,
            **self.extra,
        }
        return JSONResponse(
            {
                "error": {
                    "code": self.code,
                    "message": self.message,
                    "errors": [detail],
                    "status": self.status,
                }
            },
            status_code=self.code,
            headers=self.headers,
        )


def _invalid(message: str) -> GmailApiError:
    return GmailApiError(400, "INVALID_ARGUMENT", message, reason="invalidArgument")


def _not_found() -> GmailApiError:
    return GmailApiError(404, "NOT_FOUND", "Requested entity was not found.", reason="notFound")


def _unauthenticated(missing: bool) -> GmailApiError:
    # Google's wording and headers. (On any 401 the SDK's authorized http tries one
    # credentials refresh before giving up.)
    what = "is missing required" if missing else "had invalid"
    return GmailApiError(
        401,
        "UNAUTHENTICATED",
        f"Request {what} authentication credential{'' if missing else 's'}. Expected OAuth 2 "
        "access token, login cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        reason="required" if missing else "authError",
        extra={"location": "Authorization", "locationType": "header"},
        headers={
            "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'
            + ("" if missing else ', error="invalid_token"')
        },
    )


def _fault_error(fault: Fault) -> GmailApiError:
    if fault.kind == "429":
        retry_after = fault.retry_after if fault.retry_after is not None else 1
        until = datetime.now(UTC) + timedelta(seconds=retry_after)
        message = fault.message or (
            f"User-rate limit exceeded.  Retry after {until.isoformat(timespec='milliseconds')}"
        )
        return GmailApiError(
            429,
            "RESOURCE_EXHAUSTED",
            message,
            reason="rateLimitExceeded",
            domain="usageLimits",
            headers={"Retry-After": str(retry_after)},
        )
    if fault.kind == "400":
        return GmailApiError(
            400, "INVALID_ARGUMENT", fault.message or "Bad Request", reason="badRequest"
        )
    return GmailApiError(
        500, "INTERNAL", fault.message or "Internal error encountered.", reason="backendError"
    )


# --------------------------------------------------------------------------------------
# RFC 822 helpers
# --------------------------------------------------------------------------------------


def _b64url_decode(data: str) -> bytes:
    # Gmail accepts URL-safe base64 with or without padding.
    cleaned = "".join(data.split())
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _invalid(f"Invalid value for ByteString: {data[:40]}") from exc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _parse(raw: bytes) -> EmailMessage:
    msg = _PARSER.parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def _addresses(msg: Message, *names: str) -> list[str]:
    values = [str(v) for name in names for v in (msg.get_all(name) or [])]
    return [addr for _, addr in getaddresses(values) if addr]


def _text_of(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else content.decode("utf-8", "replace")


def _bodies(msg: EmailMessage) -> tuple[str | None, str | None]:
    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    return (
        _text_of(text_part) if text_part is not None else None,
        _text_of(html_part) if html_part is not None else None,
    )


def _snippet(text: str | None, html_body: str | None) -> str:
    source = text if text is not None else html.unescape(re.sub(r"<[^>]+>", " ", html_body or ""))
    collapsed = " ".join(source.split())
    # Gmail escapes snippets as HTML, quotes as &#39;.
    return html.escape(collapsed[:200], quote=True).replace("&#x27;", "&#39;")


def _header_block(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, _ = raw.partition(sep)
        if found:
            return head
    return raw


def _line_ending(raw: bytes) -> bytes:
    return b"\r\n" if raw.split(b"\n", 1)[0].endswith(b"\r") else b"\n"


def _new_message_id() -> str:
    # The shape of the ids Gmail assigns to messages sent without one.
    token = secrets.token_urlsafe(33).replace("-", "+").replace("_", "=")
    return f"<CA{token}@mail.gmail.com>"


def _rfc2822_now() -> str:
    return format_datetime(datetime.now(UTC))


def _complete_headers(raw: bytes, msg: EmailMessage, mailbox: str) -> bytes:
    """Add the headers Gmail fills in when a client leaves them out.

    Prepending keeps the client's bytes untouched (re-serialising with the email
    package would refold headers and re-encode bodies).
    """
    eol = _line_ending(raw)
    added: list[str] = []
    if msg["Message-ID"] is None:
        added.append(f"Message-ID: {_new_message_id()}")
    if msg["Date"] is None:
        added.append(f"Date: {_rfc2822_now()}")
    if msg["From"] is None:
        added.append(f"From: {mailbox}")
    if not added:
        return raw
    return eol.join(line.encode("ascii") for line in added) + eol + raw


def _new_gmail_message(raw: bytes, labels: Sequence[str], thread_id: str | None) -> NewGmailMessage:
    msg = _parse(raw)
    text, html_body = _bodies(msg)
    return NewGmailMessage(
        raw=raw,
        label_ids=list(labels),
        thread_id=thread_id,
        message_id_header=str(msg["Message-ID"] or "").strip(),
        subject=str(msg["Subject"] or ""),
        from_addr=parseaddr(str(msg["From"] or ""))[1],
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        bcc=_addresses(msg, "Bcc"),
        snippet=_snippet(text, html_body),
        text_body=text,
        html_body=html_body,
        headers=[(name, str(value)) for name, value in msg.items()],
    )


def _bracketed(message_id: str) -> str:
    return f"<{strip_angle_brackets(message_id)}>"


# --------------------------------------------------------------------------------------
# Rendering messages the way Gmail does
# --------------------------------------------------------------------------------------

MessageFormat = Literal["full", "metadata", "minimal", "raw"]


def _headers_json(part: Message, only: Sequence[str] | None = None) -> list[dict[str, str]]:
    wanted = {h.lower() for h in only} if only else None
    return [
        {"name": name, "value": str(value)}
        for name, value in part.items()
        if wanted is None or name.lower() in wanted
    ]


def _leaf_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    # message/* parts parse into sub-messages (delivery-status header blocks,
    # rfc822); Gmail serves their text as the part body.
    inner = part.get_payload()
    blocks = inner if isinstance(inner, list) else [inner]
    return b"".join(
        b.as_bytes(policy=_UNFOLDED) if isinstance(b, Message) else str(b).encode() for b in blocks
    )


def _payload_json(part: Message, part_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": part.get_filename() or "",
        "headers": _headers_json(part),
    }
    if part.get_content_maintype() == "multipart":
        out["body"] = {"size": 0}
        children = part.get_payload()
        assert isinstance(children, list)
        prefix = f"{part_id}." if part_id else ""
        out["parts"] = [_payload_json(child, f"{prefix}{i}") for i, child in enumerate(children)]
    else:
        # Gmail would hand attachments out by attachmentId; inlining keeps the fake
        # small and clients read `data` either way for text parts.
        data = _leaf_bytes(part)
        out["body"] = {"size": len(data), "data": _b64url(data)} if data else {"size": 0}
    return out


def _message_json(
    m: GmailMessage, fmt: MessageFormat, metadata_headers: Sequence[str] = ()
) -> dict[str, Any]:
    out: dict[str, Any] = {"id": m.id, "threadId": m.thread_id, "labelIds": m.label_ids}
    out["snippet"] = m.snippet
    if fmt == "raw":
        out["raw"] = _b64url(m.raw)
    elif fmt == "metadata":
        parsed = _parse(m.raw)
        out["payload"] = {
            "mimeType": parsed.get_content_type(),
            "headers": _headers_json(parsed, metadata_headers or None),
        }
    elif fmt == "full":
        out["payload"] = _payload_json(_parse(m.raw), "")
    out["sizeEstimate"] = m.size
    out["historyId"] = str(m.history_id)
    out["internalDate"] = str(m.internal_date_ms)
    return out


def _ref(m: GmailMessage | HistoryRecord) -> dict[str, str]:
    if isinstance(m, HistoryRecord):
        return {"id": m.message_id, "threadId": m.thread_id}
    return {"id": m.id, "threadId": m.thread_id}


def _history_json(h: HistoryRecord) -> dict[str, Any]:
    message = {**_ref(h), "labelIds": h.label_ids}
    out: dict[str, Any] = {"id": str(h.id), "messages": [_ref(h)]}
    if h.kind == "messageAdded":
        out["messagesAdded"] = [{"message": message}]
    elif h.kind == "messageDeleted":
        out["messagesDeleted"] = [{"message": message}]
    elif h.kind == "labelAdded":
        out["labelsAdded"] = [{"message": message, "labelIds": h.changed_labels}]
    else:
        out["labelsRemoved"] = [{"message": message, "labelIds": h.changed_labels}]
    return out


# --------------------------------------------------------------------------------------
# Search (the subset of Gmail's query language the engine and tests need)
# --------------------------------------------------------------------------------------

_TEXT_OPERATORS = ("from", "to", "cc", "bcc", "subject")


@dataclass(frozen=True)
class _Term:
    negate: bool
    op: str | None  # None = free text
    value: str


@dataclass(frozen=True)
class _Query:
    terms: tuple[_Term, ...]

    @classmethod
    def parse(cls, q: str) -> _Query:
        try:
            tokens = shlex.split(q)
        except ValueError:  # unbalanced quote: Gmail shrugs, so do we
            tokens = q.split()
        terms = []
        for token in tokens:
            negate = token.startswith("-") and len(token) > 1
            body = token[1:] if negate else token
            op, sep, value = body.partition(":")
            if sep and op.lower() in ("rfc822msgid", "in", "label", "is", *_TEXT_OPERATORS):
                terms.append(_Term(negate, op.lower(), value))
            else:
                terms.append(_Term(negate, None, body))
        return cls(tuple(terms))

    def reaches_spam_trash(self) -> bool:
        """Gmail searches SPAM/TRASH only when the query asks for them explicitly."""
        return any(
            not t.negate
            and t.op in ("in", "label")
            and t.value.lower() in ("anywhere", "spam", "trash")
            for t in self.terms
        )

    def matches(self, m: GmailMessage) -> bool:
        return all(_term_matches(t, m) != t.negate for t in self.terms)


def _term_matches(term: _Term, m: GmailMessage) -> bool:
    value = term.value.lower()
    if term.op == "rfc822msgid":
        return strip_angle_brackets(term.value) == strip_angle_brackets(m.message_id_header)
    if term.op == "in":
        return value == "anywhere" or value.upper() in m.label_ids
    if term.op == "label":
        return value.upper().replace("-", "_") in m.label_ids
    if term.op == "is":
        if value == "read":
            return "UNREAD" not in m.label_ids
        return value.upper() in m.label_ids
    if term.op in _TEXT_OPERATORS:
        header = {"from": "From", "to": "To", "cc": "Cc", "bcc": "Bcc", "subject": "Subject"}[
            term.op
        ]
        haystack = " ".join(v for k, v in m.headers if k.lower() == header.lower())
        return value in haystack.lower()
    haystack = " ".join(
        [m.subject, m.from_addr, *m.to, *m.cc, m.text_body or "", m.html_body or ""]
    ).lower()
    return value in haystack


# --------------------------------------------------------------------------------------
# Bounces (delivery-status notifications)
# --------------------------------------------------------------------------------------


def _bounces(address: str) -> bool:
    local, _, domain = address.lower().rpartition("@")
    return domain == BOUNCE_DOMAIN or local.startswith("bounce")


def _dsn_raw(mailbox: str, original: GmailMessage, failed: Sequence[str]) -> bytes:
    """A bounce shaped like Gmail's: multipart/report with the failed recipients."""
    boundary = f"000000000000{secrets.token_hex(8)}"
    now = _rfc2822_now()
    original_id = original.message_id_header
    human = "\r\n".join(
        [
            "** Address not found **",
            "",
            *(
                f"Your message wasn't delivered to {addr} because the address couldn't be "
                "found, or is unable to receive mail."
                for addr in failed
            ),
            "",
            "The response from the remote server was:",
            "550 5.1.1 The email account that you tried to reach does not exist.",
        ]
    )
    per_recipient = "\r\n\r\n".join(
        "\r\n".join(
            [
                f"Final-Recipient: rfc822; {addr}",
                "Action: failed",
                "Status: 5.1.1",
                f"Remote-MTA: dns; mx.{addr.rpartition('@')[2]}",
                "Diagnostic-Code: smtp; 550 5.1.1 The email account that you tried to reach "
                "does not exist.",
                f"Last-Attempt-Date: {now}",
            ]
        )
        for addr in failed
    )
    head = [
        f"Delivered-To: {mailbox}",
        "Return-Path: <>",
        "Auto-Submitted: auto-replied",
        f"Message-ID: <{secrets.token_hex(12)}.{secrets.token_hex(6)}@mx.google.com>",
        f"Date: {now}",
        f"From: {MAILER_DAEMON}",
        f"To: {mailbox}",
        f"X-Failed-Recipients: {', '.join(failed)}",
        "Subject: Delivery Status Notification (Failure)",
        f"References: {original_id}",
        f"In-Reply-To: {original_id}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; boundary="{boundary}"; report-type=delivery-status',
        "",
        f"--{boundary}",
        'Content-Type: text/plain; charset="UTF-8"',
        "",
        human,
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; googlemail.com",
        f"Arrival-Date: {format_datetime(datetime.fromtimestamp(original.added_at, UTC))}",
        f"X-Original-Message-ID: {original_id}",
        "",
        per_recipient,
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
    ]
    original_headers = _header_block(original.raw).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    tail = f"\r\n\r\n--{boundary}--\r\n"
    return "\r\n".join(head).encode("utf-8") + b"\r\n" + original_headers + tail.encode("ascii")


# --------------------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------------------


def _page_offset(page_token: str | None) -> int:
    if not page_token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(page_token.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise _invalid("Invalid pageToken") from exc


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _page_size(max_results: int | None, default: int = 100, cap: int = 500) -> int:
    if max_results is None or max_results <= 0:
        return default
    return min(max_results, cap)


def _check_id(value: str) -> str:
    if not _GMAIL_ID_RE.match(value):
        raise _invalid("Invalid id value")
    return value.lower()


class _InboundRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    mailbox: str
    from_: str = Field(alias="from")
    to: str | None = None
    subject: str = ""
    text: str = ""
    html: str | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    thread_of: str | None = None
    labels: list[str] = Field(default_factory=lambda: ["INBOX", "UNREAD"])
    message_id: str | None = None


class _EmailRequest(BaseModel):
    email: str


class _MailboxRequest(BaseModel):
    mailbox: str


class _SettingsRequest(BaseModel):
    search_lag_seconds: float = Field(ge=0)
    mailbox: str | None = None


class _Gmail:
    """The Gmail behaviour behind the routes, kept apart from HTTP plumbing."""

    def __init__(self, store: MailStore) -> None:
        self.store = store

    # -- auth --------------------------------------------------------------------

    def authenticate(self, authorization: str | None, user_id: str) -> str:
        """Resolve the bearer token to a mailbox and check ``userId`` may be used."""
        if not authorization:
            raise _unauthenticated(missing=True)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(ACCESS_TOKEN_PREFIX):
            raise _unauthenticated(missing=False)
        email = token[len(ACCESS_TOKEN_PREFIX) :]
        if not is_email(email) or self.store.is_revoked(access_token_for(email)):
            raise _unauthenticated(missing=False)
        email = self.store.ensure_mailbox(email).email
        if user_id != "me" and normalize_email(user_id) != email:
            raise GmailApiError(
                403,
                "PERMISSION_DENIED",
                f"Delegation denied for {email}",
                reason="forbidden",
            )
        return email

    # -- messages ----------------------------------------------------------------

    def send(self, mailbox: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("raw"):
            raise _invalid(
                "'raw' RFC822 payload message string or uploading message via /upload/* URL required"
            )
        if not isinstance(body["raw"], str):
            raise _invalid("Invalid value for ByteString")
        raw = _b64url_decode(body["raw"])
        msg = _parse(raw)
        recipients = _addresses(msg, "To", "Cc", "Bcc")
        if not recipients:
            raise _invalid("Recipient address required")
        for header in ("To", "Cc", "Bcc"):
            if any(not is_email(a) for a in _addresses(msg, header)):
                raise _invalid(f"Invalid {header} header")

        fault = self.store.take_fault("gmail", "send")
        if fault is not None and fault.kind != "accept_then_500":
            raise _fault_error(fault)

        raw = _complete_headers(raw, msg, mailbox)
        requested_thread = body.get("threadId")
        thread_id = (
            requested_thread
            if isinstance(requested_thread, str)
            and self.store.thread_exists(mailbox, requested_thread)
            else None
        )
        # Mail to yourself also lands in your inbox, as in Gmail.
        to_self = mailbox in (normalize_email(a) for a in recipients)
        labels = ["SENT", "INBOX", "UNREAD"] if to_self else ["SENT"]
        stored = self.store.add_gmail_message(mailbox, _new_gmail_message(raw, labels, thread_id))

        failed = [a for a in recipients if _bounces(a)]
        if failed:
            dsn = _dsn_raw(mailbox, stored, failed)
            self.store.add_gmail_message(
                mailbox, _new_gmail_message(dsn, ["INBOX", "UNREAD"], stored.thread_id)
            )

        if fault is not None:  # accept_then_500: accepted above, now "lose" the answer
            raise _fault_error(Fault(service="gmail", operation="send", kind="500"))
        return {"id": stored.id, "threadId": stored.thread_id, "labelIds": stored.label_ids}

    def get(self, mailbox: str, message_id: str) -> GmailMessage:
        found = self.store.get_gmail_message(mailbox, _check_id(message_id))
        if found is None:
            raise _not_found()
        return found

    def search(
        self,
        mailbox: str,
        q: str | None,
        label_ids: Sequence[str],
        include_spam_trash: bool,
    ) -> list[GmailMessage]:
        query = _Query.parse(q or "")
        show_hidden = (
            include_spam_trash
            or query.reaches_spam_trash()
            or any(label in HIDDEN_LABELS for label in label_ids)
        )
        # Gmail's search index trails writes; label listings without q do not.
        indexed_before = (
            self.store.now() - self.store.search_lag_seconds(mailbox) if query.terms else None
        )
        results = []
        for m in self.store.gmail_messages(mailbox):
            if not show_hidden and HIDDEN_LABELS.intersection(m.label_ids):
                continue
            if any(label not in m.label_ids for label in label_ids):
                continue
            if indexed_before is not None and m.added_at > indexed_before:
                continue
            if query.matches(m):
                results.append(m)
        return results

    def modify(
        self, mailbox: str, message_id: str, add: Iterable[str], remove: Iterable[str]
    ) -> dict[str, Any]:
        updated = self.store.modify_gmail_labels(
            mailbox, _check_id(message_id), list(add), list(remove)
        )
        if updated is None:
            raise _not_found()
        return {"id": updated.id, "threadId": updated.thread_id, "labelIds": updated.label_ids}

    # -- history -----------------------------------------------------------------

    def history(
        self,
        mailbox: str,
        start_history_id: str | None,
        history_types: Sequence[str],
        label_id: str | None,
        max_results: int | None,
        page_token: str | None,
    ) -> dict[str, Any]:
        if not start_history_id:
            raise _invalid("startHistoryId is required")
        try:
            start = int(start_history_id)
        except ValueError as exc:
            raise _invalid("Invalid startHistoryId") from exc
        for kind in history_types:
            if kind not in HISTORY_TYPES:
                raise _invalid(f"Invalid value at 'history_types' ({kind})")
        box = self.store.ensure_mailbox(mailbox)
        if start < box.history_floor:
            # Gmail's signal that the client must fall back to a full sync.
            raise _not_found()
        after = max(start, _page_offset(page_token))
        records = [
            h
            for h in self.store.gmail_history(mailbox, after)
            if (not history_types or h.kind in history_types)
            and (label_id is None or label_id in h.label_ids)
        ]
        size = _page_size(max_results)
        out: dict[str, Any] = {}
        if records[:size]:
            out["history"] = [_history_json(h) for h in records[:size]]
        if len(records) > size:
            out["nextPageToken"] = _page_token(records[size - 1].id)
        out["historyId"] = str(box.history_id)
        return out

    # -- inbound (admin) -----------------------------------------------------------

    def deliver_inbound(self, req: _InboundRequest) -> GmailMessage:
        mailbox = self.store.ensure_mailbox(req.mailbox).email
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = req.from_
        msg["To"] = req.to or mailbox
        msg["Subject"] = req.subject
        msg["Date"] = _rfc2822_now()
        msg["Message-ID"] = _bracketed(req.message_id) if req.message_id else _new_message_id()
        references = [_bracketed(r) for r in req.references]
        if req.in_reply_to:
            msg["In-Reply-To"] = _bracketed(req.in_reply_to)
            if not references:  # what mail clients do when replying
                references = [_bracketed(req.in_reply_to)]
        if references:
            msg["References"] = " ".join(references)
        for name, value in req.headers.items():
            if name in msg:
                del msg[name]
            msg[name] = value
        msg.set_content(req.text)
        if req.html is not None:
            msg.add_alternative(req.html, subtype="html")
        thread_id = self._thread_for(mailbox, req)
        return self.store.add_gmail_message(
            mailbox, _new_gmail_message(msg.as_bytes(), req.labels, thread_id)
        )

    def _thread_for(self, mailbox: str, req: _InboundRequest) -> str | None:
        # Most specific first: the message replied to, then the reference chain
        # (newest last, so walk it backwards), then the explicit thread anchor.
        candidates = [req.in_reply_to, *reversed(req.references), req.thread_of]
        for candidate in candidates:
            if not candidate:
                continue
            found = self.store.find_gmail_by_rfc822_id(mailbox, candidate)
            if found is None and _GMAIL_ID_RE.match(candidate):
                found = self.store.get_gmail_message(mailbox, candidate.lower())
            if found is not None:
                return found.thread_id
        return None


def _authenticated_mailbox(
    request: Request,
    userId: str,  # noqa: N803 - Gmail's path parameter name
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    gmail: _Gmail = request.app.state.gmail
    return gmail.authenticate(authorization, userId)


# Route parameter names below are Gmail's own (camelCase, `id`, `format`) because
# FastAPI matches query parameters by name.
AuthedMailbox = Annotated[str, Depends(_authenticated_mailbox)]
JsonBody = Annotated[Any, Body()]
Repeated = Annotated[list[str] | None, Query()]


def create_gmail_app(store: MailStore) -> FastAPI:
    """The local Gmail API, Google token endpoint and ``/_local`` admin routes."""
    gmail = _Gmail(store)
    app = FastAPI(
        title="Nurture local Gmail API",
        docs_url="/_local/docs",
        redoc_url=None,
        openapi_url="/_local/openapi.json",
    )
    app.state.gmail = gmail
    app.include_router(admin_router(store))

    @app.exception_handler(GmailApiError)
    async def _gmail_error(_: Request, exc: GmailApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if request.url.path.startswith("/_local/"):
            return JSONResponse({"detail": exc.errors()}, status_code=422)
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return _invalid("Invalid JSON payload received.").response()
        where = ".".join(str(p) for p in first.get("loc", ())[1:])
        return _invalid(f"Invalid value at '{where}': {first.get('msg', 'invalid')}").response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/_local/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        if exc.status_code == 404:
            return _not_found().response()
        return GmailApiError(
            exc.status_code, "INVALID_ARGUMENT", str(exc.detail), reason="badRequest"
        ).response()

    prefix = "/gmail/v1/users/{userId}"

    @app.get(prefix + "/profile")
    def get_profile(mailbox: AuthedMailbox) -> dict[str, Any]:
        messages, threads = store.mailbox_counts(mailbox)
        box = store.ensure_mailbox(mailbox)
        return {
            "emailAddress": mailbox,
            "messagesTotal": messages,
            "threadsTotal": threads,
            "historyId": str(box.history_id),
        }

    @app.get(prefix + "/labels")
    def list_labels(mailbox: AuthedMailbox) -> dict[str, Any]:
        return {"labels": [{"id": lbl, "name": lbl, "type": "system"} for lbl in SYSTEM_LABELS]}

    @app.post(prefix + "/messages/send")
    def send_message(mailbox: AuthedMailbox, body: JsonBody = None) -> dict[str, Any]:
        return gmail.send(mailbox, body)

    @app.get(prefix + "/messages")
    def list_messages(
        mailbox: AuthedMailbox,
        q: str | None = None,
        labelIds: Repeated = None,  # noqa: N803
        includeSpamTrash: bool = False,  # noqa: N803
        maxResults: int | None = None,  # noqa: N803
        pageToken: str | None = None,  # noqa: N803
    ) -> dict[str, Any]:
        found = gmail.search(mailbox, q, labelIds or [], includeSpamTrash)
        offset, size = _page_offset(pageToken), _page_size(maxResults)
        page = found[offset : offset + size]
        out: dict[str, Any] = {}
        if page:
            out["messages"] = [_ref(m) for m in page]
        if offset + size < len(found):
            out["nextPageToken"] = _page_token(offset + size)
        out["resultSizeEstimate"] = len(found)
        return out

    @app.get(prefix + "/messages/{id}")
    def get_message(
        id: str,  # noqa: A002
        mailbox: AuthedMailbox,
        format: MessageFormat = "full",  # noqa: A002
        metadataHeaders: Repeated = None,  # noqa: N803
    ) -> dict[str, Any]:
        return _message_json(gmail.get(mailbox, id), format, metadataHeaders or [])

    @app.post(prefix + "/messages/{id}/modify")
    def modify_message(id: str, mailbox: AuthedMailbox, body: JsonBody = None) -> dict[str, Any]:  # noqa: A002
        changes = body if isinstance(body, dict) else {}
        return gmail.modify(
            mailbox, id, changes.get("addLabelIds") or [], changes.get("removeLabelIds") or []
        )

    @app.post(prefix + "/messages/{id}/trash")
    def trash_message(id: str, mailbox: AuthedMailbox) -> dict[str, Any]:  # noqa: A002
        return gmail.modify(mailbox, id, ["TRASH"], ["INBOX", "SPAM"])

    @app.post(prefix + "/messages/{id}/untrash")
    def untrash_message(id: str, mailbox: AuthedMailbox) -> dict[str, Any]:  # noqa: A002
        return gmail.modify(mailbox, id, [], ["TRASH"])

    @app.get(prefix + "/threads/{id}")
    def get_thread(
        id: str,  # noqa: A002
        mailbox: AuthedMailbox,
        format: Literal["full", "metadata", "minimal"] = "full",  # noqa: A002
        metadataHeaders: Repeated = None,  # noqa: N803
    ) -> dict[str, Any]:
        messages = store.gmail_thread(mailbox, _check_id(id))
        if not messages:
            raise _not_found()
        return {
            "id": messages[0].thread_id,
            "historyId": str(max(m.history_id for m in messages)),
            "messages": [_message_json(m, format, metadataHeaders or []) for m in messages],
        }

    @app.get(prefix + "/history")
    def list_history(
        mailbox: AuthedMailbox,
        startHistoryId: str | None = None,  # noqa: N803
        historyTypes: Repeated = None,  # noqa: N803
        labelId: str | None = None,  # noqa: N803
        maxResults: int | None = None,  # noqa: N803
        pageToken: str | None = None,  # noqa: N803
    ) -> dict[str, Any]:
        return gmail.history(
            mailbox, startHistoryId, historyTypes or [], labelId, maxResults, pageToken
        )

    @app.post(prefix + "/watch")
    def watch(mailbox: AuthedMailbox, body: JsonBody = None) -> dict[str, Any]:
        # Accepted so push-based code paths can start; no Pub/Sub push is ever sent.
        expiration = datetime.now(UTC) + timedelta(days=7)
        return {
            "historyId": str(store.ensure_mailbox(mailbox).history_id),
            "expiration": str(int(expiration.timestamp() * 1000)),
        }

    @app.post(prefix + "/stop", status_code=204)
    def stop(mailbox: AuthedMailbox) -> Response:
        # Gmail answers an empty 204 (the discovery document declares no response).
        return Response(status_code=204)

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        """Google's OAuth token endpoint, refresh_token grant only."""
        form = {
            k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
        }
        return _token_response(store, form)

    # -- admin -------------------------------------------------------------------

    @app.post("/_local/gmail/inbound")
    def inbound(req: _InboundRequest) -> dict[str, Any]:
        """Deliver a message into a mailbox (how a contact's reply arrives).

        Body: ``{"mailbox", "from", "subject"?, "text"?, "html"?, "to"?, "in_reply_to"?,
        "references"?: [...], "headers"?: {...}, "thread_of"?, "labels"?: ["INBOX",
        "UNREAD"], "message_id"?}``. The message joins the thread of the message named
        by ``in_reply_to``, else of the newest ``references`` entry found, else of
        ``thread_of`` (a Message-ID or Gmail id); otherwise it starts a thread.
        Returns ``{"id", "threadId", "message_id", "historyId"}``.
        """
        if not is_email(req.mailbox):
            raise StarletteHTTPException(400, f"not an email address: {req.mailbox!r}")
        stored = gmail.deliver_inbound(req)
        return {
            "id": stored.id,
            "threadId": stored.thread_id,
            "message_id": stored.message_id_header,
            "historyId": str(stored.history_id),
        }

    @app.post("/_local/gmail/revoke")
    def revoke(req: _EmailRequest) -> dict[str, Any]:
        """Revoke the mailbox's access and refresh tokens: ``{"email"}``.

        API calls then get 401 and ``POST /token`` answers ``invalid_grant``, as when
        a user disconnects the app in their Google account.
        """
        store.revoke_tokens([access_token_for(req.email), refresh_token_for(req.email)])
        return {"email": normalize_email(req.email), "revoked": True}

    @app.post("/_local/gmail/reconnect")
    def reconnect(req: _EmailRequest) -> dict[str, Any]:
        """Undo ``revoke`` for ``{"email"}`` (the user connected the app again)."""
        store.restore_tokens([access_token_for(req.email), refresh_token_for(req.email)])
        return {"email": normalize_email(req.email), "revoked": False}

    @app.post("/_local/gmail/settings")
    def set_settings(req: _SettingsRequest) -> dict[str, Any]:
        """Set the search lag: ``{"search_lag_seconds": float, "mailbox"?: email}``.

        Without ``mailbox`` the global default changes; with it, only that mailbox.
        Returns the effective lag.
        """
        store.set_search_lag(req.search_lag_seconds, req.mailbox)
        return {"search_lag_seconds": store.search_lag_seconds(req.mailbox), "mailbox": req.mailbox}

    @app.get("/_local/gmail/settings")
    def get_settings(mailbox: str | None = None) -> dict[str, Any]:
        """The effective search lag, globally or for ``?mailbox=``."""
        return {"search_lag_seconds": store.search_lag_seconds(mailbox), "mailbox": mailbox}

    @app.post("/_local/gmail/expire-history")
    def expire_history(req: _MailboxRequest) -> dict[str, Any]:
        """Drop the mailbox's history so far: ``{"mailbox"}``.

        history.list with an older startHistoryId then gets Gmail's 404. Returns
        ``{"mailbox", "historyId"}`` (the oldest start still accepted).
        """
        box = store.expire_history(req.mailbox)
        return {"mailbox": box.email, "historyId": str(box.history_floor)}

    return app


def _token_response(store: MailStore, form: dict[str, str]) -> JSONResponse:
    def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=status)

    grant_type = form.get("grant_type")
    if grant_type != "refresh_token":
        return oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type or ''}")
    if not form.get("client_id"):
        return oauth_error("invalid_request", "Could not determine client ID from request.")
    refresh_token = form.get("refresh_token", "")
    email = refresh_token[len(REFRESH_TOKEN_PREFIX) :]
    if not refresh_token.startswith(REFRESH_TOKEN_PREFIX) or not is_email(email):
        return oauth_error("invalid_grant", "Bad Request")
    if store.is_revoked(refresh_token_for(email)):
        return oauth_error("invalid_grant", "Token has been expired or revoked.")
    store.ensure_mailbox(email)
    return JSONResponse(
        {
            "access_token": access_token_for(email),
            "expires_in": 3599,
            "scope": form.get("scope") or DEFAULT_SCOPE,
            "token_type": "Bearer",
        }
    )
