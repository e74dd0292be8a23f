"""Identifiers.

Nurture's own IDs are time-ordered (so index scans by ID follow creation order) and carry a
prefix that says what they name (``enr_…`` an enrollment, ``ct_…`` a contact).

Temporal workflow IDs and search attributes are never encrypted, so they carry only these IDs —
never an email address or any other personal data.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case

RECORD_PREFIXES = {
    "contact": "ct",
    "company": "co",
    "deal": "dl",
    "ticket": "tk",
    "quote": "qt",
}


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, rem = divmod(number, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A ULID-like ID: 10 chars of milliseconds then 10 random chars, behind ``prefix_``."""
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{_encode(millis, 10)}{_encode(secrets.randbits(50), 10)}"


def sequence_workflow_id(contact_id: str) -> str:
    """One workflow ID per contact: Temporal refuses a second running sequence for the same contact.

    The ID is the lock that enforces HubSpot's rule "a contact is in one sequence at a time";
    a later enrollment of the same contact reuses it once the earlier run has closed.
    """
    return f"sequence-contact-{contact_id}"
