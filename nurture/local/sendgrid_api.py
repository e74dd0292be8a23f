"""A local stand-in for SendGrid's v3 Mail Send API (``POST /v3/mail/send``).

The real ``sendgrid`` SDK talks to it unchanged via
``SendGridAPIClient(api_key, host=BASE_URL)``. Requests are validated the way SendGrid
validates the fields Nurture uses, answered with SendGrid's status codes and error
shape (``{"errors": [{"field", "message", "help"}]}``) and captured for the outbox;
nothing is delivered.

Deliberate deviations from SendGrid's published OpenAPI spec: top-level
``custom_args`` is validated as an object of strings (what the API and the SDK
actually use; the spec types it as a string), and any non-empty API key is accepted.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from nurture.local.mailstore import Fault, MailStore, SendGridMessage, is_email
from nurture.local.outbox import admin_router

__all__ = ["MAX_BODY_BYTES", "create_sendgrid_app", "validate_mail_send"]

# SendGrid's documented limit for a whole mail/send request.
MAX_BODY_BYTES = 30 * 1024 * 1024
_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message."
_RECIPIENT_KINDS = ("to", "cc", "bcc")

SendGridError = dict[str, Any]  # {"field": str | None, "message": str, "help": str | None}


def _error(field: str | None, message: str, help_anchor: str | None = None) -> SendGridError:
    return {
        "field": field,
        "message": message,
        "help": _HELP + help_anchor if help_anchor else None,
    }


def _errors_response(status: int, errors: list[SendGridError], **headers: str) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code=status, headers=headers)


def _unauthorized() -> JSONResponse:
    return _errors_response(
        401, [_error(None, "The provided authorization grant is invalid, expired, or revoked")]
    )


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "integer" if isinstance(value, int) else "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else "string"


def _string_map_errors(value: object, field: str) -> Iterator[SendGridError]:
    """custom_args and headers must be flat objects of strings."""
    if not isinstance(value, dict):
        yield _error(field, f"Invalid type. Expected: object, given: {_json_type(value)}.", field)
        return
    for key, item in value.items():
        if not isinstance(item, str):
            yield _error(
                f"{field}.{key}",
                f"Invalid type. Expected: string, given: {_json_type(item)}.",
                field,
            )


def _personalization_errors(i: int, p: object) -> Iterator[SendGridError]:
    base = f"personalizations.{i}"
    if not isinstance(p, dict):
        yield _error(base, "Each personalization must be an object.", "personalizations")
        return
    to = p.get("to")
    if not isinstance(to, list) or not to:
        yield _error(
            f"{base}.to",
            "The to array is required for all personalization objects, and must have at least "
            "one email object with a valid email address.",
            "personalizations.to",
        )
    seen: set[str] = set()
    for kind in _RECIPIENT_KINDS:
        recipients = p.get(kind)
        if recipients is None or (kind == "to" and not isinstance(recipients, list)):
            continue
        if not isinstance(recipients, list):
            yield _error(
                f"{base}.{kind}",
                f"The {kind} parameter must be an array.",
                f"personalizations.{kind}",
            )
            continue
        for j, recipient in enumerate(recipients):
            email = recipient.get("email") if isinstance(recipient, dict) else None
            if not is_email(email):
                yield _error(
                    f"{base}.{kind}.{j}.email",
                    "Does not contain a valid address.",
                    f"personalizations.{kind}",
                )
                continue
            assert isinstance(email, str)
            if email.lower() in seen:
                yield _error(
                    base,
                    "Each email address in the personalization block should be unique between "
                    f"to, cc, and bcc. We found the first duplicate instance of [{email}] in the "
                    f"{base}.{kind} field.",
                    "personalizations",
                )
            seen.add(email.lower())
    if "subject" in p and (not isinstance(p["subject"], str) or not p["subject"]):
        yield _error(
            f"{base}.subject",
            "The subject of a personalization must be a string at least one character in length.",
            "personalizations.subject",
        )
    for name in ("custom_args", "headers"):
        if name in p:
            yield from _string_map_errors(p[name], f"{base}.{name}")


def _content_errors(content: object) -> Iterator[SendGridError]:
    if not isinstance(content, list) or not content:
        yield _error(
            "content",
            "Unless a valid template_id is provided, the content parameter is required. There "
            "must be at least one defined content block. We typically suggest both text/plain "
            "and text/html blocks are included, but only one block is required.",
            "content",
        )
        return
    seen_types: list[str] = []
    for k, block in enumerate(content):
        block = block if isinstance(block, dict) else {}
        ctype, value = block.get("type"), block.get("value")
        if not isinstance(ctype, str) or not ctype:
            yield _error(
                f"content.{k}.type",
                "The content type must be a string at least one character in length.",
                "content.type",
            )
        if not isinstance(value, str) or not value:
            yield _error(
                f"content.{k}.value",
                "The content value must be a string at least one character in length.",
                "content.value",
            )
        if isinstance(ctype, str):
            ctype = ctype.lower()
            if ctype in ("text/plain", "text/html") and ctype in seen_types:
                yield _error(
                    f"content.{k}.type",
                    "If present, text/plain and text/html may only be provided once.",
                    "content",
                )
            elif ctype == "text/plain" and seen_types:
                yield _error(
                    f"content.{k}.type",
                    "If present, text/plain content must be first, followed by text/html, "
                    "followed by any other content.",
                    "content",
                )
            seen_types.append(ctype)


def validate_mail_send(body: object) -> list[SendGridError]:
    """SendGrid's checks for the mail/send fields Nurture uses; [] when valid."""
    if not isinstance(body, dict):
        return [_error(None, "Bad Request")]
    errors: list[SendGridError] = []
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            _error(
                "personalizations",
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        )
        personalizations = []
    elif len(personalizations) > 1000:
        errors.append(
            _error(
                "personalizations",
                "You may not have more than 1000 personalizations per request.",
                "personalizations",
            )
        )
    for i, p in enumerate(personalizations):
        errors.extend(_personalization_errors(i, p))

    sender = body.get("from")
    if not isinstance(sender, dict) or "email" not in sender:
        errors.append(
            _error(
                "from",
                "The from object must be provided for every email send. It is an object that "
                "requires the email parameter, but may also contain a name parameter.",
                "from",
            )
        )
    elif not is_email(sender["email"]):
        errors.append(
            _error("from.email", "The from email does not contain a valid address.", "from")
        )

    has_template = isinstance(body.get("template_id"), str) and bool(body["template_id"])
    subject = body.get("subject")
    every_personalization_has_subject = bool(personalizations) and all(
        isinstance(p, dict) and isinstance(p.get("subject"), str) and p["subject"]
        for p in personalizations
    )
    if (
        not has_template
        and not (isinstance(subject, str) and subject)
        and not (every_personalization_has_subject)
    ):
        errors.append(
            _error(
                "subject",
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
                "subject",
            )
        )
    if not has_template or "content" in body:
        errors.extend(_content_errors(body.get("content")))

    if "reply_to" in body and "reply_to_list" in body:
        errors.append(
            _error("reply_to", "reply_to is mutually exclusive with reply_to_list.", "reply_to")
        )
    reply_to = body.get("reply_to")
    if reply_to is not None and not (
        isinstance(reply_to, dict) and is_email(reply_to.get("email"))
    ):
        errors.append(
            _error(
                "reply_to.email", "The reply_to email does not contain a valid address.", "reply_to"
            )
        )

    categories = body.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            errors.append(
                _error("categories", "Categories must be an array of strings.", "categories")
            )
        elif len(categories) > 10:
            errors.append(
                _error(
                    "categories",
                    "You may not have more than 10 categories per request.",
                    "categories",
                )
            )
        elif len({c.lower() for c in categories}) != len(categories):
            errors.append(_error("categories", "Categories must be unique.", "categories"))
        elif any(len(c) > 255 for c in categories):
            errors.append(
                _error(
                    "categories", "A category cannot be longer than 255 characters.", "categories"
                )
            )

    for name in ("custom_args", "headers"):
        if name in body:
            errors.extend(_string_map_errors(body[name], name))

    attachments = body.get("attachments")
    if attachments is not None:
        for k, attachment in enumerate(attachments if isinstance(attachments, list) else [None]):
            attachment = attachment if isinstance(attachment, dict) else {}
            if not attachment.get("content"):
                errors.append(
                    _error(
                        f"attachments.{k}.content",
                        "The attachment content is required.",
                        "attachments.content",
                    )
                )
            if not attachment.get("filename"):
                errors.append(
                    _error(
                        f"attachments.{k}.filename",
                        "The attachment filename parameter is required.",
                        "attachments.filename",
                    )
                )
    return errors


