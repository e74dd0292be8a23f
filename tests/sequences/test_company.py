"""Company-level unenroll: with ``unenroll_company_on_reply``, a reply or a booked meeting of one
contact takes the company's other contacts out of the same sequence (reason company_replied);
without it they carry on. Other sequences and other companies are never touched."""

from __future__ import annotations

import pytest

from nurture.contracts.sequence import ExitReason
from nurture.store.models import EnrollmentStatus

SEQ = """
kind: sequence
id: {id}
name: Company outreach
settings: {{eligible_days: every_day, unenroll_company_on_reply: {option}}}
steps:
  - {{type: email, subject: "Hi {{{{ contact.firstname }}}}", body: "Hello"}}
  - {{type: email, delay: 2d, subject: "Checking in", body: "Hello again"}}
  - {{type: email, delay: 2d, subject: "Last note", body: "Bye"}}
"""


async def _enroll_all(world, definition_id, contacts):
    started = [await world.enroll(definition_id, c) for c in contacts]
    for s in started:
        await world.wait_until_timer(s, step=2)
    return started


@pytest.mark.parametrize("event", [ExitReason.REPLIED, ExitReason.MEETING_BOOKED])
async def test_a_reply_unenrolls_the_companys_other_contacts(world, event):
    world.apply(SEQ.format(id="outreach", option="true"))
    world.apply(SEQ.format(id="other", option="true"))
    ada, grace, linus = world.contacts
    # Barbara works at Globex too but is in another sequence; Ken is in this one, at Initech.
    barbara = world.store.upsert_record("contact", {"email": "barbara@globex.test", "firstname": "Barbara"}).record
    world.store.associate(barbara.id, world.company.id)
    initech = world.store.upsert_record("company", {"name": "Initech", "domain": "initech.test"}).record
    ken = world.store.upsert_record("contact", {"email": "ken@initech.test", "firstname": "Ken"}).record
    world.store.associate(ken.id, initech.id)

    e_ada, e_grace, e_linus, e_ken = await _enroll_all(world, "outreach", [ada, grace, linus, ken])
    [e_barbara] = await _enroll_all(world, "other", [barbara])

    await world.sequences.report(e_ada.enrollment_id, event)
    assert (await world.result(e_ada)).exit_reason == event.value
    for peer in (e_grace, e_linus):
        result = await world.result(peer)
        assert result.exit_reason == "company_replied" and result.status == "unenrolled"
        row = world.store.get_enrollment(peer.enrollment_id)
        assert row.status is EnrollmentStatus.UNENROLLED and row.exit_reason == "company_replied" and row.ended_at
        state = await world.state(peer)
        assert e_ada.enrollment_id in (state.exit_detail or "") and event.value in (state.exit_detail or "")
    for contact in (ada, grace, linus):
        assert len(world.sent_to(contact)) == 1

    # Other sequence, other company: untouched, still waiting for step 2.
    for other in (e_barbara, e_ken):
        state = await world.state(other)
        assert state.status == "active" and state.exit_reason is None and state.waiting_until is not None
        assert world.store.get_enrollment(other.enrollment_id).status is EnrollmentStatus.ACTIVE


async def test_without_the_option_the_others_carry_on(world):
    world.apply(SEQ.format(id="outreach", option="false"))
    ada, grace, linus = world.contacts
    e_ada, e_grace, e_linus = await _enroll_all(world, "outreach", [ada, grace, linus])
    await world.sequences.report(e_ada.enrollment_id, ExitReason.REPLIED)
    assert (await world.result(e_ada)).exit_reason == "replied"
    for peer in (e_grace, e_linus):
        state = await world.state(peer)
        assert state.status == "active" and state.exit_reason is None
    for peer, contact in ((e_grace, grace), (e_linus, linus)):
        result = await world.result(peer)
        assert result.exit_reason == "finished" and result.steps_completed == 3
        assert len(world.sent_to(contact)) == 3
    assert len(world.sent_to(ada)) == 1


async def test_a_bounce_does_not_unenroll_the_company(world):
    """Only a reply or a booked meeting speaks for the company; a bounce or an opt-out is
    about one address."""
    world.apply(SEQ.format(id="outreach", option="true"))
    ada, grace, _ = world.contacts
    e_ada, e_grace = await _enroll_all(world, "outreach", [ada, grace])
    await world.sequences.report(e_ada.enrollment_id, ExitReason.BOUNCED)
    assert (await world.result(e_ada)).exit_reason == "bounced"
    result = await world.result(e_grace)
    assert result.exit_reason == "finished"
