"""The OpenAPI document is generated from the code: it lists every route of DESIGN §6, and a
property-based test (schemathesis) sends generated requests to every operation of a real
server. No request may get a 5xx, and every response must match the document."""

from __future__ import annotations

import traceback
from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from fastapi import APIRouter, FastAPI
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from handlers.app import create_app, openapi_document
from handlers.errors import ERROR_RESPONSES
from handlers.server import ApiServer
from handlers.sockets import listen
from tests.api.client import TOKEN, Api
from tests.api.conftest import Served, serve

CHECKS = [
    not_a_server_error, response_schema_conformance, status_code_conformance,
    content_type_conformance,
]  # fmt: skip
STREAMS = {"/api/events"}
"""Endless responses: a generated request would wait for ever (tested on their own)."""


DOCUMENT = openapi_document()
schemathesis.serializer.alias("application/toml", "text/plain")  # uploads: TOML is text
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path=sorted(STREAMS))


@pytest.fixture(scope="module")
def property_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("api-properties"))


@schema.parametrize()
@hypothesis.settings(
    max_examples=40, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)  # fmt: skip
def test_no_request_gets_a_5xx_and_every_response_matches_the_document(
    case: schemathesis.Case, property_server: Served
) -> None:
    case.call_and_validate(
        base_url=property_server.api.url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=CHECKS,
    )


def test_the_server_serves_the_generated_document(api: Api) -> None:
    assert api.get("/openapi.json").json == DOCUMENT


DESIGN_ROUTES = {
    ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"),
    ("get", "/api/workflows"), ("get", "/api/workflows/{file}"),
    ("put", "/api/workflows/{file}"), ("delete", "/api/workflows/{file}"),
    ("get", "/api/workflows/{file}/versions"), ("get", "/api/workflows/{file}/versions/{hash}"),
    ("get", "/api/workflows/{file}/diff"), ("post", "/api/workflows/{file}/restore"),
    ("get", "/api/phases"), ("get", "/api/phase"), ("get", "/api/schedule"),
    ("get", "/api/tasks"), ("get", "/api/tasks/{rec}"), ("get", "/api/runs/{id}"),
    ("post", "/api/tasks/{rec}/retry"), ("post", "/api/tasks/{rec}/cancel"),
    ("get", "/api/alerts"), ("get", "/api/controls"), ("get", "/api/controls/events"),
    ("put", "/api/controls/{file}"), ("get", "/api/held"), ("post", "/api/refresh"),
    ("post", "/api/backload"), ("get", "/api/events"),
}  # fmt: skip
"""The table of DESIGN §6, as (method, path)."""


def test_the_document_lists_every_route_of_the_design(api: Api) -> None:
    document = api.get("/openapi.json").json
    listed = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert listed >= DESIGN_ROUTES, sorted(DESIGN_ROUTES - listed)


def test_every_operation_documents_its_errors_and_writes_their_token(api: Api) -> None:
    document = api.get("/openapi.json").json
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary") and operation.get("description"), where
            if path.startswith("/api/") and path not in STREAMS:
                assert "422" in operation["responses"] or "400" in operation["responses"], where
            if method in ("put", "delete") or (method == "post" and path != "/api/backload"):
                assert {"401", "403"} <= set(operation["responses"]), where


def test_the_docs_page_is_served(api: Api) -> None:
    page = api.get("/docs")
    assert page.status == 200 and "/openapi.json" in page.text


def test_schemathesis_finds_a_5xx_when_there_is_one(served: Served) -> None:
    """The property test can fail: a route that breaks on some input is caught."""
    broken = APIRouter()

    @broken.get("/api/broken", responses=ERROR_RESPONSES)
    def crash(n: int) -> dict[str, int]:
        """Fails for a negative number, as a bug would."""
        return {"n": 10 // (n if n >= 0 else 0)}

    app = FastAPI()
    app.include_router(broken)
    operation = schemathesis.openapi.from_dict(app.openapi())["/api/broken"]["GET"]
    with_bug = create_app(served.service.context)
    with_bug.include_router(broken)
    server = ApiServer(with_bug, listen("127.0.0.1", 0)).start()

    @hypothesis.given(case=operation.as_strategy())
    @hypothesis.settings(max_examples=200, deadline=None, database=None)
    def probe(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=server.url, checks=[not_a_server_error])

    try:
        with pytest.raises(BaseException) as caught:
            probe()
    finally:
        server.stop()
    assert "Server error" in "".join(traceback.format_exception(caught.value))