def _capture(body: dict[str, Any], message_id: str, received_at: float) -> SendGridMessage:
    """Flatten a valid request into what the outbox shows (the raw JSON is kept too)."""
    personalizations: list[dict[str, Any]] = body["personalizations"]

    def emails(kind: str) -> list[str]:
        return [r["email"] for p in personalizations for r in p.get(kind) or []]

    headers: dict[str, str] = dict(body.get("headers") or {})
    custom_args: dict[str, str] = dict(body.get("custom_args") or {})
    for p in personalizations:
        # Personalization values win over top-level ones, as SendGrid merges them.
        headers.update(p.get("headers") or {})
        custom_args.update(p.get("custom_args") or {})
    content = {
        block["type"].lower(): block["value"]
        for block in reversed(body.get("content") or [])
        if isinstance(block, dict)
    }
    subject = body.get("subject") or personalizations[0].get("subject") or ""
    return SendGridMessage(
        id=message_id,
        received_at=received_at,
        from_addr=body["from"]["email"],
        from_name=body["from"].get("name"),
        to=emails("to"),
        cc=emails("cc"),
        bcc=emails("bcc"),
        subject=subject,
        text_body=content.get("text/plain"),
        html_body=content.get("text/html"),
        headers=headers,
        custom_args=custom_args,
        categories=list(body.get("categories") or []),
        body=body,
    )


