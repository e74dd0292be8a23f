"""The platform's end-to-end path: a one-step sequence sends one email through the real Gmail
client to the local endpoint, and the enrollment index follows the workflow."""

from __future__ import annotations

from nurture import search_attributes as sa_keys
from nurture.contracts.sequence import SequenceEnrollmentResult
from nurture.ids import sequence_workflow_id

ONE_STEP = """
kind: sequence
id: hello
name: Hello
settings: {eligible_days: every_day}
steps:
  - type: email
    subject: "Hi {{ contact.firstname }}"
    body: "Hello {{ contact.firstname | default('there') }}, {{ sender.name }} here."
"""


async def test_one_step_enrollment_sends_one_email_and_finishes(world, time_env):
    world.apply(ONE_STEP)
    ada = world.contacts[0]
    started = await world.sequences.enroll("hello", contact=ada.email, sender=world.sender.email)

    handle = time_env.client.get_workflow_handle(started.workflow_id, result_type=SequenceEnrollmentResult)
    result = await handle.result()

    assert result.exit_reason == "finished" and result.steps_completed == 1
    sent = world.sent_to(ada)
    assert len(sent) == 1
    assert sent[0].subject == "Hi Ada"
    assert "Hello Ada, Riley Rep here." in (sent[0].text or "")
    assert sent[0].message_id == f"<nurture.{started.enrollment_id}.0@acme.test>"
    row = world.store.get_enrollment(started.enrollment_id)
    assert row.status.value == "finished" and row.exit_reason == "finished" and row.ended_at is not None
    assert started.workflow_id == sequence_workflow_id(ada.id)
    assert ada.email not in started.workflow_id

    desc = await handle.describe()
    attrs = desc.typed_search_attributes
    assert attrs.get(sa_keys.DEFINITION_ID) == "hello"
    assert attrs.get(sa_keys.RECORD_ID) == ada.id
    assert attrs.get(sa_keys.STATUS) == "finished"
    assert attrs.get(sa_keys.EXIT_REASON) == "finished"
    assert "Ada" in (await desc.static_summary() or "")
