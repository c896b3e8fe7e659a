"""A real `flowlord run` with `alert_webhook` set: a failed task's alert reaches the endpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowlord.bus import FileBus
from flowlord.state import SQLiteTaskStore
from tests.conftest import write
from tests.processes import flowlord_run, stop, text, wait_until
from tests.webhooks import endpoint

pytestmark = pytest.mark.slow

WORKFLOW = """
[[Phase]]
task = "load"
rule = "cron=0 0 1 1 *"
template = "?day={yyyy}-{mm}-{dd}"
"""


def test_a_failed_task_alerts_the_webhook(tmp_path: Path) -> None:
    write(tmp_path / "wf", "daily.toml", WORKFLOW)
    (tmp_path / "bus").mkdir()
    done = {"type": "load", "info": "?day=2026-11-20", "id": "r1", "result": "error",
            "msg": "disk full", "meta": "workflow=daily.toml"}  # fmt: skip
    with open(FileBus(tmp_path / "bus").topic_path("done"), "a") as file:
        file.write(json.dumps(done) + "\n")
    with endpoint() as hook:
        (tmp_path / "flowlord.toml").write_text(f'alert_webhook = "{hook.url}"\n')
        with flowlord_run(tmp_path, "run.log") as run:
            wait_until(lambda: "flowlord running" in text(tmp_path, "run.log"), "the start", run)
            [body] = hook.wait_for(1, timeout=10)
            assert stop(run) == 0
    message = str(body["text"])
    assert message.startswith("flowlord alert: failed in daily.toml (load): ")
    assert "disk full" in message
    assert hook.posts[0].headers["Idempotency-Key"] == "1"
    store = SQLiteTaskStore(tmp_path / "flowlord.db", now=lambda: datetime.now(UTC))
    try:
        [alert] = store.alerts()
    finally:
        store.close()
    assert alert.notified is not None  # recorded: a restart does not send it again