def _fault_response(fault: Fault) -> Response:
    if fault.kind == "429":
        retry_after = fault.retry_after if fault.retry_after is not None else 1
        return _errors_response(
            429,
            [_error(None, fault.message or "too many requests")],
            **{
                "Retry-After": str(retry_after),
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + retry_after),
            },
        )
    if fault.kind == "400":
        return _errors_response(400, [_error(None, fault.message or "Bad Request")])
    return _errors_response(500, [_error(None, fault.message or "Internal server error")])


def _is_authorized(authorization: str | None) -> bool:
    scheme, _, key = (authorization or "").partition(" ")
    key = key.strip()
    # SendGridAPIClient("") falls back to $SENDGRID_API_KEY and, when that is unset
    # too, sends "Bearer None". Real SendGrid rejects that; so do we, so a missing
    # key shows up locally rather than in production.
    return scheme.lower() == "bearer" and bool(key) and key != "None"


def create_sendgrid_app(store: MailStore) -> FastAPI:
    """The local SendGrid Mail Send API plus the shared ``/_local`` admin routes."""
    app = FastAPI(
        title="Nurture local SendGrid API",
        docs_url="/_local/docs",
        redoc_url=None,
        openapi_url="/_local/openapi.json",
    )
    app.include_router(admin_router(store))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/_local/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return _errors_response(exc.status_code, [_error(None, str(exc.detail).lower())])

    def accept(body: dict[str, Any]) -> Response:
        # Runs in a worker thread: the store is blocking SQLite.
        fault = store.take_fault("sendgrid", "send")
        if fault is not None and fault.kind != "accept_then_500":
            return _fault_response(fault)
        sandbox = (body.get("mail_settings") or {}).get("sandbox_mode") or {}
        if isinstance(sandbox, dict) and sandbox.get("enable") is True:
            # Sandbox mode validates but sends nothing; SendGrid answers 200, no id.
            return Response(status_code=200)
        message_id = secrets.token_urlsafe(16)  # 22 characters, like SendGrid's
        store.add_sendgrid_message(_capture(body, message_id, store.now()))
        if fault is not None:  # accept_then_500: accepted, but the answer is "lost"
            return _fault_response(Fault(service="sendgrid", operation="send", kind="500"))
        return Response(status_code=202, headers={"X-Message-Id": message_id})

    @app.post("/v3/mail/send")
    async def mail_send(request: Request) -> Response:
        """SendGrid v3 Mail Send: 202 + ``X-Message-Id`` when accepted."""
        # Auth is checked before the body is even parsed, as SendGrid does.
        if not _is_authorized(request.headers.get("authorization")):
            return _unauthorized()
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _errors_response(413, [_error(None, "Payload Too Large")])
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _errors_response(400, [_error(None, "Bad Request")])
        errors = validate_mail_send(body)
        if errors:
            return _errors_response(400, errors)
        return await run_in_threadpool(accept, body)

    return app
