"""The API as an input channel of a real `flowlord run`: bad requests of every kind get a 4xx
and never stop the taskmaster; an executed backload is durable before it is answered
(`kill -9` right after the answer loses nothing)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowlord.state import SQLiteTaskStore, TaskFilter
from tests.api.client import Api, free_port
from tests.conftest import write
from tests.processes import flowlord_run, stop, tasks_on, text, wait_until
from workflow.state import Origin, State

pytestmark = pytest.mark.slow

TOKEN = "robustness-admin-token-42"
EXTRACT = """
[[Phase]]
task = "extract"
rule = "cron=0 0 1 1 *"
template = "?day={yyyy}-{mm}-{dd}"
"""
BAD_REQUESTS = [
    ("POST", "/api/backload", b'{"task": "extract", "from": ', {}),
    ("POST", "/api/backload", b'{"task": "extract", "from": "2026-13-45"}', {}),
    ("POST", "/api/backload", b'{"Task": ["extract"], "Meta": 5}', {}),
    ("POST", "/api/backload", b'{"task": "extract", "at": "1-01-01", "by": "hour"}', {}),
    ("POST", "/api/backload", b"x" * (1024 * 1024 + 1), {}),
    ("PUT", "/api/workflows/%2e%2e/outside.toml", b"[[Phase]]", {}),
    ("PUT", "/api/workflows/new.toml", b"\xff\xfe\x00binary", {}),
    ("PUT", "/api/workflows/new.toml", b'[[Phase]]\ntask = "a b"\nrule = "cron=@daily"\n', {}),
    ("PUT", "/api/controls/etl.toml", b'{"enabled": false, "reason": "two\\nlines"}', {}),
    ("PUT", "/api/controls/nope.toml", b'{"enabled": false, "reason": "x"}', {}),
    ("POST", "/api/tasks/1000000000000000000000000000000/retry", b"", {}),
    ("GET", "/api/tasks?since=%00&limit=-1", b"", {}),
    ("GET", "/api/phase?file=%ff.toml&task=x", b"", {}),
    ("POST", "/api/refresh", b"", {"Authorization": "Bearer wrong-token-wrong-token"}),
    ("POST", "/api/refresh", b"", {"Authorization": "Basic eDp5"}),
]


def test_bad_requests_get_4xx_and_never_stop_the_taskmaster(tmp_path: Path) -> None:
    write(tmp_path / "wf", "etl.toml", EXTRACT)
    api = Api(f"http://127.0.0.1:{free_port()}", TOKEN)
    with flowlord_run(tmp_path, "run.log", "--port", str(api.port), "--admin-token",
                      TOKEN) as run:  # fmt: skip
        wait_until(lambda: "API serving" in text(tmp_path, "run.log"), "the API", run)
        for method, path, body, headers in BAD_REQUESTS:
            reply = api.request(method, path, body=body, headers=headers)
            assert 400 <= reply.status < 500, (method, path, reply.status, reply.body[:200])
        with socket.create_connection((api.host, api.port), timeout=10) as raw:
            raw.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")  # a TLS hello, say
            raw.recv(1024)  # answered or closed: either way, not hung
        assert run.poll() is None
        assert api.get("/readyz").json == {"ready": True, "role": "leader"}
        assert (
            not (tmp_path / "outside.toml").exists() and not (tmp_path / "wf" / "new.toml").exists()
        )
        write(tmp_path / "wf", "later.toml", EXTRACT.replace("extract", "later"))
        wait_until(lambda: "scheduled later.toml" in text(tmp_path, "run.log"),
                   "the taskmaster to go on", run)  # fmt: skip
        assert stop(run) == 0
    assert "Traceback" not in text(tmp_path, "run.log")


def test_an_executed_backload_survives_kill_9_right_after_its_answer(tmp_path: Path) -> None:
    write(tmp_path / "wf", "etl.toml", EXTRACT)
    api = Api(f"http://127.0.0.1:{free_port()}", TOKEN)
    request = {"task": "extract", "from": "2026-11-01", "to": "2026-11-03", "execute": True}
    with flowlord_run(
        tmp_path, "run1.log", "--port", str(api.port), "--admin-token", TOKEN, "--lease", "1s"
    ) as run:  # a short lease: the restart after kill -9 waits it out
        wait_until(lambda: "API serving" in text(tmp_path, "run1.log"), "the API", run)
        reply = api.post("/api/backload", request)
        run.kill()  # kill -9 as soon as the answer is in
    assert reply.status == 200, reply.body
    assert len(reply.json["records"]) == 3
    ids = {task["id"] for task in reply.json["tasks"]}
    store = SQLiteTaskStore(tmp_path / "flowlord.db", now=lambda: datetime.now(UTC))
    made = store.tasks(TaskFilter(type="extract"))
    store.close()
    assert {r.id for r in made} == ids and {r.origin for r in made} == {Origin.BACKLOAD}
    with flowlord_run(tmp_path, "run2.log", "--lease", "1s") as again:
        wait_until(lambda: ids <= {t["id"] for t in tasks_on(tmp_path / "bus", "extract")},
                   "every backloaded task sent", again)  # fmt: skip
        assert stop(again) == 0
    store = SQLiteTaskStore(tmp_path / "flowlord.db", now=lambda: datetime.now(UTC))
    assert {r.state for r in store.tasks(TaskFilter(type="extract"))} == {State.SENT}
    store.close()
    infos = sorted(t["info"] for t in tasks_on(tmp_path / "bus", "extract") if t["id"] in ids)
    assert sorted(set(infos)) == ["?day=2026-11-01", "?day=2026-11-02", "?day=2026-11-03"]
