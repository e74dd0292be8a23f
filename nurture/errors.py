"""User-facing errors. Each message says what is wrong, where, and how to fix it.

The CLI prints ``error: <message>`` and exits 2; the HTTP API answers JSON with the status code
below. Nothing else reaches a user as a traceback.
"""

from __future__ import annotations


class NurtureError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(NurtureError):
    status_code = 422
    code = "invalid_input"


class NotFound(NurtureError):
    status_code = 404
    code = "not_found"


class Conflict(NurtureError):
    status_code = 409
    code = "conflict"


class Refused(NurtureError):
    """An enrollment or action the rules do not allow (already enrolled, unsubscribed, ...)."""

    status_code = 409
    code = "refused"

    def __init__(self, message: str, *, reason: str, details: object | None = None) -> None:
        super().__init__(message, details=details)
        self.reason = reason


class Unavailable(NurtureError):
    status_code = 503
    code = "unavailable"
