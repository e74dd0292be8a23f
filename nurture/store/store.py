"""The record store: Nurture's own data plane (records, lists, definitions, the enrollment index,
tasks, the message log, inboxes). SQLite by default, PostgreSQL in production.

Methods are synchronous and short: activities run in a thread pool, the API in FastAPI's. Every
write that must happen once is keyed (task IDs, message IDs) so a retried activity is a no-op.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from nurture.errors import Conflict, InvalidInput, NotFound
from nurture.ids import RECORD_PREFIXES, new_id
from nurture.store import tables as t
from nurture.store.models import (
    OPEN_ENROLLMENT_STATUSES,
    DefinitionRow,
    DefinitionStatus,
    DefinitionVersion,
    EmailEvent,
    Enrollment,
    EnrollmentStatus,
    Inbox,
    Message,
    PropertyChange,
    Record,
    RecordType,
    StaticList,
    Task,
    TaskStatus,
    UpsertResult,
    User,
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _natural_key(record_type: RecordType, properties: Mapping[str, Any]) -> str | None:
    if record_type is RecordType.CONTACT and properties.get("email"):
        return str(properties["email"]).strip().lower()
    if record_type is RecordType.COMPANY and properties.get("domain"):
        return str(properties["domain"]).strip().lower()
    return None


def slot_for(
    slots: Sequence[dt.datetime],
    candidate: dt.datetime,
    *,
    daily_cap: int,
    min_spacing: dt.timedelta,
    allowed: Callable[[dt.datetime], dt.datetime],
) -> dt.datetime:
    """The first moment at or after ``candidate`` (already allowed) that is ``min_spacing`` away
    from every reserved slot and keeps every rolling 24-hour window at ``daily_cap`` or fewer."""
    day = dt.timedelta(hours=24)
    if daily_cap < 1:
        raise InvalidInput("an inbox's daily cap must be at least 1")
    for _ in range(100_000):
        close = [s for s in slots if abs(s - candidate) < min_spacing]
        if close:
            candidate = allowed(max(close) + min_spacing)
            continue
        before = [s for s in slots if candidate - day < s <= candidate]
        if len(before) >= daily_cap:
            # Wait until the oldest send that keeps the window full has aged out.
            candidate = allowed(before[len(before) - daily_cap] + day + dt.timedelta(microseconds=1))
            continue
        # A slot reserved later than the candidate must not see its own window overflow.
        later = [s for s in slots if candidate < s < candidate + day]
        if any(sum(1 for x in slots if s - day < x <= s) + 1 > daily_cap for s in later):
            candidate = allowed(max(slots) + min_spacing)
            continue
        return candidate
    raise RuntimeError("no send slot found; the inbox's reservations are inconsistent")


def insert_or_ignore(conn: Connection, table: sa.Table, values: Mapping[str, Any]) -> bool:
    """Insert a row unless its primary key exists — atomically, so two writers racing on the
    same key (a starter and an activity, two retries) never fail. Returns True if inserted."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:  # pragma: no cover - Nurture supports SQLite and PostgreSQL
        raise NotImplementedError(conn.dialect.name)
    keys = [col.name for col in table.primary_key.columns]
    result = conn.execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=keys))
    return bool(result.rowcount)


def _lock_inbox(conn: Connection, inbox_user_id: str) -> None:
    """Start a transaction by writing the inbox's row: that serializes every slot decision of
    one inbox across workers (a row lock on PostgreSQL, the write lock on SQLite)."""
    locked = conn.execute(
        t.inboxes.update().where(t.inboxes.c.user_id == inbox_user_id).values(updated_at=t.inboxes.c.updated_at)
    )
    if not locked.rowcount:
        raise NotFound(f"user {inbox_user_id} has no connected inbox")


