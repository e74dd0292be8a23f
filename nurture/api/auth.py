"""Bearer-token auth. Tokens come from NURTURE_API_TOKENS; the embedded stack, when none is set,
makes one and keeps it in NURTURE_HOME/api-token (the CLI and the demo read it from there)."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nurture.settings import Settings

bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <token>")


def api_tokens(settings: Settings) -> list[str]:
    if settings.api_tokens:
        return list(settings.api_tokens)
    path = settings.home / "api-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return [path.read_text().strip()]


def require_token(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    tokens: list[str] = request.app.state.tokens
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token: send Authorization: Bearer <token>",
                            headers={"WWW-Authenticate": "Bearer"})
    if not any(hmac.compare_digest(creds.credentials, t) for t in tokens):
        raise HTTPException(401, "invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
