"""The record store, on SQLite and on a real PostgreSQL (``any_store`` runs each test on both)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from nurture.errors import Conflict, InvalidInput, NotFound
from nurture.store import Store, create_db_engine
from nurture.store.migrate import current_revision, downgrade, head_revision, upgrade
from nurture.store.models import Enrollment, EnrollmentStatus, Message, Task, TaskStatus
from nurture.store.tables import metadata

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc)


def test_upsert_reports_changed_properties_old_to_new(any_store: Store) -> None:
    first = any_store.upsert_record("contact", {"email": "Ada@Example.com", "firstname": "Ada", "score": 3})
    assert first.created
    assert {k: (c.old, c.new) for k, c in first.changes.items()} == {
        "email": (None, "ada@example.com"), "firstname": (None, "Ada"), "score": (None, 3),
    }
    second = any_store.upsert_record("contact", {"email": "ada@example.com", "firstname": "Augusta", "score": 3, "city": None})
    assert not second.created and second.record.id == first.record.id
    assert {k: (c.old, c.new) for k, c in second.changes.items()} == {"firstname": ("Ada", "Augusta")}
    third = any_store.upsert_record("contact", {"score": None}, record_id=first.record.id)
    assert {k: (c.old, c.new) for k, c in third.changes.items()} == {"score": (3, None)}
    assert "score" not in any_store.get_record(first.record.id).properties


def test_contacts_match_on_email_and_companies_on_domain(any_store: Store) -> None:
    a = any_store.upsert_record("company", {"domain": "Globex.test", "name": "Globex"}).record
    b = any_store.upsert_record("company", {"domain": "globex.test", "industry": "energy"}).record
    assert a.id == b.id and b.properties == {"domain": "globex.test", "name": "Globex", "industry": "energy"}
    assert any_store.find_record("company", "GLOBEX.test").id == a.id
    with pytest.raises(InvalidInput, match="not an email address"):
        any_store.upsert_record("contact", {"email": "nope"})


def test_every_record_type_and_associations(any_store: Store) -> None:
    ids = {t: any_store.upsert_record(t, {"name": f"a {t}"}).record.id for t in ("contact", "company", "deal", "ticket", "quote")}
    assert ids["deal"].startswith("dl_") and ids["quote"].startswith("qt_")
    any_store.associate(ids["contact"], ids["company"])
    any_store.associate(ids["contact"], ids["company"])  # idempotent
    any_store.associate(ids["deal"], ids["company"])
    assert [r.id for r in any_store.associated(ids["company"], "contact")] == [ids["contact"]]
    assert {r.id for r in any_store.associated(ids["company"])} == {ids["contact"], ids["deal"]}
    assert any_store.primary_company(ids["contact"]).id == ids["company"]  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        any_store.associate(ids["contact"], "co_missing")


def test_lists_are_all_or_nothing(any_store: Store) -> None:
    c1 = any_store.upsert_record("contact", {"email": "a@x.test"}).record
    c2 = any_store.upsert_record("contact", {"email": "b@x.test"}).record
    co = any_store.upsert_record("company", {"domain": "x.test"}).record
    lst = any_store.create_list("Newsletter")
    assert any_store.add_to_list("Newsletter", [c1.id, c2.id, c1.id]) == 2
    assert any_store.add_to_list(lst.id, [c1.id]) == 0
    with pytest.raises(NotFound):
        any_store.add_to_list("Newsletter", [c1.id, "ct_missing"])
    with pytest.raises(InvalidInput, match="holds contact records"):
        any_store.add_to_list("Newsletter", [co.id])
    assert any_store.get_list("Newsletter").size == 2
    assert any_store.is_member("Newsletter", c2.id)
    assert any_store.remove_from_list("Newsletter", [c2.id]) == 1
    assert [r.id for r in any_store.list_members("Newsletter")] == [c1.id]
    with pytest.raises(Conflict):
        any_store.create_list("Newsletter", "company")


def test_definition_versions(any_store: Store) -> None:
    v1 = any_store.save_definition("seq-a", "sequence", "A", {"steps": [1]})
    same = any_store.save_definition("seq-a", "sequence", "A", {"steps": [1]})
    v2 = any_store.save_definition("seq-a", "sequence", "A2", {"steps": [1, 2]})
    assert (v1.version, same.version, v2.version) == (1, 1, 2)
    assert any_store.get_definition_version("seq-a", 1).body == {"steps": [1]}
    assert any_store.get_definition("seq-a").latest_version == 2
    any_store.set_definition_status("seq-a", "archived")
    assert any_store.list_definitions() == []
    assert [d.id for d in any_store.list_definitions(include_archived=True)] == ["seq-a"]
    with pytest.raises(Conflict, match="is a sequence"):
        any_store.save_definition("seq-a", "workflow", "A", {})


def test_enrollment_index(any_store: Store) -> None:
    e = Enrollment(
        id="enr_1", kind="sequence", definition_id="seq-a", definition_version=1, record_id="ct_1", company_id="co_1",
        sender_id="usr_1", workflow_id="sequence-contact-ct_1", status=EnrollmentStatus.ACTIVE, current_step=1,
        enrolled_at=NOW, updated_at=NOW,
    )
    any_store.upsert_enrollment(e)
    any_store.upsert_enrollment(e.model_copy(update={"status": EnrollmentStatus.FINISHED}))  # second writer: no-op
    assert any_store.get_enrollment("enr_1").status is EnrollmentStatus.ACTIVE
    assert [x.id for x in any_store.open_enrollments(company_id="co_1", definition_id="seq-a")] == ["enr_1"]
    ended = any_store.update_enrollment("enr_1", status="unenrolled", exit_reason="replied", ended_at=NOW)
    assert ended.exit_reason == "replied" and ended.ended_at == NOW and ended.enrolled_at.tzinfo is not None
    assert any_store.open_enrollments(record_id="ct_1") == []


def test_concurrent_index_writers_never_fail(any_store: Store) -> None:
    """The starter and the workflow's first activity both record a start, at the same moment."""
    from concurrent.futures import ThreadPoolExecutor

    rows = [
        Enrollment(
            id=f"enr_race{i}", kind="sequence", definition_id="seq-a", definition_version=1, record_id="ct_1",
            workflow_id="w", status=EnrollmentStatus.ACTIVE, enrolled_at=NOW, updated_at=NOW,
        )
        for i in range(10)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(any_store.upsert_enrollment, [r for r in rows for _ in range(4)]))
    assert len(any_store.list_enrollments(record_id="ct_1")) == 10


