"""Errors of the HTTP API: one JSON shape, `{"error": message, "field": name}`, and a 4xx for
whatever the client sent (DESIGN §6). Routes raise `ApiError`; FastAPI's own errors (a
parameter of the wrong type, an unknown path, a body that is not JSON) are translated here."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

log = logging.getLogger("flowlord.api")


class ErrorBody(BaseModel):
    """Every error response: what is wrong, and the field at fault when one is."""

    error: str
    field: str | None = None


class ApiError(Exception):
    """A request the API refuses: the status (4xx), the message, the field at fault."""

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def not_found(what: str, *, field: str | None = None) -> ApiError:
    return ApiError(404, f"{what} not found", field=field)


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "description": meaning}
    for status, meaning in (
        (400, "bad request: the field named is malformed"),
        (404, "not found"),
        (413, "the body is over 1 MB"),
        (422, "a parameter or body field is invalid"),
    )
}
"""Error statuses every route may answer, for the OpenAPI document."""

WRITE_RESPONSES: dict[int | str, dict[str, object]] = {
    **ERROR_RESPONSES,
    401: {"model": ErrorBody, "description": "no bearer token given"},
    403: {"model": ErrorBody, "description": "wrong token, or writes are disabled"},
}
"""Error statuses of a write (admin token), for the OpenAPI document."""


def error_response(
    status: int, message: str, field: str | None = None, **headers: str
) -> JSONResponse:
    """The API's error body with `status`."""
    body = ErrorBody(error=message, field=field).model_dump(exclude_none=True)
    return JSONResponse(body, status, headers or None)


def install(app: FastAPI) -> None:
    """Translate every error a request can cause into the API's JSON shape."""

    @app.exception_handler(ApiError)
    async def refused(_: Request, err: ApiError) -> JSONResponse:
        return error_response(err.status, err.message, err.field)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return _validation_response(err)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, err: HTTPException) -> JSONResponse:
        message = err.detail if isinstance(err.detail, str) else json.dumps(err.detail)
        return error_response(err.status_code, message.lower(), **(err.headers or {}))

    @app.exception_handler(Exception)
    async def internal(request: Request, err: Exception) -> JSONResponse:
        log.error("%s %s failed: %s: %s", request.method, request.url.path,
                  type(err).__name__, err, exc_info=err)  # fmt: skip
        return error_response(500, f"internal error: {type(err).__name__}")


def _validation_response(err: RequestValidationError) -> JSONResponse:
    """The first problem, naming its field (`limit`, `reason`, `meta.day`); a body that is
    not JSON at all is a 400."""
    first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
    where = [str(part) for part in first.get("loc", ())]
    source = where[0] if where else ""
    field = ".".join(where[1:]) or None
    if first.get("type") == "json_invalid":
        return error_response(400, "the body is not valid JSON", "body")
    if source == "body" and not field and first.get("type") in ("missing", "model_attributes_type"):
        return error_response(422, "a JSON object body is required", "body")
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return error_response(422, f"{field or source}: {message}", field or source or None)
