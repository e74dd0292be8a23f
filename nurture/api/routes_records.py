"""Records, associations, static lists and users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from nurture.api.deps import idempotent, state
from nurture.store.models import Record, RecordType, StaticList, UpsertResult, User

router = APIRouter()


class RecordUpsert(BaseModel):
    properties: dict[str, Any] = Field(description="Properties to set; null removes one")
    id: str | None = Field(default=None, description="Update this record; else match on email/domain or create")
    owner_id: str | None = None
    associate_with: list[str] = Field(default_factory=list, description="Record IDs to associate with")


class ListCreate(BaseModel):
    name: str
    object_type: RecordType = RecordType.CONTACT


class ListMembers(BaseModel):
    record_ids: list[str] = Field(min_length=1)


class UserUpsert(BaseModel):
    email: str
    name: str = ""
    timezone: str | None = None
    country: str | None = None


@router.put("/records/{record_type}", tags=["records"], response_model=UpsertResult,
            summary="Create or update a record; the response lists changed properties (old → new)")
async def upsert_record(record_type: RecordType, body: RecordUpsert, request: Request) -> Any:
    store = state(request).store

    async def action() -> UpsertResult:
        def work() -> UpsertResult:
            result = store.upsert_record(record_type, body.properties, record_id=body.id, owner_id=body.owner_id)
            for other in body.associate_with:
                store.associate(result.record.id, other)
            return result

        return await run_in_threadpool(work)

    return await idempotent(request, {"type": record_type, **body.model_dump()}, action)


@router.get("/records/{record_id}", tags=["records"], response_model=Record)
async def get_record(record_id: str, request: Request) -> Any:
    return await run_in_threadpool(state(request).store.get_record, record_id)


@router.get("/records", tags=["records"], response_model=list[Record])
async def list_records(
    request: Request, type: RecordType | None = None, limit: int = Query(100, ge=1, le=1000), after: str | None = None,
) -> Any:
    return await run_in_threadpool(state(request).store.list_records, type, limit=limit, after=after)


@router.get("/records/{record_id}/associations", tags=["records"], response_model=list[Record])
async def associations(record_id: str, request: Request, type: RecordType | None = None) -> Any:
    return await run_in_threadpool(state(request).store.associated, record_id, type)


@router.get("/lists", tags=["lists"], response_model=list[StaticList])
async def list_lists(request: Request) -> Any:
    return await run_in_threadpool(state(request).store.list_lists)


@router.post("/lists", tags=["lists"], response_model=StaticList, status_code=201)
async def create_list(body: ListCreate, request: Request) -> Any:
    store = state(request).store
    return await idempotent(request, body.model_dump(), lambda: run_in_threadpool(store.create_list, body.name, body.object_type), 201)


@router.get("/lists/{list_id}/members", tags=["lists"], response_model=list[Record])
async def list_members(list_id: str, request: Request, limit: int = Query(1000, ge=1, le=10000), after: str | None = None) -> Any:
    return await run_in_threadpool(state(request).store.list_members, list_id, limit=limit, after=after)


@router.post("/lists/{list_id}/members", tags=["lists"], summary="Add records (all or none)")
async def add_members(list_id: str, body: ListMembers, request: Request) -> Any:
    store = state(request).store

    async def action() -> dict[str, int]:
        return {"added": await run_in_threadpool(store.add_to_list, list_id, body.record_ids)}

    return await idempotent(request, {"list": list_id, **body.model_dump()}, action)


@router.delete("/lists/{list_id}/members", tags=["lists"])
async def remove_members(list_id: str, body: ListMembers, request: Request) -> Any:
    return {"removed": await run_in_threadpool(state(request).store.remove_from_list, list_id, body.record_ids)}


@router.put("/users", tags=["users"], response_model=User)
async def upsert_user(body: UserUpsert, request: Request) -> Any:
    store = state(request).store
    return await idempotent(
        request, body.model_dump(),
        lambda: run_in_threadpool(store.upsert_user, body.email, name=body.name, timezone=body.timezone, country=body.country),
    )


@router.get("/users", tags=["users"], response_model=list[User])
async def list_users(request: Request) -> Any:
    return await run_in_threadpool(state(request).store.list_users)
