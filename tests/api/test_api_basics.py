"""The API's frame, through a real server: health, readiness, the error shape, the body limit,
and the token rules of writes."""

from __future__ import annotations

from tests.api.client import Api
from tests.api.conftest import Served


def test_health_and_readiness(api: Api, served: Served) -> None:
    assert api.get("/healthz").json == {"status": "ok"}
    assert api.get("/readyz").json == {"ready": True, "role": "leader"}
    served.service.liveness.loaded.clear()
    reply = api.get("/readyz")
    assert reply.status == 503 and reply.json == {"ready": False, "role": "leader"}


def test_unknown_route_and_method_get_json_errors(api: Api) -> None:
    reply = api.get("/api/nothing-here")
    assert reply.status == 404 and reply.error() == {"error": "not found"}
    reply = api.post("/healthz")
    assert reply.status == 405 and "not allowed" in reply.error()["error"]


def test_openapi_document_is_served(api: Api) -> None:
    document = api.get("/openapi.json").json
    assert document["info"]["title"] == "flowlord"
    assert "/healthz" in document["paths"] and "/readyz" in document["paths"]
