"""Who may be enrolled: one active sequence per contact (enforced by Temporal's workflow ID, so
concurrent enrollments cannot both start), and the refusals."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from temporalio.service import RPCError

from nurture.errors import InvalidInput, NotFound, Refused
from nurture.ids import sequence_workflow_id
from nurture.store.models import DefinitionStatus, EnrollmentStatus
from starters.sequences import EnrollmentStarted
from tests.sequences.conftest import close

SEQ = """
kind: sequence
id: {id}
name: Sequence {id}
settings: {{eligible_days: every_day}}
steps:
  - {{type: email, subject: "Hi from {id}", body: "Hello"}}
  - {{type: email, delay: 2d, subject: "Again from {id}", body: "Hello again"}}
"""


async def test_concurrent_enrollments_of_one_contact_start_exactly_one(world):
    world.apply(SEQ.format(id="alpha"))
    world.apply(SEQ.format(id="beta"))
    ada = world.contacts[0]
    outcomes = await asyncio.gather(
        *(world.enroll("alpha" if i % 2 else "beta", ada) for i in range(5)), return_exceptions=True,
    )
    started = [o for o in outcomes if isinstance(o, EnrollmentStarted)]
    refused = [o for o in outcomes if not isinstance(o, EnrollmentStarted)]
    assert len(started) == 1 and len(refused) == 4, outcomes
    winner = started[0]
    for r in refused:
        assert isinstance(r, Refused) and r.reason == "already_enrolled", r
        # The refusal names the enrollment that holds the contact, even when it lost the race
        # before that enrollment reached the index.
        assert r.details == {"enrollment_id": winner.enrollment_id}
        assert winner.enrollment_id in r.message and winner.definition_id in r.message
    assert [e.id for e in world.store.list_enrollments(record_id=ada.id)] == [winner.enrollment_id]

    await world.wait_until_timer(winner, step=2)
    assert len(world.sent_to(ada)) == 1

    # Once it ends, the contact can be enrolled again: a new enrollment, the same workflow ID.
    await world.sequences.unenroll(winner.enrollment_id)
    await world.result(winner)
    again = await world.enroll("alpha", ada)
    assert again.enrollment_id != winner.enrollment_id
    assert again.workflow_id == winner.workflow_id == sequence_workflow_id(ada.id)
    assert again.run_id != winner.run_id
    result = await world.result(again)
    assert result.enrollment_id == again.enrollment_id and result.exit_reason == "finished"
    assert len(world.sent_to(ada)) == 3


async def test_the_refusal_trusts_temporal_over_a_stale_index(world):
    """The index can lag behind (or be wrong): the running workflow is the lock and says which
    enrollment holds the contact."""
    world.apply(SEQ.format(id="alpha"))
    grace = world.contacts[1]
    first = await world.enroll("alpha", grace)
    world.store.update_enrollment(first.enrollment_id, status=EnrollmentStatus.FINISHED)  # a stale row
    with pytest.raises(Refused) as refused:
        await world.enroll("alpha", grace)
    assert refused.value.reason == "already_enrolled"
    assert refused.value.details == {"enrollment_id": first.enrollment_id}


async def test_bulk_enrollment_reports_each_contact(world):
    world.apply(SEQ.format(id="alpha"))
    ada, grace, linus = world.contacts
    results = await world.sequences.enroll_many(
        "alpha", contacts=[ada.email, grace.id, ada.email, "nobody@globex.test", linus.email], sender=world.sender.email,
    )
    kinds = [type(r).__name__ for r in results]
    assert kinds.count("EnrollmentStarted") == 3
    assert isinstance(results[3], NotFound)
    dup = [r for r in (results[0], results[2]) if isinstance(r, Refused)]
    assert len(dup) == 1 and dup[0].reason == "already_enrolled"


async def _not_started(world, contact) -> None:
    with pytest.raises(RPCError):
        await world.client.get_workflow_handle(sequence_workflow_id(contact.id)).describe()


async def test_refusals(world):
    world.apply(SEQ.format(id="alpha"))
    ada, grace, linus = world.contacts

    with pytest.raises(NotFound):
        await world.sequences.enroll("alpha", contact="nobody@globex.test", sender=world.sender.email)
    with pytest.raises(NotFound):
        await world.sequences.enroll("no-such-sequence", contact=ada.email, sender=world.sender.email)

    # A sender without a connected inbox.
    no_inbox = world.store.upsert_user("intern@acme.test", name="Ivy Intern", timezone="UTC", country="US")
    with pytest.raises(Refused) as refused:
        await world.sequences.enroll("alpha", contact=ada.email, sender=no_inbox.email)
    assert refused.value.reason == "no_inbox" and "intern@acme.test" in refused.value.message

    # The definition turned off.
    world.store.set_definition_status("alpha", DefinitionStatus.OFF)
    with pytest.raises(Refused) as refused:
        await world.enroll("alpha", ada)
    assert refused.value.reason == "definition_off"
    world.store.set_definition_status("alpha", DefinitionStatus.ON)

    # The start step out of range (1-based; the sequence has 2 steps).
    for step in (0, 3, -1):
        with pytest.raises(InvalidInput) as invalid:
            await world.enroll("alpha", ada, start_step=step)
        assert "out of range" in invalid.value.message

    # A contact without an email address.
    no_email = world.store.upsert_record("contact", {"firstname": "Nameless"}).record
    with pytest.raises(Refused) as refused:
        await world.sequences.enroll("alpha", contact=no_email.id, sender=world.sender.email)
    assert refused.value.reason == "no_email"

    for c in (ada, grace, linus, no_email):
        await _not_started(world, c)
    assert world.store.list_enrollments() == []


async def test_a_disconnected_inbox_is_refused(world):
    world.apply(SEQ.format(id="alpha"))
    world.store.set_inbox_state(world.sender.id, "disconnected", error="grant revoked")
    with pytest.raises(Refused) as refused:
        await world.enroll("alpha", world.contacts[0])
    assert refused.value.reason == "no_inbox"
    await _not_started(world, world.contacts[0])


async def test_enrollment_can_start_at_a_later_step(world):
    world.apply(SEQ.format(id="alpha"))
    linus = world.contacts[2]
    t0 = await world.now()
    started = await world.enroll("alpha", linus, start_step=2)
    assert started.start_step == 2
    state = await world.wait_until_timer(started, step=2)  # step 2's delay counts from enrollment
    assert close(state.waiting_until, t0 + dt.timedelta(days=2))
    assert world.store.get_enrollment(started.enrollment_id).current_step == 2
    result = await world.result(started)
    assert result.steps_completed == 1
    assert [m.subject for m in world.sent_to(linus)] == ["Again from alpha"]
