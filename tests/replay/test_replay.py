"""Replay the recorded enrollment histories (``record_histories.py``) against today's workflow
code: a change that would break running enrollments fails here — make it behind
``workflow.patched(...)`` instead. Histories must also never hold an email address."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from nurture.contracts.sequence import WORKFLOW_NAME
from tests.sequences.conftest import readable_history
from workflows.sequence_enrollment import SequenceEnrollmentWorkflow

HISTORIES = Path(__file__).parent / "histories"
FILES = sorted(HISTORIES.glob("*.json"))
EXPECTED = {"task_wait", "pause_resume_review", "reply_exit", "company_replied", "deferred", "early_pause_unenroll",
            "inbox_disconnected"}


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())


def test_the_recorded_histories_are_there():
    assert EXPECTED <= {p.stem for p in FILES}, "run `python -m tests.replay.record_histories`"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_history_replays(path: Path):
    text = path.read_text()
    assert "@globex.test" not in readable_history(text), "a history holds a contact's email address"
    replayer = Replayer(workflows=[SequenceEnrollmentWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(load(path))
    assert result.replay_failure is None


@workflow.defn(name=WORKFLOW_NAME)
class _ChangedWorkflow:
    """The same workflow type with a changed first command: what an incompatible edit looks like."""

    @workflow.init
    def __init__(self, inp: object) -> None:
        pass

    @workflow.run
    async def run(self, inp: object) -> None:
        await workflow.sleep(timedelta(minutes=1))


async def test_replay_catches_an_incompatible_change():
    """The replay test can fail: a workflow whose commands differ from the history is refused."""
    # Unsandboxed: the sandbox would re-import this test module (and pytest with it).
    replayer = Replayer(workflows=[_ChangedWorkflow], data_converter=pydantic_data_converter,
                        workflow_runner=UnsandboxedWorkflowRunner())
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(load(HISTORIES / "task_wait.json"))
