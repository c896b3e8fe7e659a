"""Signing in with the admin token, and out (DESIGN §7).

The sign-in form has its own CSRF token, double-submitted (a cookie and a field), since no
session exists yet. A right token sets the session cookie: signed, HttpOnly (no script reads
it), SameSite=Strict (no other site's request carries it), Secure when served over HTTPS.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from handlers.web.base import Page, PageError, Web, local_path, refuse_other_sites
from handlers.web.session import (
    COOKIE,
    LOGIN_COOKIE,
    csrf_matches,
    name_problem,
    new_login_token,
)

audit_log = logging.getLogger("flowlord.audit")
router = APIRouter(include_in_schema=False)

WHY = {
    "expired": "Your session has expired. Sign in again to make that change.",
    "required": "Sign in with the admin token to make changes.",
}


@router.get("/web/login")
def login_form(page: Page, next: str = "/web/", why: str = "") -> HTMLResponse:
    """The sign-in form (or, with no admin token configured, why there is none)."""
    return _form(page, next=local_path(next), notice=WHY.get(why, ""))


@router.post("/web/login")
async def login(request: Request) -> Response:
    """Check the form's CSRF token and the admin token; on success set the session cookie
    and go where the user was going."""
    page = Web(request)
    refuse_other_sites(request)
    form = await request.form(max_files=0, max_fields=10)
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    next_path = local_path(fields.get("next", ""))
    sessions = page.state.sessions
    if sessions is None:
        raise PageError(403, "Writes are disabled: no admin token is configured.")
    if not csrf_matches(request.cookies.get(LOGIN_COOKIE, ""), fields.get("csrf")):
        return _form(page, next=next_path, status=403,
                     errors={"token": "The form expired. Enter the token again."})  # fmt: skip
    name = fields.get("name", "").strip()
    if problem := name_problem(name):
        return _form(page, next=next_path, status=422, name=name, errors={"name": problem})
    if not sessions.token_matches(fields.get("token", "")):
        audit_log.info("web sign-in from %s refused: wrong token", page.client)
        return _form(page, next=next_path, status=403, name=name,
                     errors={"token": "That is not the admin token."})  # fmt: skip
    cookie, session = sessions.issue(name=name, now=page.clock.now)
    audit_log.info("web sign-in from %s as %s", page.client, session.actor(page.client))
    response = RedirectResponse(next_path, 303)
    response.set_cookie(COOKIE, cookie, max_age=int(sessions.lifetime.total_seconds()),
                        path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")  # fmt: skip
    response.delete_cookie(LOGIN_COOKIE, path="/web/login")
    return response


@router.post("/web/logout")
async def logout(request: Request) -> Response:
    """End this browser's session (its cookie is dropped; it is not valid anywhere else)."""
    refuse_other_sites(request)
    response = RedirectResponse("/web/login?why=", 303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _form(page: Web, *, next: str, status: int = 200, notice: str = "", name: str = "",
          errors: dict[str, str] | None = None) -> HTMLResponse:  # fmt: skip
    token = new_login_token()
    response = page.page("login.html", status=status, next=next, notice=notice, name=name,
                         login_csrf=token, errors=errors or {})  # fmt: skip
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/web/login", httponly=True,
                        samesite="strict", secure=page.request.url.scheme == "https")  # fmt: skip
    return response
