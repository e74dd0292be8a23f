"""Signed webhooks (meetings booked): HMAC-SHA256 over "<timestamp>.<raw body>" with a shared
secret, sent as ``X-Nurture-Timestamp`` and ``X-Nurture-Signature: v1=<hex>``. A post older or
newer than the tolerance is refused, and so is a replay of one already received."""

from __future__ import annotations

import hashlib
import hmac

from nurture.errors import NurtureError

TOLERANCE_SECONDS = 300


class SignatureRejected(NurtureError):
    status_code = 401
    code = "bad_signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify(secret: str, timestamp_header: str | None, signature_header: str | None, body: bytes, *, now: float) -> int:
    """Return the timestamp of a valid post, or raise SignatureRejected saying why."""
    if not timestamp_header or not signature_header:
        raise SignatureRejected("missing X-Nurture-Timestamp or X-Nurture-Signature header")
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        raise SignatureRejected("X-Nurture-Timestamp must be Unix seconds") from None
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise SignatureRejected(f"the timestamp is more than {TOLERANCE_SECONDS} s from now; refusing a stale or future post")
    expected = sign(secret, timestamp, body)
    offered = [part.strip() for part in signature_header.split(",")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise SignatureRejected("the signature does not match the body and timestamp")
    return timestamp