def test_tasks_and_messages_are_created_once(any_store: Store) -> None:
    task = Task(id="task_enr_1_2", type="call", title="Call", status=TaskStatus.OPEN, created_at=NOW, enrollment_id="enr_1")
    any_store.create_task(task)
    any_store.create_task(task.model_copy(update={"title": "Different"}))
    assert any_store.get_task("task_enr_1_2").title == "Call"
    done, changed = any_store.complete_task("task_enr_1_2", at=NOW)
    again, changed_again = any_store.complete_task("task_enr_1_2")
    assert changed and not changed_again and done.completed_at == NOW == again.completed_at
    msg = Message(id="msg_enr_1_0", channel="gmail", to_address="a@x.test", from_address="r@y.test", subject="Hi",
                  rfc822_message_id="<m1@y.test>", status="sending", created_at=NOW)
    any_store.save_message(msg)
    any_store.save_message(msg.model_copy(update={"status": "sent", "thread_id": "t1"}))
    assert any_store.get_message("msg_enr_1_0").status == "sent"  # type: ignore[union-attr]
    assert any_store.find_message_by_rfc822_id("<m1@y.test>").thread_id == "t1"  # type: ignore[union-attr]


def test_idempotency_keys(any_store: Store) -> None:
    any_store.save_idempotent_response("k1", "POST /lists", "h1", 201, {"id": "lst_1"})
    assert any_store.idempotent_response("k1", "POST /lists", "h1") == (201, {"id": "lst_1"})
    with pytest.raises(Conflict, match="different request"):
        any_store.idempotent_response("k1", "POST /lists", "h2")
    assert any_store.idempotent_response("k2", "POST /lists", "h1") is None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_match_the_schema_and_go_down_and_up(backend: str, tmp_path, request) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'm.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    engine = create_db_engine(url)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == [], f"tables.py and the migrations differ: {diff}"
    downgrade(engine, "base")
    assert "records" not in sa.inspect(engine).get_table_names()
    upgrade(engine)
    assert "records" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_server_database_is_not_migrated_implicitly(pg_url: str) -> None:
    from nurture.errors import Unavailable

    with pytest.raises(Unavailable, match="nurture db upgrade"):
        Store.open(pg_url)
    Store.open(pg_url, migrate=True).close()
    Store.open(pg_url).close()  # at head now: opens


def test_list_overview_counts_members(any_store: Store) -> None:
    a = any_store.upsert_record("contact", {"email": "a@x.test"}).record
    any_store.create_list("Empty")
    any_store.create_list("One")
    any_store.add_to_list("One", [a.id])
    assert [(x.name, x.size) for x in any_store.list_lists()] == [("Empty", 0), ("One", 1)]
