"""FastAPI application: records, lists, definitions, sequence enrollments, tasks, opt-out links.

OpenAPI at /openapi.json, docs at /docs. Every route but /healthz and the contact-facing
unsubscribe link needs a bearer token. Write routes honour an ``Idempotency-Key`` header.
Errors are JSON ``{"error": {"code", "message", "details"}}``, never a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from nurture.api.auth import api_tokens, require_token
from nurture.errors import NurtureError
from nurture.settings import Settings, get_settings
from nurture.store import Store

log = logging.getLogger("nurture.api")


class ApiState:
    def __init__(self, settings: Settings, store: Store, client: Any = None) -> None:
        self.settings = settings
        self.store = store
        self._client = client
        self._lock = asyncio.Lock()

    async def client(self):  # type: ignore[no-untyped-def]
        # Connected on first use, so the API can answer store routes while Temporal restarts.
        async with self._lock:
            if self._client is None:
                from starters.connect import connect_temporal

                self._client = await connect_temporal(self.settings)
            return self._client

    async def sequences(self):  # type: ignore[no-untyped-def]
        from starters.sequences import Sequences

        return Sequences(client=await self.client(), store=self.store, settings=self.settings)


def _error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message, "details": details}})


def create_app(settings: Settings | None = None, store: Store | None = None, client: Any = None) -> FastAPI:
    """The API app. ``store`` and ``client`` (a Temporal client) are made from settings unless given."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        own_store = store is None
        app.state.nurture = ApiState(settings, store or Store.open(settings.resolved_database_url), client)
        app.state.tokens = api_tokens(settings)
        yield
        if own_store:
            app.state.nurture.store.close()

    app = FastAPI(
        title="Nurture API",
        version="0.1.0",
        description="Sales sequences and marketing workflows as durable Temporal workflows.",
        lifespan=lifespan,
    )

    @app.exception_handler(NurtureError)
    async def _nurture_error(_: Request, exc: NurtureError) -> JSONResponse:
        return _error(exc.status_code, getattr(exc, "reason", None) or exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()
        ]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return _error(422, "invalid_input", f"invalid request: {summary}", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _error(exc.status_code, "http_error", str(exc.detail))
        for k, v in (exc.headers or {}).items():
            response.headers[k] = v
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, "internal", "internal error; see the API log for details")

    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    from nurture.api import routes_definitions, routes_enrollments, routes_records, routes_unsubscribe, routes_webhooks

    auth = [Depends(require_token)]
    app.include_router(routes_records.router, dependencies=auth)
    app.include_router(routes_definitions.router, dependencies=auth)
    app.include_router(routes_enrollments.router, dependencies=auth)
    app.include_router(routes_unsubscribe.router)
    app.include_router(routes_webhooks.router)  # authenticated by its signature, not a token
    return app
