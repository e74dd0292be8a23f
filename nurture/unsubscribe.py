"""Signed opt-out links for sales emails. The token names the enrollment and the contact and is
signed with the account's secret key, so a link cannot be forged to opt out someone else."""

from __future__ import annotations

import base64
import hashlib
import hmac

from nurture.errors import InvalidInput


def _sig(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def make_token(secret: str, enrollment_id: str, contact_id: str) -> str:
    payload = f"{enrollment_id}.{contact_id}"
    return f"{payload}.{_sig(secret, payload)}"


def read_token(secret: str, token: str) -> tuple[str, str]:
    """Return (enrollment_id, contact_id), or raise InvalidInput for a tampered or broken link."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidInput("this unsubscribe link is incomplete; open the full link from the email")
    enrollment_id, contact_id, sig = parts
    if not hmac.compare_digest(sig, _sig(secret, f"{enrollment_id}.{contact_id}")):
        raise InvalidInput("this unsubscribe link is not valid; open the full link from the email")
    return enrollment_id, contact_id


def unsubscribe_url(base_url: str, secret: str, enrollment_id: str, contact_id: str) -> str:
    return f"{base_url.rstrip('/')}/u/{make_token(secret, enrollment_id, contact_id)}"
