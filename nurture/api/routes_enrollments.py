"""Sequence enrollments and tasks."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from nurture.api.deps import idempotent, state
from nurture.contracts.sequence import ExitReason
from nurture.store.models import Enrollment, Task

router = APIRouter()


class SequenceEnroll(BaseModel):
    contact: str = Field(description="Contact ID or email")
    sender: str = Field(description="Sending user: ID or email")
    start_step: int = Field(default=1, ge=1, description="1 = the first step")


class Unenroll(BaseModel):
    reason: str = "unenrolled by hand"


class ContactEvent(BaseModel):
    event: Literal["replied", "meeting_booked", "bounced", "unsubscribed"]
    detail: str = ""


@router.post("/sequences/{sequence_id}/enrollments", tags=["enrollments"], status_code=201,
             summary="Enroll a contact; 409 with a reason if refused (already enrolled, unsubscribed, ...)")
async def enroll(sequence_id: str, body: SequenceEnroll, request: Request) -> Any:
    async def action() -> Any:
        seq = await state(request).sequences()
        return await seq.enroll(sequence_id, contact=body.contact, sender=body.sender, start_step=body.start_step)

    return await idempotent(request, {"sequence": sequence_id, **body.model_dump()}, action, 201)


@router.get("/enrollments", tags=["enrollments"], response_model=list[Enrollment])
async def list_enrollments(
    request: Request, record_id: str | None = None, definition_id: str | None = None, status: str | None = None,
) -> Any:
    return await run_in_threadpool(
        state(request).store.list_enrollments, record_id=record_id, definition_id=definition_id,
        statuses=[status] if status else None,
    )


@router.get("/enrollments/{enrollment_id}", tags=["enrollments"], summary="Index row plus the live status query")
async def get_enrollment(enrollment_id: str, request: Request) -> Any:
    seq = await state(request).sequences()
    return await seq.status(enrollment_id)


@router.post("/enrollments/{enrollment_id}/unenroll", tags=["enrollments"], response_model=Enrollment)
async def unenroll(enrollment_id: str, body: Unenroll, request: Request) -> Any:
    return await (await state(request).sequences()).unenroll(enrollment_id, reason=body.reason)


@router.post("/enrollments/{enrollment_id}/pause", tags=["enrollments"], response_model=Enrollment)
async def pause(enrollment_id: str, request: Request) -> Any:
    return await (await state(request).sequences()).pause(enrollment_id)


@router.post("/enrollments/{enrollment_id}/resume", tags=["enrollments"], response_model=Enrollment)
async def resume(enrollment_id: str, request: Request) -> Any:
    return await (await state(request).sequences()).resume(enrollment_id)


@router.post("/enrollments/{enrollment_id}/events", tags=["enrollments"], response_model=Enrollment,
             summary="Report a reply, meeting, bounce or unsubscribe")
async def report(enrollment_id: str, body: ContactEvent, request: Request) -> Any:
    return await (await state(request).sequences()).report(enrollment_id, ExitReason(body.event), body.detail)


@router.get("/tasks", tags=["tasks"], response_model=list[Task])
async def list_tasks(request: Request, assignee_id: str | None = None, status: str | None = "open", enrollment_id: str | None = None) -> Any:
    return await run_in_threadpool(
        state(request).store.list_tasks, assignee_id=assignee_id, status=status, enrollment_id=enrollment_id,
    )


@router.post("/tasks/{task_id}/complete", tags=["tasks"], response_model=Task)
async def complete_task(task_id: str, request: Request) -> Any:
    return await (await state(request).sequences()).complete_task(task_id)
