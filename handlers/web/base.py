"""What every dashboard route starts from: the request's `Web` (the API's context, the signed-in
session if any, the templates), and for a form, the checks every write passes in order:
same site (else 403), signed in (else the sign-in page), the session's CSRF token (else 403).

Route functions raise `PageError` for what the user cannot have (a 404 with a way back) and
`LoginRequired` for a write without a session; `handlers.web.install` turns both into pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request
from jinja2 import Environment
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse

from handlers.context import ApiContext, context
from handlers.web.render import Clock, html
from handlers.web.session import COOKIE, Session, Sessions, csrf_matches

MAX_FIELDS = 200


@dataclass(frozen=True, slots=True)
class WebState:
    """Per app: the templates, and the session signer (None when no admin token is set:
    then nobody signs in and the dashboard is read-only)."""

    env: Environment
    sessions: Sessions | None


class PageError(Exception):
    """A page the user cannot have: its status, what went wrong, and where to go instead."""

    def __init__(self, status: int, message: str, *, back: str = "/web/",
                 back_label: str = "Back to the overview") -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.back, self.back_label = status, message, back, back_label


class LoginRequired(Exception):
    """A write without a valid session: the sign-in page, then back to `next`."""

    def __init__(self, next_path: str, *, expired: bool) -> None:
        super().__init__(next_path)
        self.next_path, self.expired = next_path, expired


class Web:
    """One dashboard request."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.ctx: ApiContext = context(request)
        self.state: WebState = request.app.state.web
        self.clock = Clock(self.ctx.zone, self.ctx.now())
        cookie = request.cookies.get(COOKIE)
        sessions = self.state.sessions
        self.session: Session | None = (
            sessions.read(cookie, now=self.clock.now) if sessions and cookie else None
        )
        self.had_cookie = cookie is not None

    @property
    def client(self) -> str:
        return self.request.client.host if self.request.client else "unknown"

    @property
    def actor(self) -> str:
        """Who a write from this request acts as (a write has a session)."""
        return self.session.actor(self.client) if self.session else f"web@{self.client}"

    def page(self, template: str, *, status: int = 200, **values: object) -> HTMLResponse:
        """`template` with `values` and what every page shows (session, role, clock)."""
        common = {
            "web": self, "clock": self.clock, "session": self.session,
            "writes": self.state.sessions is not None, "role": self.ctx.liveness.role,
            "csrf": self.session.csrf if self.session else "",
            "path": self.request.url.path, "notice": "", "errors": {},
        }  # fmt: skip
        return html(self.state.env, template, {**common, **values}, status)

    def done(self, path: str, notice: str) -> RedirectResponse:
        """After a write: back to a page (GET), which says what was done."""
        return RedirectResponse(f"{path}?{urlencode({'done': notice})}", 303)


async def web(request: Request) -> Web:
    return Web(request)


@dataclass(frozen=True, slots=True)
class Posted:
    """A form that passed the write checks: the request's `Web` and the fields."""

    web: Web
    form: FormData

    def text(self, name: str) -> str:
        """A text field, "" when absent (a file upload is no text: "")."""
        value = self.form.get(name)
        return value if isinstance(value, str) else ""


async def posted(request: Request) -> Posted:
    """The write checks, in order; the form is read once they allow it to matter."""
    page = Web(request)
    refuse_other_sites(request)
    form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    if page.state.sessions is None:
        raise PageError(403, "Writes are disabled: no admin token is configured.")
    if page.session is None:
        back = local_path(str(form.get("back") or ""))
        raise LoginRequired(back, expired=page.had_cookie)
    if not csrf_matches(page.session.csrf, _text(form.get("csrf"))):
        raise PageError(403, "The form's CSRF token is missing or stale. Reload the page "
                        "and try again.")  # fmt: skip
    return Posted(page, form)


def refuse_other_sites(request: Request) -> None:
    """The first check of every form, signing in included: a 403 page for another site's."""
    if not same_site(request):
        raise PageError(403, "This form was sent from another site, so it was refused.")


def same_site(request: Request) -> bool:
    """False when the browser says the request comes from another site: `Sec-Fetch-Site`,
    else an `Origin` that is not this server's (a client sending neither is no browser)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin == f"{request.url.scheme}://{host}"


def local_path(text: str, default: str = "/web/") -> str:
    """`text` if it is a path of this dashboard (no scheme, host or `//`), else `default`: a
    redirect after sign-in must never leave the site."""
    parts = urlsplit(text)
    safe = (
        text.startswith("/web/") and not parts.scheme and not parts.netloc
        and "\\" not in text and text.isprintable() and len(text) <= 2000
    )  # fmt: skip
    return text if safe else default


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


Page = Annotated[Web, Depends(web)]
"""A page route's parameter `page: Page`."""
Form = Annotated[Posted, Depends(posted)]
"""A write route's parameter `post: Form`: checked as `posted` says."""