def create_db_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API, the worker and the CLI read while one of them writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate: bool | None = None) -> Store:
        """Open the store. SQLite (the embedded default) is migrated on open; a server database
        is migrated by ``nurture db upgrade`` (a deploy step) and only checked here."""
        from nurture.store.migrate import current_revision, head_revision, upgrade

        engine = create_db_engine(url)
        if migrate is None:
            migrate = engine.dialect.name == "sqlite"
        if migrate:
            upgrade(engine)
        else:
            current, head = current_revision(engine), head_revision()
            if current != head:
                engine.dispose()
                from nurture.errors import Unavailable

                raise Unavailable(
                    f"the database schema is at revision {current or 'none'}, this release needs {head}; "
                    "run `nurture db upgrade`"
                )
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # ------------------------------------------------------------------ users
    def upsert_user(
        self,
        email: str,
        *,
        name: str = "",
        timezone: str | None = None,
        country: str | None = None,
        user_id: str | None = None,
    ) -> User:
        email = email.strip().lower()
        with self.tx() as c:
            row = c.execute(sa.select(t.users).where(t.users.c.email == email)).mappings().first()
            if row:
                values = {"name": name or row["name"]}
                if timezone is not None:
                    values["timezone"] = timezone
                if country is not None:
                    values["country"] = country
                c.execute(t.users.update().where(t.users.c.id == row["id"]).values(**values))
                uid = row["id"]
            else:
                uid = user_id or new_id("usr")
                c.execute(
                    t.users.insert().values(
                        id=uid, email=email, name=name, timezone=timezone, country=country,
                        properties={}, created_at=utcnow(),
                    )
                )
            return User.model_validate(dict(c.execute(sa.select(t.users).where(t.users.c.id == uid)).mappings().one()))

    def get_user(self, user_id: str) -> User:
        with self.engine.connect() as c:
            row = c.execute(sa.select(t.users).where(t.users.c.id == user_id)).mappings().first()
        if not row:
            raise NotFound(f"no user with ID {user_id!r}; list users with `nurture users list`")
        return User.model_validate(dict(row))

    def find_user(self, id_or_email: str) -> User:
        key = id_or_email.strip()
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(t.users).where(sa.or_(t.users.c.id == key, t.users.c.email == key.lower()))
            ).mappings().first()
        if not row:
            raise NotFound(f"no user with ID or email {id_or_email!r}; add one with `nurture users add`")
        return User.model_validate(dict(row))

    def list_users(self) -> list[User]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(t.users).order_by(t.users.c.email)).mappings().all()
        return [User.model_validate(dict(r)) for r in rows]

    # ---------------------------------------------------------------- records
    def upsert_record(
        self,
        record_type: RecordType | str,
        properties: Mapping[str, Any],
        *,
        record_id: str | None = None,
        owner_id: str | None = None,
    ) -> UpsertResult:
        """Create or update a record, matched by ID, else by natural key (contact email, company
        domain). Returns which properties changed (old → new): triggers and goals need it.

        A property set to ``None`` is removed.
        """
        rtype = RecordType(record_type)
        props = {str(k): v for k, v in properties.items()}
        if rtype is RecordType.CONTACT and "email" in props and props["email"]:
            props["email"] = str(props["email"]).strip().lower()
            if "@" not in props["email"]:
                raise InvalidInput(f"contact email {props['email']!r} is not an email address")
        now = utcnow()
        with self.tx() as c:
            row = None
            if record_id:
                row = c.execute(sa.select(t.records).where(t.records.c.id == record_id)).mappings().first()
                if row and row["type"] != rtype.value:
                    raise Conflict(f"record {record_id} is a {row['type']}, not a {rtype.value}")
            key = _natural_key(rtype, props)
            if row is None and key:
                row = c.execute(
                    sa.select(t.records).where(t.records.c.type == rtype.value, t.records.c.natural_key == key)
                ).mappings().first()
            if row is None:
                rid = record_id or new_id(RECORD_PREFIXES[rtype.value])
                clean = {k: v for k, v in props.items() if v is not None}
                c.execute(
                    t.records.insert().values(
                        id=rid, type=rtype.value, natural_key=key, owner_id=owner_id,
                        properties=clean, created_at=now, updated_at=now,
                    )
                )
                changes = {k: PropertyChange(old=None, new=v) for k, v in clean.items()}
                created = True
            else:
                rid = row["id"]
                current = dict(row["properties"] or {})
                changes = {}
                for k, v in props.items():
                    old = current.get(k)
                    if v is None:
                        if k in current:
                            changes[k] = PropertyChange(old=old, new=None)
                            del current[k]
                    elif old != v:
                        changes[k] = PropertyChange(old=old, new=v)
                        current[k] = v
                values: dict[str, Any] = {}
                if changes:
                    values.update(properties=current, natural_key=_natural_key(rtype, current), updated_at=now)
                if owner_id is not None and owner_id != row["owner_id"]:
                    values.update(owner_id=owner_id, updated_at=now)
                if values:
                    try:
                        c.execute(t.records.update().where(t.records.c.id == rid).values(**values))
                    except sa.exc.IntegrityError as exc:
                        raise Conflict(
                            f"another {rtype.value} already has {props.get('email') or props.get('domain')!r}"
                        ) from exc
                created = False
            rec = c.execute(sa.select(t.records).where(t.records.c.id == rid)).mappings().one()
        return UpsertResult(record=Record.model_validate(dict(rec)), created=created, changes=changes)

    def get_record(self, record_id: str) -> Record:
        with self.engine.connect() as c:
            row = c.execute(sa.select(t.records).where(t.records.c.id == record_id)).mappings().first()
        if not row:
            raise NotFound(f"no record with ID {record_id!r}")
        return Record.model_validate(dict(row))

    def find_record(self, record_type: RecordType | str, id_or_key: str) -> Record:
        """Find by ID, or by natural key (a contact's email, a company's domain)."""
        rtype = RecordType(record_type)
        key = id_or_key.strip()
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(t.records).where(
                    t.records.c.type == rtype.value,
                    sa.or_(t.records.c.id == key, t.records.c.natural_key == key.lower()),
                )
            ).mappings().first()
        if not row:
            raise NotFound(f"no {rtype.value} with ID or {'email' if rtype is RecordType.CONTACT else 'key'} {id_or_key!r}")
        return Record.model_validate(dict(row))

    def list_records(self, record_type: RecordType | str | None = None, *, limit: int = 100, after: str | None = None) -> list[Record]:
        q = sa.select(t.records).order_by(t.records.c.id).limit(limit)
        if record_type:
            q = q.where(t.records.c.type == RecordType(record_type).value)
        if after:
            q = q.where(t.records.c.id > after)
        with self.engine.connect() as c:
            return [Record.model_validate(dict(r)) for r in c.execute(q).mappings().all()]

    def associate(self, a_id: str, b_id: str) -> None:
        """Associate two records (both directions). Idempotent."""
        with self.tx() as c:
            rows = {
                r["id"]: r["type"]
                for r in c.execute(sa.select(t.records.c.id, t.records.c.type).where(t.records.c.id.in_([a_id, b_id]))).mappings()
            }
            for rid in (a_id, b_id):
                if rid not in rows:
                    raise NotFound(f"no record with ID {rid!r}")
            now = utcnow()
            for frm, to in ((a_id, b_id), (b_id, a_id)):
                exists = c.execute(
                    sa.select(t.associations.c.from_id).where(t.associations.c.from_id == frm, t.associations.c.to_id == to)
                ).first()
                if not exists:
                    c.execute(t.associations.insert().values(from_id=frm, to_id=to, to_type=rows[to], created_at=now))

    def associated(self, record_id: str, record_type: RecordType | str | None = None) -> list[Record]:
        q = (
            sa.select(t.records)
            .join(t.associations, t.associations.c.to_id == t.records.c.id)
            .where(t.associations.c.from_id == record_id)
            .order_by(t.records.c.id)
        )
        if record_type:
            q = q.where(t.associations.c.to_type == RecordType(record_type).value)
        with self.engine.connect() as c:
            return [Record.model_validate(dict(r)) for r in c.execute(q).mappings().all()]

    def primary_company(self, contact_id: str) -> Record | None:
        companies = self.associated(contact_id, RecordType.COMPANY)
        return companies[0] if companies else None

    # ------------------------------------------------------------------ lists
    def create_list(self, name: str, object_type: RecordType | str = RecordType.CONTACT) -> StaticList:
        otype = RecordType(object_type)
        with self.tx() as c:
            existing = c.execute(sa.select(t.lists).where(t.lists.c.name == name)).mappings().first()
            if existing:
                if existing["object_type"] != otype.value:
                    raise Conflict(f"list {name!r} already exists for {existing['object_type']} records")
                lid = existing["id"]
            else:
                lid = new_id("lst")
                c.execute(t.lists.insert().values(id=lid, name=name, object_type=otype.value, created_at=utcnow()))
        return self.get_list(lid)

    def get_list(self, id_or_name: str) -> StaticList:
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(t.lists).where(sa.or_(t.lists.c.id == id_or_name, t.lists.c.name == id_or_name))
            ).mappings().first()
            if not row:
                raise NotFound(f"no list with ID or name {id_or_name!r}; create it with `nurture lists create`")
            size = c.execute(
                sa.select(sa.func.count()).select_from(t.list_members).where(t.list_members.c.list_id == row["id"])
            ).scalar_one()
        return StaticList.model_validate({**dict(row), "size": size})

    def list_lists(self) -> list[StaticList]:
        size = sa.func.count(t.list_members.c.record_id).label("size")
        q = (
            sa.select(t.lists, size)
            .select_from(t.lists.outerjoin(t.list_members, t.list_members.c.list_id == t.lists.c.id))
            .group_by(*t.lists.c)
            .order_by(t.lists.c.name)
        )
        with self.engine.connect() as c:
            return [StaticList.model_validate(dict(r)) for r in c.execute(q).mappings()]

    def add_to_list(self, list_id_or_name: str, record_ids: Iterable[str]) -> int:
        """Add records to a static list; returns how many were newly added. All or nothing."""
        lst = self.get_list(list_id_or_name)
        ids = list(dict.fromkeys(record_ids))
        with self.tx() as c:
            found = {
                r["id"]: r["type"]
                for r in c.execute(sa.select(t.records.c.id, t.records.c.type).where(t.records.c.id.in_(ids))).mappings()
            }
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFound(f"no record with ID {missing[0]!r} (and {len(missing) - 1} more); nothing was added")
            wrong = [i for i in ids if found[i] != lst.object_type.value]
            if wrong:
                raise InvalidInput(f"list {lst.name!r} holds {lst.object_type.value} records; {wrong[0]} is a {found[wrong[0]]}")
            present = {
                r[0]
                for r in c.execute(
                    sa.select(t.list_members.c.record_id).where(
                        t.list_members.c.list_id == lst.id, t.list_members.c.record_id.in_(ids)
                    )
                )
            }
            new = [i for i in ids if i not in present]
            if new:
                now = utcnow()
                c.execute(t.list_members.insert(), [{"list_id": lst.id, "record_id": i, "added_at": now} for i in new])
        return len(new)

    def remove_from_list(self, list_id_or_name: str, record_ids: Iterable[str]) -> int:
        lst = self.get_list(list_id_or_name)
        with self.tx() as c:
            res = c.execute(
                t.list_members.delete().where(
                    t.list_members.c.list_id == lst.id, t.list_members.c.record_id.in_(list(record_ids))
                )
            )
        return res.rowcount or 0

    def list_members(self, list_id_or_name: str, *, limit: int = 1000, after: str | None = None) -> list[Record]:
        lst = self.get_list(list_id_or_name)
        q = (
            sa.select(t.records)
            .join(t.list_members, t.list_members.c.record_id == t.records.c.id)
            .where(t.list_members.c.list_id == lst.id)
            .order_by(t.records.c.id)
            .limit(limit)
        )
        if after:
            q = q.where(t.records.c.id > after)
        with self.engine.connect() as c:
            return [Record.model_validate(dict(r)) for r in c.execute(q).mappings().all()]

    def is_member(self, list_id_or_name: str, record_id: str) -> bool:
        lst = self.get_list(list_id_or_name)
        with self.engine.connect() as c:
            return c.execute(
                sa.select(t.list_members.c.record_id).where(
                    t.list_members.c.list_id == lst.id, t.list_members.c.record_id == record_id
                )
            ).first() is not None

    # ------------------------------------------------------------ definitions
    def save_definition(self, definition_id: str, kind: str, name: str, body: Mapping[str, Any]) -> DefinitionVersion:
        """Store a new version of a definition, unless it is identical to the latest one.

        Running enrollments keep the version they started with (it is copied into their input).
        """
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        checksum = hashlib.sha256(canonical.encode()).hexdigest()
        now = utcnow()
        with self.tx() as c:
            row = c.execute(sa.select(t.definitions).where(t.definitions.c.id == definition_id)).mappings().first()
            if row and row["kind"] != kind:
                raise Conflict(f"definition {definition_id!r} is a {row['kind']}, not a {kind}; pick another id")
            if row:
                latest = c.execute(
                    sa.select(t.definition_versions).where(
                        t.definition_versions.c.definition_id == definition_id,
                        t.definition_versions.c.version == row["latest_version"],
                    )
                ).mappings().one()
                if latest["checksum"] == checksum:
                    return DefinitionVersion.model_validate(dict(latest))
                version = row["latest_version"] + 1
                status = row["status"]
                if status == DefinitionStatus.ARCHIVED:
                    status = DefinitionStatus.OFF.value
                c.execute(
                    t.definitions.update().where(t.definitions.c.id == definition_id).values(
                        name=name, latest_version=version, updated_at=now, status=status
                    )
                )
            else:
                version = 1
                c.execute(
                    t.definitions.insert().values(
                        id=definition_id, kind=kind, name=name, status=DefinitionStatus.ON.value,
                        latest_version=1, created_at=now, updated_at=now,
                    )
                )
            c.execute(
                t.definition_versions.insert().values(
                    definition_id=definition_id, version=version, body=json.loads(canonical),
                    checksum=checksum, created_at=now,
                )
            )
            return DefinitionVersion(definition_id=definition_id, version=version, body=json.loads(canonical), checksum=checksum, created_at=now)

    def get_definition(self, definition_id: str) -> DefinitionRow:
        with self.engine.connect() as c:
            row = c.execute(sa.select(t.definitions).where(t.definitions.c.id == definition_id)).mappings().first()
        if not row:
            raise NotFound(f"no definition {definition_id!r}; see `nurture definitions list`, or store it with `nurture apply FILE`")
        return DefinitionRow.model_validate(dict(row))

    def get_definition_version(self, definition_id: str, version: int | None = None) -> DefinitionVersion:
        row = self.get_definition(definition_id)
        v = version or row.latest_version
        with self.engine.connect() as c:
            vr = c.execute(
                sa.select(t.definition_versions).where(
                    t.definition_versions.c.definition_id == definition_id, t.definition_versions.c.version == v
                )
            ).mappings().first()
        if not vr:
            raise NotFound(f"definition {definition_id!r} has no version {v} (latest is {row.latest_version})")
        return DefinitionVersion.model_validate(dict(vr))

    def list_definitions(self, *, kind: str | None = None, include_archived: bool = False) -> list[DefinitionRow]:
        q = sa.select(t.definitions).order_by(t.definitions.c.id)
        if kind:
            q = q.where(t.definitions.c.kind == kind)
        if not include_archived:
            q = q.where(t.definitions.c.status != DefinitionStatus.ARCHIVED.value)
        with self.engine.connect() as c:
            return [DefinitionRow.model_validate(dict(r)) for r in c.execute(q).mappings().all()]

    def set_definition_status(self, definition_id: str, status: DefinitionStatus | str) -> DefinitionRow:
        self.get_definition(definition_id)
        with self.tx() as c:
            c.execute(
                t.definitions.update().where(t.definitions.c.id == definition_id).values(
                    status=DefinitionStatus(status).value, updated_at=utcnow()
                )
            )
        return self.get_definition(definition_id)

    # ------------------------------------------------------------ enrollments
    def upsert_enrollment(self, enrollment: Enrollment) -> None:
        """Insert the index row, or leave an existing one as it is (the workflow and the starter
        both record the start; whichever comes second changes nothing)."""
        with self.tx() as c:
            insert_or_ignore(c, t.enrollments, enrollment.model_dump(mode="python"))

    def update_enrollment(self, enrollment_id: str, **fields: Any) -> Enrollment:
        allowed = {"status", "exit_reason", "current_step", "ended_at", "status_detail"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update enrollment fields {sorted(unknown)}")
        if "status" in fields:
            fields["status"] = EnrollmentStatus(fields["status"]).value
        with self.tx() as c:
            res = c.execute(
                t.enrollments.update().where(t.enrollments.c.id == enrollment_id).values(**fields, updated_at=utcnow())
            )
            if not res.rowcount:
                raise NotFound(f"no enrollment {enrollment_id!r}")
        return self.get_enrollment(enrollment_id)

    def get_enrollment(self, enrollment_id: str) -> Enrollment:
        with self.engine.connect() as c:
            row = c.execute(sa.select(t.enrollments).where(t.enrollments.c.id == enrollment_id)).mappings().first()
        if not row:
            raise NotFound(f"no enrollment {enrollment_id!r}; list them with `nurture enrollments list`")
        return Enrollment.model_validate(dict(row))

    def list_enrollments(
        self,
        *,
        record_id: str | None = None,
        definition_id: str | None = None,
        company_id: str | None = None,
        sender_id: str | None = None,
        kind: str | None = None,
        statuses: Sequence[str] | None = None,
        limit: int = 500,
    ) -> list[Enrollment]:
        q = sa.select(t.enrollments).order_by(t.enrollments.c.id.desc()).limit(limit)
        if sender_id:
            q = q.where(t.enrollments.c.sender_id == sender_id)
        if record_id:
            q = q.where(t.enrollments.c.record_id == record_id)
        if definition_id:
            q = q.where(t.enrollments.c.definition_id == definition_id)
        if company_id:
            q = q.where(t.enrollments.c.company_id == company_id)
        if kind:
            q = q.where(t.enrollments.c.kind == kind)
        if statuses:
            q = q.where(t.enrollments.c.status.in_(list(statuses)))
        with self.engine.connect() as c:
            return [Enrollment.model_validate(dict(r)) for r in c.execute(q).mappings().all()]

    def open_enrollments(self, **filters: Any) -> list[Enrollment]:
        return self.list_enrollments(statuses=OPEN_ENROLLMENT_STATUSES, **filters)

    # ------------------------------------------------------------------ tasks
    def create_task(self, task: Task) -> Task:
        """Create a task once: a second call with the same ID returns the stored task."""
        with self.tx() as c:
            if insert_or_ignore(c, t.tasks, task.model_dump(mode="python")):
                return task
        return self.get_task(task.id)

    def task_exists(self, task_id: str) -> bool:
        with self.engine.connect() as c:
            return c.execute(sa.select(t.tasks.c.id).where(t.tasks.c.id == task_id)).first() is not None

    def get_task(self, task_id: str) -> Task:
        with self.engine.connect() as c:
            row = c.execute(sa.select(t.tasks).where(t.tasks.c.id == task_id)).mappings().first()
        if not row:
            raise NotFound(f"no task {task_id!r}; list open tasks with `nurture tasks list`")
        return Task.model_validate(dict(row))

    def list_tasks(
        self, *, assignee_id: str | None = None, status: str | None = None, enrollment_id: str | None = None, limit: int = 200
    ) -> list[Task]:
        q = sa.select(t.tasks).order_by(t.tasks.c.due_at, t.tasks.c.id).limit(limit)
        if assignee_id:
            q = q.where(t.tasks.c.assignee_id == assignee_id)
        if status:
            q = q.where(t.tasks.c.status == TaskStatus(status).value)
        if enrollment_id:
            q = q.where(t.tasks.c.enrollment_id == enrollment_id)
        with self.engine.connect() as c:
            return [Task.model_validate(dict(r)) for r in c.execute(q).mappings().all()]

    def complete_task(self, task_id: str, *, at: dt.datetime | None = None) -> tuple[Task, bool]:
        """Mark a task completed. Returns (task, changed); completing twice changes nothing."""
        task = self.get_task(task_id)
        if task.status is TaskStatus.COMPLETED:
            return task, False
        if task.status is TaskStatus.CANCELED:
            raise Conflict(f"task {task_id} was canceled (its enrollment ended); it cannot be completed")
        with self.tx() as c:
            c.execute(
                t.tasks.update().where(t.tasks.c.id == task_id, t.tasks.c.status == TaskStatus.OPEN.value).values(
                    status=TaskStatus.COMPLETED.value, completed_at=at or utcnow()
                )
            )
        return self.get_task(task_id), True

    def cancel_open_tasks(self, enrollment_id: str) -> int:
        with self.tx() as c:
            res = c.execute(
                t.tasks.update().where(
                    t.tasks.c.enrollment_id == enrollment_id, t.tasks.c.status == TaskStatus.OPEN.value
                ).values(status=TaskStatus.CANCELED.value)
            )
        return res.rowcount or 0

    # --------------------------------------------------------------- messages
    def get_message(self, message_id: str) -> Message | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(t.messages).where(t.messages.c.id == message_id)).mappings().first()
        return Message.model_validate(dict(row)) if row else None

    def save_message(self, message: Message) -> Message:
        """Insert or update the log entry for one message (keyed by its deterministic ID)."""
        values = message.model_dump(mode="python")
        with self.tx() as c:
            exists = c.execute(sa.select(t.messages.c.id).where(t.messages.c.id == message.id)).first()
            if exists:
                c.execute(t.messages.update().where(t.messages.c.id == message.id).values(**values))
            else:
                c.execute(t.messages.insert().values(**values))
        return message

    def list_messages(self, *, enrollment_id: str | None = None, record_id: str | None = None, limit: int = 200) -> list[Message]:
        q = sa.select(t.messages).order_by(t.messages.c.created_at.desc()).limit(limit)
        if enrollment_id:
            q = q.where(t.messages.c.enrollment_id == enrollment_id)
        if record_id:
            q = q.where(t.messages.c.record_id == record_id)
        with self.engine.connect() as c:
            return [Message.model_validate(dict(r)) for r in c.execute(q).mappings().all()]

    def find_message_by_thread(self, thread_id: str) -> Message | None:
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(t.messages).where(t.messages.c.thread_id == thread_id).order_by(t.messages.c.created_at)
            ).mappings().first()
        return Message.model_validate(dict(row)) if row else None

    def find_message_by_rfc822_id(self, rfc822_id: str) -> Message | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(t.messages).where(t.messages.c.rfc822_message_id == rfc822_id)).mappings().first()
        return Message.model_validate(dict(row)) if row else None

    def record_event(self, event: EmailEvent) -> bool:
        """Log an email event once (keyed by its ID). Returns False if it was already logged."""
        with self.tx() as c:
            return insert_or_ignore(c, t.email_events, event.model_dump(mode="python"))

    def event_exists(self, event_id: str) -> bool:
        with self.engine.connect() as c:
            return c.execute(sa.select(t.email_events.c.id).where(t.email_events.c.id == event_id)).first() is not None

    def list_events(self, *, enrollment_id: str | None = None, record_id: str | None = None) -> list[EmailEvent]:
        q = sa.select(t.email_events).order_by(t.email_events.c.occurred_at)
        if enrollment_id:
            q = q.where(t.email_events.c.enrollment_id == enrollment_id)
        if record_id:
            q = q.where(t.email_events.c.record_id == record_id)
        with self.engine.connect() as c:
            return [EmailEvent.model_validate(dict(r)) for r in c.execute(q).mappings().all()]

    # ---------------------------------------------------------------- inboxes
    def upsert_inbox(
        self,
        user_id: str,
        *,
        email: str,
        provider: str,
        credentials_encrypted: str | None = None,
        daily_cap: int | None = None,
        min_spacing_seconds: int | None = None,
        state: str = "connected",
    ) -> Inbox:
        now = utcnow()
        with self.tx() as c:
            row = c.execute(sa.select(t.inboxes).where(t.inboxes.c.user_id == user_id)).mappings().first()
            values: dict[str, Any] = {"email": email.lower(), "provider": provider, "state": state, "updated_at": now}
            if credentials_encrypted is not None:
                values["credentials_encrypted"] = credentials_encrypted
            if daily_cap is not None:
                values["daily_cap"] = daily_cap
            if min_spacing_seconds is not None:
                values["min_spacing_seconds"] = min_spacing_seconds
            if row:
                c.execute(t.inboxes.update().where(t.inboxes.c.user_id == user_id).values(**values))
            else:
                c.execute(t.inboxes.insert().values(user_id=user_id, connected_at=now, **values))
        return self.get_inbox(user_id)  # type: ignore[return-value]

    def get_inbox(self, user_id: str) -> Inbox | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(t.inboxes).where(t.inboxes.c.user_id == user_id)).mappings().first()
        return Inbox.model_validate(dict(row)) if row else None

    def inbox_credentials(self, user_id: str) -> str | None:
        with self.engine.connect() as c:
            return c.execute(sa.select(t.inboxes.c.credentials_encrypted).where(t.inboxes.c.user_id == user_id)).scalar()

    def list_inboxes(self) -> list[Inbox]:
        with self.engine.connect() as c:
            return [Inbox.model_validate(dict(r)) for r in c.execute(sa.select(t.inboxes).order_by(t.inboxes.c.email)).mappings()]

    # -------------------------------------------------------------- send slots
    def reserve_send_slot(
        self,
        inbox_user_id: str,
        message_key: str,
        earliest: dt.datetime,
        *,
        daily_cap: int,
        min_spacing: dt.timedelta,
        allowed: Callable[[dt.datetime], dt.datetime] = lambda t: t,
    ) -> dt.datetime:
        """Reserve the first send time at or after ``earliest`` that keeps the inbox within its
        rolling 24-hour cap and minimum spacing, moved into the allowed days and window by
        ``allowed``. Idempotent per message; serialized per inbox by ``_lock_inbox``."""
        day = dt.timedelta(hours=24)
        with self.tx() as c:
            _lock_inbox(c, inbox_user_id)
            existing = c.execute(
                sa.select(t.send_slots.c.slot_at).where(t.send_slots.c.message_key == message_key)
            ).scalar()
            if existing is not None:
                return existing
            slots = sorted(
                r[0] for r in c.execute(
                    sa.select(t.send_slots.c.slot_at).where(
                        t.send_slots.c.inbox_user_id == inbox_user_id,
                        t.send_slots.c.slot_at > earliest - day - min_spacing,
                    )
                )
            )
            candidate = slot_for(slots, allowed(earliest), daily_cap=daily_cap, min_spacing=min_spacing, allowed=allowed)
            c.execute(t.send_slots.insert().values(
                message_key=message_key, inbox_user_id=inbox_user_id, slot_at=candidate, created_at=utcnow(),
            ))
            return candidate

    def claim_send_slot(
        self, inbox_user_id: str, message_key: str, now: dt.datetime, *, daily_cap: int, min_spacing: dt.timedelta,
    ) -> dt.datetime | None:
        """Just before a send: claim its reserved slot for ``now`` if the inbox's sends that
        really went keep the spacing and the rolling cap; else return when to try again. Timers
        fire late, so reservations alone do not space the sends themselves."""
        day = dt.timedelta(hours=24)
        with self.tx() as c:
            _lock_inbox(c, inbox_user_id)
            claimed = sorted(r[0] for r in c.execute(
                sa.select(t.send_slots.c.claimed_at).where(
                    t.send_slots.c.inbox_user_id == inbox_user_id,
                    t.send_slots.c.message_key != message_key,
                    t.send_slots.c.claimed_at.is_not(None),
                    t.send_slots.c.claimed_at > now - day,
                )
            ))
            if claimed and now < claimed[-1] + min_spacing:
                return claimed[-1] + min_spacing
            if len(claimed) >= daily_cap:
                return claimed[len(claimed) - daily_cap] + day + dt.timedelta(microseconds=1)
            c.execute(t.send_slots.update().where(t.send_slots.c.message_key == message_key).values(
                claimed_at=now,
            ))
            return None

    def send_slot(self, message_key: str) -> dt.datetime | None:
        with self.engine.connect() as c:
            return c.execute(sa.select(t.send_slots.c.slot_at).where(t.send_slots.c.message_key == message_key)).scalar()

    def release_send_slot(self, message_key: str) -> None:
        with self.tx() as c:
            c.execute(t.send_slots.delete().where(t.send_slots.c.message_key == message_key))

    def release_unsent_slots(self, key_prefix: str) -> int:
        """Give back the slots of messages that will not be sent (their enrollment ended first).
        Slots of sent messages stay: they count against the inbox's rolling cap."""
        sent = sa.select(t.messages.c.id).where(t.messages.c.status == "sent")
        with self.tx() as c:
            res = c.execute(t.send_slots.delete().where(
                t.send_slots.c.message_key.startswith(key_prefix, autoescape=True), t.send_slots.c.message_key.not_in(sent),
            ))
        return res.rowcount or 0

    def send_slots(self, inbox_user_id: str, *, since: dt.datetime) -> list[dt.datetime]:
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(
                sa.select(t.send_slots.c.slot_at).where(
                    t.send_slots.c.inbox_user_id == inbox_user_id, t.send_slots.c.slot_at >= since,
                ).order_by(t.send_slots.c.slot_at)
            )]

    def set_inbox_state(self, user_id: str, state: str, *, error: str | None = None) -> Inbox:
        with self.tx() as c:
            res = c.execute(t.inboxes.update().where(t.inboxes.c.user_id == user_id).values(
                state=state, last_error=error, updated_at=utcnow(),
            ))
            if not res.rowcount:
                raise NotFound(f"user {user_id} has no inbox; connect one with `nurture inbox connect`")
        return self.get_inbox(user_id)  # type: ignore[return-value]

    def set_inbox_history_id(self, user_id: str, history_id: str) -> None:
        with self.tx() as c:
            c.execute(t.inboxes.update().where(t.inboxes.c.user_id == user_id).values(history_id=history_id))

    # ------------------------------------------------------------ idempotency
    def idempotent_response(self, key: str, route: str, request_hash: str) -> tuple[int, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(t.api_idempotency).where(t.api_idempotency.c.key == key)).mappings().first()
        if not row:
            return None
        if row["route"] != route or row["request_hash"] != request_hash:
            raise Conflict(
                f"Idempotency-Key {key!r} was already used for a different request; use a new key for a new request"
            )
        return row["status_code"], row["response"]

    def save_idempotent_response(self, key: str, route: str, request_hash: str, status_code: int, response: Any) -> None:
        with self.tx() as c:
            insert_or_ignore(c, t.api_idempotency, {
                "key": key, "route": route, "request_hash": request_hash, "status_code": status_code,
                "response": response, "created_at": utcnow(),
            })
