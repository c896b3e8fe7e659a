"""The dashboard's pages through a real server (DESIGN §7): each shows the API's data, and bad
input is an HTML page with a way back, never JSON or a 5xx."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.api.conftest import Served
from tests.records import add_record, phase_task
from tests.web.conftest import Browser
from tests.web.pages import api, form, health_of, page, recs
from workflow.state import State

# Reading


@pytest.mark.parametrize(
    ("path", "title"),
    [
        ("/web/", "Overview"),
        ("/web/workflows/etl.toml", "etl.toml"),
        ("/web/workflows/broken.toml", "broken.toml"),
        ("/web/tasks", "Tasks"),
        ("/web/tasks?state=failed&since=24h", "Tasks"),
        ("/web/tasks/4", "Record 4"),
        ("/web/alerts", "Alerts"),
        ("/web/backload", "Backload"),
        ("/web/backload?preview=1&task=extract&from=2024-05-01", "Backload"),
        ("/web/about", "About"),
        ("/web/login", "Sign in"),
    ],
)
def test_every_page_is_html_with_the_page_headers(browser: Browser, path: str, title: str) -> None:
    answer = browser.get(path)

    doc = page(answer)
    assert doc.one("head").one("title").text == f"{title} · flowlord"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/", "/web"])
def test_the_roots_lead_to_the_overview(browser: Browser, path: str) -> None:
    answer = browser.get(path)

    assert (answer.status, answer.location) == (307, "/web/")


def test_the_overview_lists_the_files_of_the_api_with_their_health(
    served: Served, browser: Browser
) -> None:
    files = api(served, "/api/workflows")["workflows"]

    doc = page(browser.get("/web/"))

    rows = {row.attrs["data-workflow"]: row for row in doc.all("tr", data_workflow=None)}
    assert list(rows) == [f["file"] for f in files]
    shown = {key: row.one(data_health=None).attrs["data-health"] for key, row in rows.items()}
    assert shown == {f["file"]: health_of(f) for f in files}
    assert set(shown.values()) == {"ok", "errors", "paused"}
    for f in files:
        assert rows[f["file"]].one("td", class_="num").text == str(f["phases"])
    tiles = {t.attrs["data-tile"]: t.one("b").text for t in doc.all(data_tile=None)}
    assert tiles == {"ok": "3", "warnings": "0", "errors": "1", "paused": "1"}


def test_the_overview_counts_each_files_tasks_as_the_stats_do(
    served: Served, browser: Browser
) -> None:
    stats = api(served, "/api/stats")

    doc = page(browser.get("/web/"))

    counts = {}
    for row in doc.all("tr", data_workflow=None):
        chips = [chip.text.rsplit(" ", 1) for chip in row.all("a", class_="badge")]
        if chips:
            counts[row.attrs["data-workflow"]] = {state: int(n) for state, n in chips}
    assert counts == stats["workflows"]
    assert counts["etl.toml"] == {"complete": 3, "failed": 1, "sent": 1}


def test_the_overview_shows_the_latest_alerts_and_the_pause(
    served: Served, browser: Browser
) -> None:
    alerts = api(served, "/api/alerts")["alerts"]

    doc = page(browser.get("/web/"))

    listed = doc.one("ul", class_="alerts").all("li")
    assert [li.all("div")[0].text for li in listed] == [a["message"] for a in alerts]
    marketing = doc.one("tr", data_workflow="marketing.toml").text
    assert "paused by maria@web" in marketing and "campaign freeze until Monday" in marketing
    assert "1 held" in marketing


@pytest.mark.parametrize("key", ["etl.toml", "billing.toml", "marketing.toml", "warehouse.toml"])
def test_a_workflow_page_lists_the_phases_of_the_api_and_graphs_them(
    served: Served, browser: Browser, key: str
) -> None:
    phases = api(served, f"/api/workflows/{key}")["phases"]

    doc = page(browser.get(f"/web/workflows/{key}"))

    rows = doc.all("tr", data_phase=None)
    assert [row.attrs["data-phase"] for row in rows] == [p["task"] for p in phases]
    graph = doc.one("svg", class_="graph")
    nodes = graph.all("g", data_task=None)
    assert sorted(n.attrs["data-task"] for n in nodes) == sorted(p["task"] for p in phases)
    for row, phase in zip(rows, phases, strict=True):
        assert phase["status"] in row.text
        bad = phase["status"] and not phase["status"].startswith("warning")
        assert (row.attrs["data-health"] == "errors") == bool(bad), (phase, row.attrs)


def test_a_workflow_page_marks_error_phases_in_the_graph(browser: Browser) -> None:
    doc = page(browser.get("/web/workflows/marketing.toml"))

    marked = {
        n.attrs["data-task"] for n in doc.all("g", data_task=None) if "error" in n.attrs["class"]
    }
    assert marked == {"audience"}
    assert doc.one("tr", data_phase="audience").attrs["data-health"] == "errors"
    assert doc.one("tr", data_phase="export").attrs["data-health"] == "warnings"


def test_a_file_that_does_not_parse_shows_its_error(served: Served, browser: Browser) -> None:
    error = api(served, "/api/workflows/broken.toml")["error"]
    assert "TOML" in error

    doc = page(browser.get("/web/workflows/broken.toml"))

    assert error in doc.one(id="file-error").text
    assert doc.one("h1").one(data_health=None).attrs["data-health"] == "errors"
    assert doc.all("tr", data_phase=None) == []


def test_the_tasks_page_lists_the_records_of_the_api_in_order(
    served: Served, browser: Browser
) -> None:
    listed = [t["rec"] for t in api(served, "/api/tasks?limit=50")["tasks"]]

    doc = page(browser.get("/web/tasks"))

    assert recs(doc) == listed == list(range(13, 0, -1))
    row = doc.one("tr", data_rec="4")
    assert "failed" in row.text and "warehouse: connection refused" in row.text


@pytest.mark.parametrize(
    "query",
    [
        "state=failed",
        "workflow=etl.toml",
        "state=complete&workflow=billing.toml",
        "type=transform",
        "job=warehouse",
        "id=run-0003",
        "since=2026-11-21T12:10:00Z",
        "until=2026-11-21T12:10:00Z",
        "since=10m",
        "state=&workflow=warehouse.toml&type=",
    ],
)
def test_the_tasks_filters_match_the_apis(served: Served, browser: Browser, query: str) -> None:
    expected = [t["rec"] for t in api(served, f"/api/tasks?limit=50&{query}")["tasks"]]
    assert 0 < len(expected) < 13

    doc = page(browser.get(f"/web/tasks?{query}"))

    assert recs(doc) == expected
    for name, values in parse_qs(query).items():
        if name == "state":
            assert doc.one("option", selected=None).attrs["value"] == values[0]
        else:
            assert doc.one("input", name=name).attrs["value"] == values[0]


def test_the_tasks_page_pages_as_the_api_does(served: Served, browser: Browser) -> None:
    for n in range(60):
        task = phase_task("etl.toml", "extract", f"page-{n:03d}")
        add_record(served.store, task, workflow="etl.toml", phase="extract", state=State.QUEUED)
    first = api(served, "/api/tasks?limit=50&workflow=etl.toml")
    second = api(served, f"/api/tasks?limit=50&workflow=etl.toml&cursor={first['next_cursor']}")

    doc = page(browser.get("/web/tasks?workflow=etl.toml"))

    assert recs(doc) == [t["rec"] for t in first["tasks"]]
    older = doc.one("a", rel="next").attrs["href"]
    assert parse_qs(urlsplit(older).query) == {
        "cursor": [first["next_cursor"]], "workflow": ["etl.toml"]
    }  # fmt: skip
    doc = page(browser.get(older))
    assert recs(doc) == [t["rec"] for t in second["tasks"]]
    assert len(recs(doc)) == 65 - 50
    assert second["next_cursor"] is None and doc.all("a", rel="next") == []
    assert doc.all("a", href="/web/tasks?workflow=etl.toml")


def test_a_record_page_shows_its_transitions(served: Served, browser: Browser) -> None:
    record = api(served, "/api/tasks/4")

    doc = page(browser.get("/web/tasks/4"))

    assert doc.one(id="record-state").text == record["state"] == "failed"
    moves = doc.one(id="transitions").all("li")
    assert [li.one("span", class_="badge").text for li in moves] == [
        t["to_state"] for t in record["transitions"]
    ]
    assert [li.one("div", class_="why").text.rsplit(" · ", 1)[1] for li in moves] == [
        t["actor"] for t in record["transitions"]
    ]
    assert record["msg"] in doc.one("section", aria_label="record").text


def test_the_alerts_page_shows_the_alerts_of_the_api(served: Served, browser: Browser) -> None:
    alerts = api(served, "/api/alerts")["alerts"]
    failed = api(served, "/api/alerts?kind=failed")["alerts"]

    doc = page(browser.get("/web/alerts"))
    only_failed = page(browser.get("/web/alerts?kind=failed"))

    rows = doc.all("tr", data_alert=None)
    assert [int(r.attrs["data-alert"]) for r in rows] == [a["seq"] for a in alerts] == [2, 1]
    for row, alert in zip(rows, alerts, strict=True):
        assert alert["message"] in row.text and alert["kind"] in row.text
    shown = [int(r.attrs["data-alert"]) for r in only_failed.all("tr", data_alert=None)]
    assert shown == [a["seq"] for a in failed] == [1]


def test_the_about_page_shows_the_role(served: Served, browser: Browser) -> None:
    role = api(served, "/readyz")["role"]

    doc = page(browser.get("/web/about"))

    tiles = {t.one("span").text: t.one("b").text for t in doc.all("div", class_="tile")}
    assert tiles["role"] == role == "leader"
    assert tiles["task records"] == "13"
    assert tiles["workflow files, 1 not loading"] == "5"


def test_text_from_users_is_escaped(served: Served, signed_in: Browser) -> None:
    reason = '<script>alert("x")</script>'
    fields = form(signed_in.get("/web/").doc, "/web/workflows/etl.toml/switch")
    assert (
        signed_in.post("/web/workflows/etl.toml/switch", {**fields, "reason": reason}).status == 303
    )

    doc = page(signed_in.get("/web/"))
    filtered = signed_in.get(f"/web/tasks?{urlencode({'since': reason})}")

    assert [s.attrs.get("src") for s in doc.all("script")] == ["/web/static/live.js"]
    assert reason in doc.one("tr", data_workflow="etl.toml").text
    assert [s.attrs.get("src") for s in page(filtered, 422).all("script")] == [
        "/web/static/live.js"
    ]
    assert filtered.doc.one("input", name="since").attrs["value"] == reason


# Bad input


@pytest.mark.parametrize(
    "path",
    [
        "/web/workflows/nope.toml",
        "/web/workflows/sub/nope.toml",
        "/web/workflows/etl.toml?diff=0123abc",
        "/web/tasks/999",
        "/web/tasks/0",
        "/web/tasks/abc",
        "/web/tasks/-1",
        "/web/tasks/1.5",
        "/web/tasks/99999999999999999999999",
        "/web/tasks/9223372036854775808",
        "/web/tasks/%C2%B2",
        "/web/nothing",
        "/web/tasks/4/nothing",
        "/web/static/nothing.css",
    ],
)
def test_what_is_not_there_is_a_404_page_with_a_way_back(browser: Browser, path: str) -> None:
    answer = browser.get(path)

    page(answer, 404)
    card = answer.error_page()
    assert card.one("p", class_="big-status").text == "404"
    assert card.one("a", class_="button").attrs["href"].startswith("/web/")


@pytest.mark.parametrize(
    "path",
    ["/web/workflows/../etl.toml", "/web/workflows/%2E%2E/etl.toml", "/web/workflows/.x.toml"],
)
def test_a_key_leaving_the_folder_is_a_400_page(browser: Browser, path: str) -> None:
    answer = browser.get(path)

    page(answer, 400)
    assert answer.error_page().one("p", class_="big-status").text == "400"


@pytest.mark.parametrize(
    ("query", "field", "shown"),
    [
        ("since=yesterday", "since", "'yesterday' is neither"),
        ("until=soon", "until", "'soon' is neither"),
        ("since=9999999999h", "since", "past the range"),
        ("since=1h&until=2h", "until", "must be after since"),
        ("state=bogus", "state", "'bogus' is not a state"),
        ("cursor=abc", "cursor", "not a page"),
        ("cursor=-1", "cursor", "not a page"),
        ("cursor=99999999999999999999", "cursor", "not a page"),
        ("cursor=%C2%B2", "cursor", "not a page"),  # a digit, but not an ASCII one
        ("cursor=%D9%A1", "cursor", "not a page"),
    ],
)
def test_a_bad_tasks_filter_is_shown_next_to_its_field(
    browser: Browser, query: str, field: str, shown: str
) -> None:
    answer = browser.get(f"/web/tasks?{query}")

    doc = page(answer, 422)
    assert shown in answer.field_error(field)
    assert recs(doc) == []


@pytest.mark.parametrize(
    ("query", "field", "shown"),
    [
        ("kind=boom", "kind", "'boom' is not an alert kind"),
        ("since=whenever", "since", "'whenever' is neither"),
        ("since=0001-01-01T00:00:00%2B01:00", "since", "out of the range"),
    ],
)
def test_a_bad_alerts_filter_is_shown_next_to_its_field(
    browser: Browser, query: str, field: str, shown: str
) -> None:
    answer = browser.get(f"/web/alerts?{query}")

    doc = page(answer, 422)
    assert shown in answer.field_error(field)
    assert doc.all("tr", data_alert=None) == []
