"""Definitions: validate, store new versions, read, turn on/off, archive."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from nurture.api.deps import idempotent, state
from nurture.definitions import DefinitionError, definition_body, parse_definition
from nurture.errors import InvalidInput
from nurture.store.models import DefinitionRow, DefinitionStatus, DefinitionVersion

router = APIRouter(tags=["definitions"])


class StatusChange(BaseModel):
    status: Literal["on", "off", "archived"]


def _parse(body: dict[str, Any]) -> Any:
    try:
        return parse_definition(body, "definition")
    except DefinitionError as exc:
        raise InvalidInput("; ".join(exc.problems), details=exc.problems) from None


@router.post("/definitions/validate", summary="Check a definition without saving it")
async def validate(body: dict[str, Any]) -> dict[str, Any]:
    d = _parse(body)
    return {"ok": True, "kind": d.kind, "id": d.id, "steps": len(d.steps)}


@router.post("/definitions", response_model=DefinitionVersion, summary="Store a new version of a definition")
async def apply(body: dict[str, Any], request: Request) -> Any:
    d = _parse(body)
    store = state(request).store
    return await idempotent(request, body, lambda: run_in_threadpool(store.save_definition, d.id, d.kind, d.name, definition_body(d)))


@router.get("/definitions", response_model=list[DefinitionRow])
async def list_definitions(request: Request, include_archived: bool = False) -> Any:
    return await run_in_threadpool(state(request).store.list_definitions, include_archived=include_archived)


@router.get("/definitions/{definition_id}", response_model=DefinitionVersion)
async def show(definition_id: str, request: Request, version: int | None = None) -> Any:
    return await run_in_threadpool(state(request).store.get_definition_version, definition_id, version)


@router.post("/definitions/{definition_id}/status", response_model=DefinitionRow)
async def set_status(definition_id: str, body: StatusChange, request: Request) -> Any:
    return await run_in_threadpool(state(request).store.set_definition_status, definition_id, DefinitionStatus(body.status))
