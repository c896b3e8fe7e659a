"""The dashboard in a real headless Chromium: each page loads without a script error and is
kept as a screenshot, a click on a switch pauses a workflow, the graph shows every phase, a
broken file shows its error, and a page follows a file save, a toggle made elsewhere and a
task change by itself (the API's server-sent events) in a real `flowlord run`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.api.client import TOKEN, Api, free_port
from tests.api.conftest import Served
from tests.processes import ROOT, flowlord_run, stop, wait_until
from tests.web.browser import artifacts, sign_in
from tests.web.scenery import WORKFLOWS

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

PAGES = (
    ("overview", "/web/", 200, "Workflows"),
    ("workflow-etl", "/web/workflows/etl.toml", 200, "etl.toml"),
    ("workflow-warehouse", "/web/workflows/warehouse.toml", 200, "warehouse.toml"),
    ("workflow-marketing", "/web/workflows/marketing.toml", 200, "marketing.toml"),
    ("workflow-broken", "/web/workflows/broken.toml", 200, "broken.toml"),
    ("tasks", "/web/tasks", 200, "Tasks"),
    ("tasks-failed", "/web/tasks?state=failed", 200, "Tasks"),
    ("task", "/web/tasks/4", 200, "Record 4"),
    ("alerts", "/web/alerts", 200, "Alerts"),
    ("backload", "/web/backload?task=extract&from=2024-05-01&to=2024-05-03&preview=1", 200,
     "Backload"),
    ("about", "/web/about", 200, "About this flowlord"),
    ("login", "/web/login", 200, "Sign in"),
    ("not-found", "/web/workflows/nothing.toml", 404, "404"),
    ("bad-filter", "/web/tasks?since=yesterday", 422, "Tasks"),
)  # fmt: skip


@pytest.mark.parametrize(("name", "path", "status", "heading"), PAGES, ids=[p[0] for p in PAGES])
def test_each_page_loads_and_is_kept_as_a_screenshot(
    served: Served, page: Page, name: str, path: str, status: int, heading: str
) -> None:
    response = page.goto(served.api.url + path)
    assert response is not None and response.status == status
    assert heading in page.inner_text("main h1, main .big-status")
    assert page.locator("header.top nav a").count() == 5
    if page.get_attribute("body", "data-events"):
        page.wait_for_selector("#live-status.on")  # the event stream is open, CSP allowing
    page.screenshot(path=artifacts() / f"{name}.png", full_page=True)


def test_the_overview_shows_each_workflow_as_the_api_does(served: Served, page: Page) -> None:
    page.goto(served.api.url + "/web/")
    workflows = served.api.get("/api/workflows").json["workflows"]
    rows = page.locator("#workflows tbody tr[data-workflow]")
    assert [rows.nth(i).get_attribute("data-workflow") for i in range(rows.count())] == [
        w["file"] for w in workflows
    ]
    marketing = page.locator("tr[data-workflow='marketing.toml']")
    assert marketing.locator("[data-health]").first.inner_text() == "paused"
    assert "campaign freeze until Monday" in marketing.inner_text()
    assert "maria@web" in marketing.inner_text()
    broken = page.locator("tr[data-workflow='broken.toml']")
    assert broken.locator("[data-health]").first.inner_text() == "errors"


def test_a_click_on_the_switch_pauses_a_workflow_and_another_resumes_it(
    served: Served, page: Page
) -> None:
    base = served.api.url
    sign_in(page, base, TOKEN, name="ada")
    row = page.locator("tr[data-workflow='etl.toml']")
    row.locator("input[name=reason]").fill("warehouse maintenance")
    row.locator("button.switch").click()
    page.wait_for_url(f"{base}/web/?done=*")
    assert "Paused etl.toml." in page.inner_text(".notice")
    row = page.locator("tr[data-workflow='etl.toml']")
    assert row.locator("button.switch").get_attribute("aria-checked") == "false"
    assert row.locator("[data-health]").first.inner_text() == "paused"
    [control] = [c for c in served.api.get("/api/controls").json["controls"]
                 if c["workflow"] == "etl.toml"]  # fmt: skip
    assert (control["enabled"], control["reason"], control["updated_by"]) == (
        False, "warehouse maintenance", "ada@web",
    )  # fmt: skip
    row.locator("button.switch").click()
    page.wait_for_url(f"{base}/web/?done=*")
    assert "Resumed etl.toml." in page.inner_text(".notice")
    assert served.store.paused().holds("etl.toml", "extract") is None


def test_a_switch_without_a_reason_is_not_sent(served: Served, page: Page) -> None:
    sign_in(page, served.api.url, TOKEN)
    page.locator("tr[data-workflow='etl.toml'] button.switch").click()
    invalid = page.locator("tr[data-workflow='etl.toml'] input[name=reason]:invalid")
    assert invalid.count() == 1  # the browser asks for the reason; nothing was posted
    assert not [c for c in served.store.controls() if c.workflow == "etl.toml"]


def test_the_graph_shows_every_phase_without_overlap(served: Served, page: Page) -> None:
    page.goto(served.api.url + "/web/workflows/warehouse.toml")
    phases = served.api.get("/api/workflows/warehouse.toml").json["phases"]
    nodes = page.locator("svg.graph g.node[data-task]")
    assert sorted(nodes.nth(i).get_attribute("data-task") for i in range(nodes.count())) == sorted(
        p["task"] for p in phases
    )
    boxes = [nodes.nth(i).locator("rect").first.bounding_box() for i in range(nodes.count())]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a and b
            side_by_side = a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
            stacked = a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"]
            apart = side_by_side or stacked
            assert apart, (a, b)
    page.locator("svg.graph").screenshot(path=artifacts() / "graph-warehouse.png")


def test_the_graph_marks_an_error_phase_and_its_missing_parent(served: Served, page: Page) -> None:
    page.goto(served.api.url + "/web/workflows/marketing.toml")
    assert page.locator("svg.graph g.node.error[data-task='audience']").count() == 1
    assert page.locator("svg.graph g.node.ghost[data-missing='segments']").count() == 1
    row = page.locator("tr[data-phase='audience']")
    assert "segments" in row.inner_text()


def test_a_broken_file_shows_its_error(served: Served, page: Page) -> None:
    page.goto(served.api.url + "/web/workflows/broken.toml")
    error = served.api.get("/api/workflows/broken.toml").json["error"]
    assert error and error in page.inner_text("#file-error")
    assert "line 5" in page.inner_text("#file-error")


# A real `flowlord run`: its watcher, its poller and the browser's event stream.

NEW_FILE = (
    '[[Phase]]\ntask = "fresh"\nrule = "cron=0 4 * * *"\ntemplate = "?day={yyyy}-{mm}-{dd}"\n'
)


@pytest.fixture
def running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Api, subprocess.Popen[bytes]]]:
    shutil.copytree(WORKFLOWS, tmp_path / "wf")
    api = Api(f"http://127.0.0.1:{free_port()}", TOKEN)
    monkeypatch.delenv("FLOWLORD_ADMIN_TOKEN", raising=False)
    (tmp_path / "flowlord.toml").write_text(f'admin_token = "{TOKEN}"\n')
    with flowlord_run(tmp_path, "run.log", "--port", str(api.port)) as process:
        wait_until(api.ready, "the dashboard", process)
        yield tmp_path, api, process
        assert stop(process) == 0


def test_a_page_follows_a_save_a_toggle_and_a_task_by_itself(
    running: tuple[Path, Api, subprocess.Popen[bytes]], page: Page
) -> None:
    home, api, _ = running
    sign_in(page, api.url, TOKEN)
    page.wait_for_selector("#live-status.on")
    latencies: dict[str, float] = {}

    started = time.monotonic()
    (home / "wf" / "fresh.toml").write_text(NEW_FILE)
    page.wait_for_selector("tr[data-workflow='fresh.toml']", timeout=5000)
    latencies["file saved → row shown"] = time.monotonic() - started

    pause = subprocess.run(
        [sys.executable, "-m", "flowlord", "pause", "billing.toml", "--reason", "by the CLI"],
        cwd=home, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
    )  # fmt: skip
    assert pause.returncode == 0, pause.stderr
    started = time.monotonic()  # the pause is committed
    page.wait_for_selector("tr[data-workflow='billing.toml'] [data-health='paused']", timeout=5000)
    latencies["CLI pause committed → badge"] = time.monotonic() - started

    reason = page.locator("tr[data-workflow='etl.toml'] input[name=reason]")
    reason.fill("half typed")  # focused: its part waits for the typing to end
    api.put("/api/controls/warehouse.toml", {"enabled": False, "reason": "by the API"})
    page.locator("h1").click()  # the typing ends: the part is drawn again, the text kept
    page.wait_for_selector("tr[data-workflow='warehouse.toml'] [data-health='paused']")
    assert reason.input_value() == "half typed"

    page.goto(api.url + "/web/tasks")
    page.wait_for_selector("#live-status.on")
    started = time.monotonic()
    backload = {"task": "meter", "at": "2024-05-01T06", "execute": True}
    [rec] = api.post("/api/backload", backload).json["records"]
    page.wait_for_selector(f"tr[data-rec='{rec}']", timeout=5000)
    latencies["task recorded → row shown"] = time.monotonic() - started
    (artifacts().parent / "live-latency.json").write_text(json.dumps(latencies, indent=2))
