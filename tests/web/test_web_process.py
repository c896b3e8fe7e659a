"""The dashboard of a real `flowlord run`: a pause made from a page is committed before its
answer (it survives `kill -9` right after, and the restart holds what it pauses), and bad
requests to pages are 4xx pages while the taskmaster goes on."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowlord.state import SQLiteTaskStore, TaskFilter
from tests.api.client import TOKEN, Api, free_port
from tests.processes import flowlord_run, stop, text, wait_until
from tests.web.conftest import Browser
from tests.web.scenery import WORKFLOWS
from workflow.state import State

pytestmark = pytest.mark.slow

BAD = (
    ("GET", "/web/workflows/../../etc/passwd", 400),
    ("GET", "/web/workflows/nothing.toml", 404),
    ("GET", "/web/tasks/99999999999999999999999", 404),
    ("GET", "/web/tasks?since=%00&state=%FF", 422),
    ("GET", "/web/backload?task=extract&from=2024-05-03&to=2024-05-01&preview=1", 422),
    ("POST", "/web/workflows/etl.toml/switch", 303),  # no session: the sign-in page
    ("POST", "/web/login", 403),  # no sign-in cookie
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(WORKFLOWS, tmp_path / "wf")
    monkeypatch.delenv("FLOWLORD_ADMIN_TOKEN", raising=False)
    (tmp_path / "flowlord.toml").write_text(f'admin_token = "{TOKEN}"\n')
    return tmp_path


@pytest.fixture
def api() -> Api:
    return Api(f"http://127.0.0.1:{free_port()}", TOKEN)


@contextlib.contextmanager
def started(home: Path, api: Api, log: str) -> Iterator[subprocess.Popen[bytes]]:
    with flowlord_run(home, log, "--port", str(api.port)) as process:
        wait_until(api.ready, "the dashboard", process)
        yield process


def test_a_pause_from_a_page_survives_kill_9_right_after_its_answer(home: Path, api: Api) -> None:
    with started(home, api, "first.log") as process:
        browser = Browser(api)
        assert browser.sign_in(name="ops").status == 303
        fields = {"csrf": browser.csrf(), "back": "/web/", "phase": "", "enabled": "false",
                  "reason": "before the kill"}  # fmt: skip
        answer = browser.post("/web/workflows/etl.toml/switch", fields)
        assert answer.status == 303
        process.kill()  # no chance to flush anything after the answer
        process.wait()
    with started(home, api, "second.log") as process:
        [control] = [c for c in api.get("/api/controls").json["controls"]
                     if c["workflow"] == "etl.toml"]  # fmt: skip
        assert (control["enabled"], control["reason"], control["updated_by"]) == (
            False, "before the kill", "ops@web",
        )  # fmt: skip
        backload = {"task": "extract", "at": "2024-05-01", "execute": True}
        [rec] = api.post("/api/backload", backload).json["records"]
        store = SQLiteTaskStore(home / "flowlord.db", now=lambda: datetime.now(UTC))
        try:
            assert store.get(rec).state is State.HELD  # the restart holds what the pause holds
            assert not store.tasks(TaskFilter(workflow="etl.toml", state=State.SENT))
        finally:
            store.close()
        assert stop(process) == 0


def test_bad_requests_to_pages_are_pages_and_the_taskmaster_goes_on(home: Path, api: Api) -> None:
    with started(home, api, "run.log") as process:
        browser = Browser(api)
        for method, path, status in BAD:
            answer = browser.request(method, path)
            assert answer.status == status, (method, path, answer.text[:300])
            if status != 303:
                assert answer.headers["content-type"].startswith("text/html"), answer.headers
        (home / "wf" / "later.toml").write_text(
            '[[Phase]]\ntask = "later"\nrule = "cron=0 5 * * *"\ntemplate = "?d={yyyy}"\n'
        )
        wait_until(lambda: browser.get("/web/workflows/later.toml").status == 200,
                   "the new file's page", process)  # fmt: skip
        assert stop(process) == 0
    assert "Traceback" not in text(home, "run.log")
