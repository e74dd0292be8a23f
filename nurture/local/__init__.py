"""Local stand-ins for the mail providers Nurture talks to (Gmail API, SendGrid v3).

They speak the providers' HTTP APIs so the real SDKs can be pointed at them in tests
and in ``nurture dev``; every message is captured in a :class:`MailStore` and can be
read back with :func:`list_outbox` instead of being delivered.
"""

from nurture.local.gmail_api import (
    access_token_for,
    create_gmail_app,
    refresh_token_for,
)
from nurture.local.mailstore import Fault, MailStore
from nurture.local.outbox import OutboxMessage, list_outbox
from nurture.local.sendgrid_api import create_sendgrid_app
from nurture.local.server import (
    LocalServer,
    PortInUseError,
    RunningServer,
    serve,
    start_in_thread,
)

__all__ = [
    "Fault",
    "LocalServer",
    "MailStore",
    "OutboxMessage",
    "PortInUseError",
    "RunningServer",
    "access_token_for",
    "create_gmail_app",
    "create_sendgrid_app",
    "list_outbox",
    "refresh_token_for",
    "serve",
    "start_in_thread",
]
