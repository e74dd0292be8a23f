"""Persistence for the local Gmail and SendGrid endpoints.

Everything the fake providers know lives in one SQLite database: Gmail mailboxes with
their messages and history, captured SendGrid sends, revoked OAuth tokens, queued
faults and a few settings. Using a file path makes that state survive a restart of
``nurture dev`` (so ``nurture outbox`` still shows yesterday's sends); ``":memory:"``
is for tests.

The store is deliberately dumb about protocols: it does not parse MIME or JSON
request bodies. The API modules extract what they need (subject, bodies, headers)
and hand it over already flattened, so the outbox can be listed without re-parsing
every raw message.

Thread safety: uvicorn runs sync FastAPI routes in a thread pool and several servers
may share one store, so a single connection (``check_same_thread=False``) is guarded
by one re-entrant lock, and every multi-statement change runs in one transaction.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = [
    "FAULT_KINDS",
    "SERVICES",
    "Fault",
    "FaultKind",
    "GmailMessage",
    "HistoryRecord",
    "MailStore",
    "Mailbox",
    "NewGmailMessage",
    "SendGridMessage",
    "Service",
    "is_email",
    "normalize_email",
    "strip_angle_brackets",
]

Service = Literal["gmail", "sendgrid"]
FaultKind = Literal["accept_then_500", "500", "429", "400"]
SERVICES: tuple[str, ...] = get_args(Service)
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

# Bumped whenever the schema changes; an older file is refused rather than misread.
SCHEMA_VERSION = 1

# A pragmatic address check (what providers reject in practice), not full RFC 5322:
# one "@", no spaces or brackets, and a dotted domain made of DNS labels.
_EMAIL_RE = re.compile(
    r"^[^@\s\"<>(),;:\[\]\\]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def is_email(value: object) -> bool:
    """True if ``value`` is a plausible bare email address (``user@example.com``)."""
    return isinstance(value, str) and len(value) <= 320 and bool(_EMAIL_RE.match(value))


def normalize_email(value: str) -> str:
    """Mailbox key for an address: providers treat addresses case-insensitively."""
    return value.strip().lower()


def strip_angle_brackets(message_id: str) -> str:
    """``<abc@host>`` -> ``abc@host``; how Message-IDs are compared and indexed."""
    value = message_id.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value.strip()


@dataclass(frozen=True)
class Mailbox:
    email: str
    history_id: int
    # Oldest history id a client may still pass as startHistoryId (Gmail answers 404
    # for anything older, and clients must then do a full sync).
    history_floor: int
    # Per-mailbox override of the global search lag; None = use the global setting.
    search_lag_seconds: float | None
    created_at: float


@dataclass(frozen=True)
class NewGmailMessage:
    """What the Gmail API layer hands the store; ids and history are assigned here."""

    raw: bytes
    label_ids: Sequence[str]
    # None = start a new thread whose id is the message's own id (Gmail's rule).
    thread_id: str | None
    message_id_header: str
    subject: str
    from_addr: str
    to: Sequence[str]
    cc: Sequence[str]
    bcc: Sequence[str]
    snippet: str
    text_body: str | None
    html_body: str | None
    headers: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class GmailMessage:
    id: str
    mailbox: str
    thread_id: str
    label_ids: list[str]
    history_id: int
    internal_date_ms: int
    added_at: float
    message_id_header: str
    subject: str
    from_addr: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    snippet: str
    text_body: str | None
    html_body: str | None
    headers: list[tuple[str, str]]
    size: int
    raw: bytes


HistoryKind = Literal["messageAdded", "messageDeleted", "labelAdded", "labelRemoved"]


@dataclass(frozen=True)
class HistoryRecord:
    mailbox: str
    id: int
    kind: HistoryKind
    message_id: str
    thread_id: str
    # The message's labels right after the change (what Gmail reports, and what the
    # labelId filter of history.list matches against).
    label_ids: list[str]
    # For labelAdded/labelRemoved: the labels that changed.
    changed_labels: list[str]


@dataclass(frozen=True)
class SendGridMessage:
    id: str  # the X-Message-Id handed back to the caller
    received_at: float
    from_addr: str
    from_name: str | None
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    text_body: str | None
    html_body: str | None
    headers: dict[str, str]
    custom_args: dict[str, str]
    categories: list[str]
    body: dict[str, Any]  # the request JSON exactly as received


@dataclass(frozen=True)
class Fault:
    service: Service
    operation: str
    kind: FaultKind
    count: int = 1
    retry_after: int | None = None
    message: str | None = None
    id: int | None = field(default=None, compare=False)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS gmail_mailboxes (
    email TEXT PRIMARY KEY,
    history_id INTEGER NOT NULL,
    history_floor INTEGER NOT NULL,
    search_lag_seconds REAL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS gmail_messages (
    id TEXT PRIMARY KEY,
    mailbox TEXT NOT NULL REFERENCES gmail_mailboxes(email),
    thread_id TEXT NOT NULL,
    label_ids TEXT NOT NULL,
    history_id INTEGER NOT NULL,
    internal_date_ms INTEGER NOT NULL,
    added_at REAL NOT NULL,
    message_id_header TEXT NOT NULL,
    rfc822_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    from_addr TEXT NOT NULL,
    to_addrs TEXT NOT NULL,
    cc_addrs TEXT NOT NULL,
    bcc_addrs TEXT NOT NULL,
    snippet TEXT NOT NULL,
    text_body TEXT,
    html_body TEXT,
    headers TEXT NOT NULL,
    size INTEGER NOT NULL,
    raw BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS gmail_messages_thread ON gmail_messages(mailbox, thread_id);
CREATE INDEX IF NOT EXISTS gmail_messages_rfc822 ON gmail_messages(mailbox, rfc822_id);
CREATE INDEX IF NOT EXISTS gmail_messages_date ON gmail_messages(mailbox, internal_date_ms);
CREATE TABLE IF NOT EXISTS gmail_history (
    mailbox TEXT NOT NULL,
    id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    message_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    label_ids TEXT NOT NULL,
    changed_labels TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (mailbox, id)
);
CREATE TABLE IF NOT EXISTS sendgrid_messages (
    id TEXT PRIMARY KEY,
    received_at REAL NOT NULL,
    from_addr TEXT NOT NULL,
    from_name TEXT,
    to_addrs TEXT NOT NULL,
    cc_addrs TEXT NOT NULL,
    bcc_addrs TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT,
    html_body TEXT,
    headers TEXT NOT NULL,
    custom_args TEXT NOT NULL,
    categories TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sendgrid_messages_date ON sendgrid_messages(received_at);
CREATE TABLE IF NOT EXISTS revoked_tokens (
    token TEXT PRIMARY KEY,
    revoked_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    operation TEXT NOT NULL,
    kind TEXT NOT NULL,
    remaining INTEGER NOT NULL,
    retry_after INTEGER,
    message TEXT
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_SEARCH_LAG_KEY = "gmail.search_lag_seconds"

# New mailboxes start at a history id in Gmail's range (they are large numbers there),
# so client code never gets away with assuming small ids.
_FIRST_HISTORY_ID = 1000


class MailStore:
    """SQLite-backed state shared by the local Gmail and SendGrid apps.

    ``path`` is a file path or ``":memory:"``. ``search_lag_seconds``, when given,
    overrides the stored global Gmail search lag. ``clock`` returns epoch seconds and
    exists so tests can move time without sleeping.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        search_lag_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = os.fspath(path)
        self._clock = clock
        self._lock = threading.RLock()
        if self.path != ":memory:":
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
        # isolation_level=None: we issue BEGIN ourselves so a transaction spans exactly
        # the statements of one logical change.
        self._conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=10.0
        )
        self._conn.row_factory = sqlite3.Row
        self._init_schema()
        if search_lag_seconds is not None:
            self.set_search_lag(search_lag_seconds)

    # -- lifecycle ---------------------------------------------------------------

    def _init_schema(self) -> None:
        with self._lock:
            conn = self._conn
            if self.path != ":memory:":
                # WAL lets `nurture outbox` read while the dev servers write.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise RuntimeError(
                    f"{self.path} has mail store schema v{version}, this code expects "
                    f"v{SCHEMA_VERSION}; delete the file to start over"
                )
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> MailStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def reset(self) -> None:
        """Forget everything: mail, history, tokens, faults and settings.

        For test isolation with long-lived servers, and for starting a dev stack over.
        """
        with self._tx() as conn:
            for table in (
                "gmail_history",
                "gmail_messages",
                "gmail_mailboxes",
                "sendgrid_messages",
                "revoked_tokens",
                "faults",
                "settings",
            ):
                conn.execute(f"DELETE FROM {table}")

    def now(self) -> float:
        """Current time (epoch seconds) as seen by the store's clock."""
        return self._clock()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction under the store lock; rolled back on any error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- settings ----------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def set_setting(self, key: str, value: Any) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    def set_search_lag(self, seconds: float, mailbox: str | None = None) -> None:
        """Set how long after arrival a Gmail message becomes findable by search.

        Without ``mailbox`` this is the global default; with it, an override for
        that mailbox only (created if needed).
        """
        if seconds < 0:
            raise ValueError("search lag cannot be negative")
        if mailbox is None:
            self.set_setting(_SEARCH_LAG_KEY, float(seconds))
            return
        email = self.ensure_mailbox(mailbox).email
        with self._tx() as conn:
            conn.execute(
                "UPDATE gmail_mailboxes SET search_lag_seconds = ? WHERE email = ?",
                (float(seconds), email),
            )

    def search_lag_seconds(self, mailbox: str | None = None) -> float:
        """Effective search lag: the mailbox override if set, else the global one."""
        if mailbox is not None:
            box = self.get_mailbox(mailbox)
            if box is not None and box.search_lag_seconds is not None:
                return box.search_lag_seconds
        return float(self.get_setting(_SEARCH_LAG_KEY, 0.0))

    # -- tokens ------------------------------------------------------------------

    def revoke_tokens(self, tokens: Sequence[str]) -> None:
        now = self.now()
        with self._tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO revoked_tokens(token, revoked_at) VALUES (?, ?)",
                [(t, now) for t in tokens],
            )

    def restore_tokens(self, tokens: Sequence[str]) -> None:
        with self._tx() as conn:
            conn.executemany("DELETE FROM revoked_tokens WHERE token = ?", [(t,) for t in tokens])

    def is_revoked(self, token: str) -> bool:
        return bool(self._query("SELECT 1 FROM revoked_tokens WHERE token = ?", (token,)))

    # -- faults ------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        if fault.service not in SERVICES:
            raise ValueError(f"unknown service {fault.service!r}")
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        if fault.count < 1:
            raise ValueError("fault count must be at least 1")
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO faults(service, operation, kind, remaining, retry_after, message)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    fault.service,
                    fault.operation,
                    fault.kind,
                    fault.count,
                    fault.retry_after,
                    fault.message,
                ),
            )
        return Fault(**{**fault.__dict__, "id": cur.lastrowid})

    def take_fault(self, service: Service, operation: str) -> Fault | None:
        """Consume one occurrence of the oldest queued fault for this call, if any."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT * FROM faults WHERE service = ? AND operation = ? AND remaining > 0"
                " ORDER BY id LIMIT 1",
                (service, operation),
            ).fetchone()
            if row is None:
                return None
            if row["remaining"] <= 1:
                conn.execute("DELETE FROM faults WHERE id = ?", (row["id"],))
            else:
                conn.execute(
                    "UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (row["id"],)
                )
        return _fault(row, count=1)

    def pending_faults(self) -> list[Fault]:
        rows = self._query("SELECT * FROM faults WHERE remaining > 0 ORDER BY id")
        return [_fault(r, count=r["remaining"]) for r in rows]

    def clear_faults(self) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM faults")

    # -- gmail mailboxes -----------------------------------------------------------

    def ensure_mailbox(self, email: str) -> Mailbox:
        """Return the mailbox for ``email``, creating it on first use."""
        key = normalize_email(email)
        existing = self.get_mailbox(key)
        if existing is not None:  # the common case: no write transaction per API call
            return existing
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO gmail_mailboxes"
                "(email, history_id, history_floor, search_lag_seconds, created_at)"
                " VALUES (?, ?, ?, NULL, ?)",
                (key, _FIRST_HISTORY_ID, _FIRST_HISTORY_ID, self.now()),
            )
        box = self.get_mailbox(key)
        assert box is not None
        return box

    def get_mailbox(self, email: str) -> Mailbox | None:
        rows = self._query(
            "SELECT * FROM gmail_mailboxes WHERE email = ?", (normalize_email(email),)
        )
        if not rows:
            return None
        r = rows[0]
        return Mailbox(
            email=r["email"],
            history_id=r["history_id"],
            history_floor=r["history_floor"],
            search_lag_seconds=r["search_lag_seconds"],
            created_at=r["created_at"],
        )

    def mailbox_counts(self, email: str) -> tuple[int, int]:
        """(messages, threads) in the mailbox, for users.getProfile."""
        row = self._query(
            "SELECT COUNT(*) AS m, COUNT(DISTINCT thread_id) AS t FROM gmail_messages"
            " WHERE mailbox = ?",
            (normalize_email(email),),
        )[0]
        return int(row["m"]), int(row["t"])

    def expire_history(self, email: str) -> Mailbox:
        """Forget all history so far, as Gmail does after about a week.

        Afterwards only the mailbox's current history id (or newer) is accepted as a
        startHistoryId; anything older gets Gmail's 404.
        """
        key = self.ensure_mailbox(email).email
        with self._tx() as conn:
            conn.execute("DELETE FROM gmail_history WHERE mailbox = ?", (key,))
            conn.execute(
                "UPDATE gmail_mailboxes SET history_floor = history_id WHERE email = ?", (key,)
            )
        box = self.get_mailbox(key)
        assert box is not None
        return box

    # -- gmail messages ------------------------------------------------------------

    def add_gmail_message(self, mailbox: str, new: NewGmailMessage) -> GmailMessage:
        """Store a message, bump the mailbox history id and record ``messageAdded``.

        All three happen in one transaction so a history reader never sees a message
        without its history entry (or the reverse).
        """
        key = self.ensure_mailbox(mailbox).email
        now = self.now()
        labels = list(dict.fromkeys(new.label_ids))
        with self._tx() as conn:
            message_id = self._new_gmail_id(conn, now)
            thread_id = new.thread_id or message_id
            history_id = self._bump_history(conn, key)
            conn.execute(
                "INSERT INTO gmail_messages(id, mailbox, thread_id, label_ids, history_id,"
                " internal_date_ms, added_at, message_id_header, rfc822_id, subject,"
                " from_addr, to_addrs, cc_addrs, bcc_addrs, snippet, text_body, html_body,"
                " headers, size, raw)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    key,
                    thread_id,
                    json.dumps(labels),
                    history_id,
                    int(now * 1000),
                    now,
                    new.message_id_header,
                    strip_angle_brackets(new.message_id_header),
                    new.subject,
                    new.from_addr,
                    json.dumps(list(new.to)),
                    json.dumps(list(new.cc)),
                    json.dumps(list(new.bcc)),
                    new.snippet,
                    new.text_body,
                    new.html_body,
                    json.dumps([list(h) for h in new.headers]),
                    len(new.raw),
                    new.raw,
                ),
            )
            self._add_history(conn, key, history_id, "messageAdded", message_id, thread_id, labels)
        stored = self.get_gmail_message(key, message_id)
        assert stored is not None
        return stored

    def modify_gmail_labels(
        self, mailbox: str, message_id: str, add: Sequence[str], remove: Sequence[str]
    ) -> GmailMessage | None:
        """Add/remove labels; records labelAdded/labelRemoved history for real changes."""
        key = normalize_email(mailbox)
        with self._tx() as conn:
            row = conn.execute(
                "SELECT thread_id, label_ids FROM gmail_messages WHERE mailbox = ? AND id = ?",
                (key, message_id),
            ).fetchone()
            if row is None:
                return None
            labels: list[str] = json.loads(row["label_ids"])
            added = [lbl for lbl in dict.fromkeys(add) if lbl not in labels]
            labels.extend(added)
            removed = [lbl for lbl in dict.fromkeys(remove) if lbl in labels and lbl not in added]
            labels = [lbl for lbl in labels if lbl not in removed]
            history_id = None
            changes: tuple[tuple[HistoryKind, list[str]], ...] = (
                ("labelAdded", added),
                ("labelRemoved", removed),
            )
            for kind, changed in changes:
                if changed:
                    history_id = self._bump_history(conn, key)
                    self._add_history(
                        conn, key, history_id, kind, message_id, row["thread_id"], labels, changed
                    )
            if history_id is not None:
                conn.execute(
                    "UPDATE gmail_messages SET label_ids = ?, history_id = ?"
                    " WHERE mailbox = ? AND id = ?",
                    (json.dumps(labels), history_id, key, message_id),
                )
        return self.get_gmail_message(key, message_id)

    def get_gmail_message(self, mailbox: str, message_id: str) -> GmailMessage | None:
        rows = self._query(
            "SELECT * FROM gmail_messages WHERE mailbox = ? AND id = ?",
            (normalize_email(mailbox), message_id),
        )
        return _gmail_message(rows[0]) if rows else None

    def find_gmail_by_rfc822_id(self, mailbox: str, message_id_header: str) -> GmailMessage | None:
        """The oldest message in the mailbox carrying this Message-ID (brackets optional)."""
        rows = self._query(
            "SELECT * FROM gmail_messages WHERE mailbox = ? AND rfc822_id = ?"
            " ORDER BY internal_date_ms, rowid LIMIT 1",
            (normalize_email(mailbox), strip_angle_brackets(message_id_header)),
        )
        return _gmail_message(rows[0]) if rows else None

    def thread_exists(self, mailbox: str, thread_id: str) -> bool:
        return bool(
            self._query(
                "SELECT 1 FROM gmail_messages WHERE mailbox = ? AND thread_id = ? LIMIT 1",
                (normalize_email(mailbox), thread_id),
            )
        )

    def gmail_thread(self, mailbox: str, thread_id: str) -> list[GmailMessage]:
        """Messages of a thread, oldest first (Gmail's order in threads.get)."""
        rows = self._query(
            "SELECT * FROM gmail_messages WHERE mailbox = ? AND thread_id = ?"
            " ORDER BY internal_date_ms, rowid",
            (normalize_email(mailbox), thread_id),
        )
        return [_gmail_message(r) for r in rows]

    def gmail_messages(self, mailbox: str) -> list[GmailMessage]:
        """All messages of a mailbox, newest first (Gmail's order in messages.list)."""
        rows = self._query(
            "SELECT * FROM gmail_messages WHERE mailbox = ?"
            " ORDER BY internal_date_ms DESC, rowid DESC",
            (normalize_email(mailbox),),
        )
        return [_gmail_message(r) for r in rows]

    def sent_gmail_messages(self, limit: int) -> list[GmailMessage]:
        """Messages sent from any mailbox, newest first (the Gmail half of the outbox)."""
        rows = self._query(
            "SELECT g.* FROM gmail_messages AS g, json_each(g.label_ids) AS l"
            " WHERE l.value = 'SENT' ORDER BY g.added_at DESC, g.rowid DESC LIMIT ?",
            (limit,),
        )
        return [_gmail_message(r) for r in rows]

    def gmail_history(self, mailbox: str, after: int) -> list[HistoryRecord]:
        """History records with id > ``after``, oldest first."""
        rows = self._query(
            "SELECT * FROM gmail_history WHERE mailbox = ? AND id > ? ORDER BY id",
            (normalize_email(mailbox), after),
        )
        return [
            HistoryRecord(
                mailbox=r["mailbox"],
                id=r["id"],
                kind=r["kind"],
                message_id=r["message_id"],
                thread_id=r["thread_id"],
                label_ids=json.loads(r["label_ids"]),
                changed_labels=json.loads(r["changed_labels"]),
            )
            for r in rows
        ]

    def _new_gmail_id(self, conn: sqlite3.Connection, now: float) -> str:
        # Gmail ids are 16 hex digits whose high bits grow with time; mimic that so ids
        # sort roughly by arrival, with random low bits for uniqueness.
        while True:
            candidate = f"{(int(now * 1000) << 20 | secrets.randbits(20)) & (2**64 - 1):016x}"
            if not conn.execute(
                "SELECT 1 FROM gmail_messages WHERE id = ?", (candidate,)
            ).fetchone():
                return candidate

    @staticmethod
    def _bump_history(conn: sqlite3.Connection, mailbox: str) -> int:
        conn.execute(
            "UPDATE gmail_mailboxes SET history_id = history_id + 1 WHERE email = ?", (mailbox,)
        )
        row = conn.execute(
            "SELECT history_id FROM gmail_mailboxes WHERE email = ?", (mailbox,)
        ).fetchone()
        return int(row["history_id"])

    def _add_history(
        self,
        conn: sqlite3.Connection,
        mailbox: str,
        history_id: int,
        kind: HistoryKind,
        message_id: str,
        thread_id: str,
        labels: Sequence[str],
        changed: Sequence[str] = (),
    ) -> None:
        conn.execute(
            "INSERT INTO gmail_history(mailbox, id, kind, message_id, thread_id, label_ids,"
            " changed_labels, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                mailbox,
                history_id,
                kind,
                message_id,
                thread_id,
                json.dumps(list(labels)),
                json.dumps(list(changed)),
                self.now(),
            ),
        )

    # -- sendgrid ------------------------------------------------------------------

    def add_sendgrid_message(self, message: SendGridMessage) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO sendgrid_messages(id, received_at, from_addr, from_name, to_addrs,"
                " cc_addrs, bcc_addrs, subject, text_body, html_body, headers, custom_args,"
                " categories, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.id,
                    message.received_at,
                    message.from_addr,
                    message.from_name,
                    json.dumps(message.to),
                    json.dumps(message.cc),
                    json.dumps(message.bcc),
                    message.subject,
                    message.text_body,
                    message.html_body,
                    json.dumps(message.headers),
                    json.dumps(message.custom_args),
                    json.dumps(message.categories),
                    json.dumps(message.body),
                ),
            )

    def get_sendgrid_message(self, message_id: str) -> SendGridMessage | None:
        rows = self._query("SELECT * FROM sendgrid_messages WHERE id = ?", (message_id,))
        return _sendgrid_message(rows[0]) if rows else None

    def sendgrid_messages(self, limit: int) -> list[SendGridMessage]:
        """Captured SendGrid sends, newest first."""
        rows = self._query(
            "SELECT * FROM sendgrid_messages ORDER BY received_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [_sendgrid_message(r) for r in rows]


def _fault(row: sqlite3.Row, *, count: int) -> Fault:
    return Fault(
        service=row["service"],
        operation=row["operation"],
        kind=row["kind"],
        count=count,
        retry_after=row["retry_after"],
        message=row["message"],
        id=row["id"],
    )


def _gmail_message(r: sqlite3.Row) -> GmailMessage:
    return GmailMessage(
        id=r["id"],
        mailbox=r["mailbox"],
        thread_id=r["thread_id"],
        label_ids=json.loads(r["label_ids"]),
        history_id=r["history_id"],
        internal_date_ms=r["internal_date_ms"],
        added_at=r["added_at"],
        message_id_header=r["message_id_header"],
        subject=r["subject"],
        from_addr=r["from_addr"],
        to=json.loads(r["to_addrs"]),
        cc=json.loads(r["cc_addrs"]),
        bcc=json.loads(r["bcc_addrs"]),
        snippet=r["snippet"],
        text_body=r["text_body"],
        html_body=r["html_body"],
        headers=[(k, v) for k, v in json.loads(r["headers"])],
        size=r["size"],
        raw=bytes(r["raw"]),
    )


def _sendgrid_message(r: sqlite3.Row) -> SendGridMessage:
    return SendGridMessage(
        id=r["id"],
        received_at=r["received_at"],
        from_addr=r["from_addr"],
        from_name=r["from_name"],
        to=json.loads(r["to_addrs"]),
        cc=json.loads(r["cc_addrs"]),
        bcc=json.loads(r["bcc_addrs"]),
        subject=r["subject"],
        text_body=r["text_body"],
        html_body=r["html_body"],
        headers=json.loads(r["headers"]),
        custom_args=json.loads(r["custom_args"]),
        categories=json.loads(r["categories"]),
        body=json.loads(r["body"]),
    )
