"""Request-scoped helpers: the shared state and idempotent writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from nurture.api.app import ApiState


def state(request: Request) -> ApiState:
    return request.app.state.nurture


async def idempotent(
    request: Request, payload: Any, action: Callable[[], Awaitable[Any]], status_code: int = 200,
) -> JSONResponse:
    """Run ``action`` once per Idempotency-Key: a retried request gets the first response back.
    A key reused for a different request is refused (409)."""
    key = request.headers.get("Idempotency-Key")
    st = state(request)
    route = f"{request.method} {request.url.path}"
    digest = hashlib.sha256(json.dumps(jsonable_encoder(payload), sort_keys=True).encode()).hexdigest()
    if key:
        saved = await run_in_threadpool(st.store.idempotent_response, key, route, digest)
        if saved is not None:
            code, body = saved
            return JSONResponse(status_code=code, content=body, headers={"Idempotent-Replayed": "true"})
    result = jsonable_encoder(await action())
    if key:
        await run_in_threadpool(st.store.save_idempotent_response, key, route, digest, status_code, result)
    return JSONResponse(status_code=status_code, content=result)
