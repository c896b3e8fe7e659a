"""The API's frame, through a real server: health, readiness, the error shape, the body limit,
and the token rules of writes."""

from __future__ import annotations

import logging
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cache import SQLiteCache
from flowlord.config import RunConfig
from handlers.auth import WRITES_DISABLED, check_token
from handlers.errors import ApiError
from handlers.service import ApiService
from tests.api.client import TOKEN, Api
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


MB = 1024 * 1024


def test_a_body_over_one_megabyte_is_refused_before_any_route(api: Api) -> None:
    reply = api.request("POST", "/healthz", body=b"x" * (MB + 1))
    assert reply.status == 413 and reply.error() == {
        "error": "the body is over 1 MB",
        "field": "body",
    }
    assert api.request("POST", "/healthz", body=b"x" * MB).status == 405  # at the limit: routed


def test_a_streamed_body_without_length_is_cut_at_one_megabyte(api: Api) -> None:
    chunk = b"y" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(17)) + b"0\r\n\r\n"
    head = b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    with socket.create_connection((api.host, api.port), timeout=10) as raw:
        raw.sendall(head + body)  # 1.06 MB: the part the server never reads fits in buffers
        answer = raw.makefile("rb").readline()
    assert answer.split()[1] == b"413"


def test_a_bad_content_length_is_refused(api: Api) -> None:
    reply = api.request("POST", "/healthz", body=b"{}", headers={"Content-Length": "2" * 40})
    assert reply.status in (400, 413)


def test_every_write_attempt_is_audited_with_its_outcome(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="flowlord.audit"):
        api.request("POST", "/healthz", body=b"x" * (MB + 1), token=None)
        api.request("DELETE", "/readyz")
        api.get("/healthz")
    lines = [r.getMessage() for r in caplog.records if r.name == "flowlord.audit"]
    assert len(lines) == 2, lines  # reads are not audited
    assert lines[0].startswith("write POST /healthz from 127.0.0.1 without a token: refused 413")
    assert lines[1].startswith("write DELETE /readyz from 127.0.0.1 with a token: refused 405")


@pytest.mark.parametrize(
    ("configured", "header", "status", "message"),
    [
        ("", f"Bearer {TOKEN}", 403, WRITES_DISABLED),
        (TOKEN, None, 401, "an admin token is required"),
        (TOKEN, "", 401, "an admin token is required"),
        (TOKEN, TOKEN, 401, "must be: Bearer <token>"),
        (TOKEN, "Basic abc", 401, "must be: Bearer <token>"),
        (TOKEN, "Bearer ", 401, "must be: Bearer <token>"),
        (TOKEN, "Bearer wrong", 403, "wrong admin token"),
        (TOKEN, f"Bearer {TOKEN}x", 403, "wrong admin token"),
        (TOKEN, "Bearer tøken", 403, "wrong admin token"),
    ],
)
def test_token_rules(configured: str, header: str | None, status: int, message: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_token(configured, header)
    assert (refused.value.status, message in refused.value.message) == (status, True)


def test_the_right_token_passes() -> None:
    check_token(TOKEN, f"Bearer {TOKEN}")
    check_token(TOKEN, f"bearer  {TOKEN} ")


def test_a_refresh_of_a_deleted_folder_reports_it_and_removes_nothing(
    api: Api, served: Served
) -> None:
    before = api.get("/api/workflows").json
    shutil.rmtree(served.folder)
    reply = api.post("/api/refresh")
    assert reply.status == 200, reply.text
    assert reply.json["changed"] == [] and "does not exist" in reply.json["errors"]["."]
    assert api.get("/api/workflows").json == before


def test_a_service_stopped_before_it_started_never_serves(tmp_path: Path) -> None:
    folder = tmp_path / "wf"
    folder.mkdir()
    config = RunConfig(workflows=str(folder), db=str(tmp_path / "db"), port=0)
    cache = SQLiteCache(folder, tmp_path / "db")
    try:
        service = ApiService(config, cache, now=lambda: datetime.now(UTC))
        port = Api(service.url).port
        service.stop()
        assert not service.start().serving(0.5)  # a start after the stop does nothing
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        cache.close()


def test_start_is_idempotent(served: Served) -> None:
    assert served.service.start().start().serving(5)
    assert served.api.get("/healthz").status == 200
