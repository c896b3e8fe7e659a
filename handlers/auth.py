"""Who may write: the bearer of the admin token (DESIGN §6).

No token configured: every write is refused (403), so a fresh install is read-only. A missing
token is a 401, a wrong one a 403, compared in constant time. The audit of every attempt is
the middleware's (`handlers.middleware`): it sees the outcome, whatever refused the request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from handlers.context import ApiContext, context
from handlers.errors import ApiError

WRITES_DISABLED = "writes are disabled: no admin token is configured"


def check_token(configured: str, authorization: str | None) -> None:
    """Raise the `ApiError` a request with this `Authorization` header gets, if any."""
    if not configured:
        raise ApiError(403, WRITES_DISABLED)
    scheme, _, given = (authorization or "").partition(" ")
    if not authorization:
        raise ApiError(401, "an admin token is required: Authorization: Bearer <token>")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(401, "the Authorization header must be: Bearer <token>")
    if not hmac.compare_digest(given.strip().encode(), configured.encode()):
        raise ApiError(403, "wrong admin token")


def admin(request: Request) -> str:
    """A FastAPI dependency of every write: checks the token, returns who acts (for the
    task and control audit: `api@<client address>`)."""
    ctx: ApiContext = context(request)
    check_token(ctx.admin_token, request.headers.get("authorization"))
    client = request.client.host if request.client else "unknown"
    return f"api@{client}"


Admin = Annotated[str, Depends(admin)]
"""A write route's parameter `actor: Admin` checks the token and names who acts."""
