"""The dashboard (DESIGN §7): server-rendered pages under `/web/` over the API's context.

Pages read through the functions the API routes call; writes go through a signed session
and a CSRF token (`handlers.web.base`). What a page cannot show is an HTML page too: a 404
with a way back, a 403 for a cross-site form, the sign-in page for a write without a session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from handlers.context import ApiContext
from handlers.errors import ApiError
from handlers.web import about, backload_page, login, overview, task_pages, workflow_page
from handlers.web.base import LoginRequired, PageError, Web, WebState
from handlers.web.render import STATIC, environment
from handlers.web.session import Sessions

ROUTERS = (
    login.router,
    overview.router,
    workflow_page.router,
    task_pages.router,
    backload_page.router,
    about.router,
)


def install(app: FastAPI, ctx: ApiContext) -> None:
    """Add the pages, their static files and their error pages to the API's app."""
    sessions = Sessions(ctx.admin_token) if ctx.admin_token else None
    app.state.web = WebState(environment(), sessions)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/web/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/", _to_dashboard, include_in_schema=False)
    app.add_api_route("/web", _to_dashboard, include_in_schema=False)
    _error_pages(app)


def _to_dashboard() -> RedirectResponse:
    return RedirectResponse("/web/", 307)


def _error_pages(app: FastAPI) -> None:
    """Errors of `/web/` requests as pages; the API's keep their JSON (its handlers)."""
    api_handlers = dict(app.exception_handlers)

    def dispatch(kind: type[Exception]) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handle(request: Request, err: Exception) -> Response:
            if request.url.path.startswith("/web"):
                status, message = _status_of(err)
                return _error_page(request, PageError(status, message))
            return await api_handlers[kind](request, err)

        return handle

    for kind in (HTTPException, ApiError, RequestValidationError):
        app.add_exception_handler(kind, dispatch(kind))

    @app.exception_handler(PageError)
    async def page_error(request: Request, err: PageError) -> Response:
        return _error_page(request, err)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, err: LoginRequired) -> Response:
        why = "expired" if err.expired else "required"
        query = urlencode({"next": err.next_path, "why": why})
        return RedirectResponse(f"/web/login?{query}", 303)


def _status_of(err: Exception) -> tuple[int, str]:
    match err:
        case ApiError():
            return err.status, err.message
        case HTTPException(status_code=404):
            return 404, "There is no such page."
        case HTTPException():
            return err.status_code, str(err.detail)
    return 400, "The request does not read: check the address."


def _error_page(request: Request, err: PageError) -> Response:
    return Web(request).page("error.html", status=err.status, error=err)
