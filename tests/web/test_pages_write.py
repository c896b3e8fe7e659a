"""Writes from the dashboard's pages: each passes the same-site, session and CSRF checks or
changes nothing; a refused form comes back with the error next to its field."""

from __future__ import annotations

import hashlib
from urllib.parse import quote, urlencode, urlsplit

import pytest

from flowlord.state import TaskFilter
from tests.api.conftest import Served
from tests.web.conftest import Browser, snapshot
from tests.web.pages import Unchanged, api, form, login_redirect, page

# Writing

SWITCH = "/web/workflows/etl.toml/switch"
PAUSE = {"back": "/web/", "phase": "", "enabled": "false", "reason": "disk full"}


def test_a_write_without_a_session_leads_to_the_sign_in_page(
    browser: Browser, unchanged: Unchanged
) -> None:
    answer = browser.post(SWITCH, {**PAUSE, "back": "/web/workflows/etl.toml", "csrf": "x"})

    assert login_redirect(answer) == {"next": "/web/workflows/etl.toml", "why": "required"}
    unchanged()


def test_a_write_without_a_session_never_leads_off_the_site(
    browser: Browser, unchanged: Unchanged
) -> None:
    answer = browser.post(SWITCH, {**PAUSE, "back": "//evil.com/web/"})

    assert login_redirect(answer) == {"next": "/web/", "why": "required"}
    unchanged()


def test_a_forged_session_cookie_counts_as_expired(
    served: Served, signed_in: Browser, unchanged: Unchanged
) -> None:
    csrf = signed_in.csrf()
    raw, signature = signed_in.jar["flowlord_session"].split(".")
    signed_in.jar["flowlord_session"] = f"{raw}.{signature[::-1]}"

    answer = signed_in.post(SWITCH, {**PAUSE, "csrf": csrf})

    assert login_redirect(answer)["why"] == "expired"
    unchanged()


def test_a_session_expires_after_twelve_hours(
    served: Served, signed_in: Browser, unchanged: Unchanged
) -> None:
    csrf = signed_in.csrf()
    served.clock.advance(hours=13)

    answer = signed_in.post(SWITCH, {**PAUSE, "csrf": csrf})

    assert login_redirect(answer) == {"next": "/web/", "why": "expired"}
    assert page(signed_in.get("/web/")).all("input", name="reason") == []
    unchanged()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1"},
    ],
)
def test_a_cross_site_write_is_refused_even_when_signed_in(
    served: Served, signed_in: Browser, unchanged: Unchanged, headers: dict[str, str]
) -> None:
    fields = {**PAUSE, "csrf": signed_in.csrf()}

    answer = signed_in.post(SWITCH, fields, headers=headers)

    assert "another site" in page(answer, 403).one("div", role="alert").text
    unchanged()


@pytest.mark.parametrize("csrf", [None, "", "forged-token", "other-session"])
def test_a_write_needs_the_sessions_csrf_token(
    served: Served, signed_in: Browser, unchanged: Unchanged, csrf: str | None
) -> None:
    if csrf == "other-session":
        other = Browser(served.api)
        other.sign_in(name="bob")
        csrf = other.csrf()
        assert csrf != signed_in.csrf()
    fields = {**PAUSE} if csrf is None else {**PAUSE, "csrf": csrf}

    answer = signed_in.post(SWITCH, fields)

    assert "CSRF token" in page(answer, 403).one("div", role="alert").text
    unchanged()


def test_pausing_from_the_overview(served: Served, signed_in: Browser) -> None:
    port = served.api.port
    fields = form(signed_in.get("/web/").doc, SWITCH)
    assert fields["enabled"] == "false" and fields["csrf"]
    same_site = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}

    answer = signed_in.post(SWITCH, {**fields, "reason": "disk full"}, headers=same_site)

    assert (answer.status, answer.location) == (303, "/web/?done=Paused+etl.toml.")
    controls = {c["workflow"]: c for c in api(served, "/api/controls")["controls"]}
    assert controls["etl.toml"]["enabled"] is False
    assert controls["etl.toml"]["reason"] == "disk full"
    assert controls["etl.toml"]["updated_by"] == "ann@web"
    after = page(signed_in.get(answer.location))
    assert after.one("p", class_="notice").text == "Paused etl.toml."
    assert after.one("tr", data_workflow="etl.toml").one(data_health=None).attrs == {
        "class": "badge paused", "data-health": "paused"
    }  # fmt: skip


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_pause_without_a_reason_is_refused_next_to_the_switch(
    served: Served, signed_in: Browser, unchanged: Unchanged, reason: str
) -> None:
    fields = form(signed_in.get("/web/").doc, SWITCH)

    answer = signed_in.post(SWITCH, {**fields, "reason": reason})

    page(answer, 422)
    assert "needs a reason" in answer.field_error("switch:etl.toml:")
    unchanged()


def test_resuming_releases_the_held(served: Served, signed_in: Browser) -> None:
    action = "/web/workflows/marketing.toml/switch"
    fields = form(signed_in.get("/web/").doc, action)
    assert fields["enabled"] == "true"

    answer = signed_in.post(action, fields)

    assert (answer.status, answer.location) == (303, "/web/?done=Resumed+marketing.toml.")
    [control] = [c for c in api(served, "/api/controls")["controls"]
                 if c["workflow"] == "marketing.toml"]  # fmt: skip
    assert control["enabled"] is True and control["updated_by"] == "ann@web"
    event = api(served, "/api/controls/events?workflow=marketing.toml")["events"][0]
    assert (event["to_enabled"], event["released"], event["actor"]) == (True, 1, "ann@web")
    assert api(served, "/api/tasks/13")["state"] == "queued"


def test_pausing_one_phase_from_its_workflow_page(served: Served, signed_in: Browser) -> None:
    action = "/web/workflows/etl.toml/switch"
    doc = signed_in.get("/web/workflows/etl.toml").doc
    [switch] = doc.all("form", data_switch="etl.toml:transform:orders")
    fields = {e.attrs["name"]: e.attrs.get("value", "") for e in switch.all("input", name=None)}
    assert fields["phase"] == "transform:orders" and fields["back"] == "/web/workflows/etl.toml"

    answer = signed_in.post(action, {**fields, "reason": "orders late"})

    assert answer.status == 303
    assert answer.location == "/web/workflows/etl.toml?done=Paused+etl.toml%3A+transform%3Aorders."
    controls = api(served, "/api/controls")["controls"]
    assert [(c["workflow"], c["phase"], c["enabled"], c["reason"]) for c in controls] == [
        ("etl.toml", "transform:orders", False, "orders late"),
        ("marketing.toml", "", False, "campaign freeze until Monday"),
    ]
    after = page(signed_in.get("/web/workflows/etl.toml"))
    assert after.one("tr", data_phase="transform:orders").attrs["data-health"] == "paused"
    assert after.one("tr", data_phase="extract").attrs["data-health"] == "ok"


def test_a_phase_pause_without_a_reason_is_refused_on_its_page(
    served: Served, signed_in: Browser, unchanged: Unchanged
) -> None:
    fields = {"back": "/web/workflows/etl.toml", "phase": "extract", "enabled": "false"}

    answer = signed_in.post(SWITCH, {**fields, "reason": "", "csrf": signed_in.csrf()})

    page(answer, 422)
    assert "needs a reason" in answer.field_error("switch:etl.toml:extract")
    assert answer.doc.all("tr", data_phase="extract")
    unchanged()


@pytest.mark.parametrize(
    ("key", "phase", "back"),
    [("nope.toml", "", "/web/"), ("etl.toml", "nope", "/web/workflows/etl.toml")],
)
def test_switching_what_does_not_exist_says_so(
    served: Served, signed_in: Browser, unchanged: Unchanged, key: str, phase: str, back: str
) -> None:
    change = {"enabled": False, "reason": "x", "phase": phase}
    refused = served.api.put(f"/api/controls/{key}", change)
    assert refused.status == 404
    fields = {"back": back, "phase": phase, "enabled": "false", "reason": "x"}

    answer = signed_in.post(f"/web/workflows/{key}/switch", {**fields, "csrf": signed_in.csrf()})

    assert answer.status == 404
    assert refused.error()["error"] in page(answer, 404).one("div", role="alert").text
    unchanged()


def test_a_switch_that_is_neither_on_nor_off_is_refused(
    served: Served, signed_in: Browser, unchanged: Unchanged
) -> None:
    fields = {"back": "/web/", "phase": "", "enabled": "maybe", "csrf": signed_in.csrf()}

    answer = signed_in.post("/web/workflows/marketing.toml/switch", fields)

    assert 400 <= answer.status < 500
    unchanged()


def test_a_key_leaving_the_folder_writes_nothing(
    served: Served, signed_in: Browser, unchanged: Unchanged
) -> None:
    answer = signed_in.post(
        "/web/workflows/../etl.toml/switch", {**PAUSE, "csrf": signed_in.csrf()}
    )

    assert "'..'" in page(answer, 400).one("div", role="alert").text
    unchanged()


def test_retrying_a_failed_record(served: Served, signed_in: Browser) -> None:
    fields = form(signed_in.get("/web/tasks/4").doc, "/web/tasks/4/retry")

    answer = signed_in.post("/web/tasks/4/retry", fields)

    assert answer.status == 303
    new = int(urlsplit(answer.location).path.rsplit("/", 1)[1])
    assert new == 14 and answer.location.startswith("/web/tasks/14?done=")
    made = api(served, f"/api/tasks/{new}")
    assert (made["state"], made["attempt"], made["id"]) == ("queued", 1, "run-0003")
    assert made["transitions"][0]["actor"] == "ann@web"
    shown = page(signed_in.get(answer.location))
    assert shown.one("p", class_="notice").text == "Retry of record 4 queued."
    assert shown.one(id="record-state").text == "queued"


@pytest.mark.parametrize("rec", [5, 9, 13])
def test_retrying_an_unfinished_record_is_refused(
    served: Served, signed_in: Browser, unchanged: Unchanged, rec: int
) -> None:
    doc = signed_in.get(f"/web/tasks/{rec}").doc
    assert [f for f in doc.all("form") if "retry" in f.attrs.get("action", "")] == []

    answer = signed_in.post(f"/web/tasks/{rec}/retry", {"csrf": signed_in.csrf()})

    problem = page(answer, 409).one("div", class_="problem").text
    assert f"record {rec} is" in problem and "only a finished record can be retried" in problem
    unchanged()


def test_retrying_twice_is_refused(served: Served, signed_in: Browser) -> None:
    fields = form(signed_in.get("/web/tasks/4").doc, "/web/tasks/4/retry")
    assert signed_in.post("/web/tasks/4/retry", fields).status == 303
    before = snapshot(served)

    answer = signed_in.post("/web/tasks/4/retry", fields)

    assert "retried already" in page(answer, 409).one("div", class_="problem").text
    assert snapshot(served) == before


def test_cancelling_a_queued_record(served: Served, signed_in: Browser) -> None:
    fields = form(signed_in.get("/web/tasks/9").doc, "/web/tasks/9/cancel")

    answer = signed_in.post("/web/tasks/9/cancel", {**fields, "reason": "meter rerun by hand"})

    assert (answer.status, answer.location) == (303, "/web/tasks/9?done=Record+9+cancelled.")
    record = api(served, "/api/tasks/9")
    last = record["transitions"][-1]
    assert record["state"] == "cancelled"
    assert (last["actor"], last["reason"]) == ("ann@web", "meter rerun by hand")


@pytest.mark.parametrize(
    ("rec", "reason", "status"), [(9, "two\nlines", 422), (4, "done already", 409)]
)
def test_a_refused_cancel_writes_nothing(
    served: Served, signed_in: Browser, unchanged: Unchanged, rec: int, reason: str, status: int
) -> None:
    answer = signed_in.post(
        f"/web/tasks/{rec}/cancel", {"csrf": signed_in.csrf(), "reason": reason}
    )

    doc = page(answer, status)
    shown = answer.field_error("reason") or doc.one("div", class_="problem").text
    assert ("one line" if status == 422 else "cannot go from failed") in shown
    unchanged()


@pytest.mark.parametrize("action", ["retry", "cancel"])
def test_acting_on_a_record_that_does_not_exist_is_a_404(
    served: Served, signed_in: Browser, unchanged: Unchanged, action: str
) -> None:
    answer = signed_in.post(f"/web/tasks/999/{action}", {"csrf": signed_in.csrf()})

    assert "no task record 999" in page(answer, 404).one("div", role="alert").text
    unchanged()


BACKLOAD = {"task": "extract", "from": "2024-05-01", "to": "2024-05-03"}


def test_a_backload_preview_shows_the_tasks_and_records_nothing(
    served: Served, browser: Browser, unchanged: Unchanged
) -> None:
    dry = served.api.post("/api/backload", BACKLOAD).json

    doc = page(browser.get(f"/web/backload?{urlencode({**BACKLOAD, 'preview': 1})}"))

    rows = doc.one(id="result").one("tbody").all("tr")
    assert [r.all("td")[2].text for r in rows] == [t["info"] for t in dry["tasks"]] == [
        "s3://raw/2024/05/01/", "s3://raw/2024/05/02/", "s3://raw/2024/05/03/"
    ]  # fmt: skip
    assert doc.one(id="backload-status").text == dry["status"]
    assert "Sign in to record them" in doc.one(id="result").text
    unchanged()


def test_a_backload_executes_what_its_preview_showed(served: Served, signed_in: Browser) -> None:
    preview = signed_in.get(f"/web/backload?{urlencode({**BACKLOAD, 'preview': 1})}").doc
    shown = len(preview.one(id="result").one("tbody").all("tr"))
    fields = form(preview, "/web/backload")

    answer = signed_in.post("/web/backload", fields)

    doc = page(answer)
    assert doc.one(id="result").one("h2").text.startswith(f"Recorded {shown} tasks")
    linked = [int(a.text) for a in doc.one(id="result").all("a")]
    made = served.store.tasks(TaskFilter(limit=100))
    assert linked == [r.rec for r in made if r.origin.value == "backload"][::-1]
    assert len(linked) == shown == 3
    assert {r.info for r in made if r.rec in linked} == {
        "s3://raw/2024/05/01/", "s3://raw/2024/05/02/", "s3://raw/2024/05/03/"
    }  # fmt: skip


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_backload_with_from_after_to_is_refused_next_to_from(
    served: Served, signed_in: Browser, unchanged: Unchanged, method: str
) -> None:
    fields = {**BACKLOAD, "from": "2024-05-05"}
    if method == "GET":
        answer = signed_in.get(f"/web/backload?{urlencode({**fields, 'preview': 1})}")
    else:
        answer = signed_in.post("/web/backload", {**fields, "csrf": signed_in.csrf()})

    page(answer, 422)
    assert answer.field_error("from") == "from 2024-05-05 is after to 2024-05-03"
    assert answer.doc.one("input", name="from").attrs["value"] == "2024-05-05"
    unchanged()


def test_a_backload_without_a_session_records_nothing(
    browser: Browser, unchanged: Unchanged
) -> None:
    answer = browser.post("/web/backload", {**BACKLOAD, "back": "/web/backload"})

    assert login_redirect(answer) == {"next": "/web/backload", "why": "required"}
    unchanged()


NEWER = b"# a newer version\n"


def _upload_newer(served: Served, key: str = "etl.toml") -> tuple[bytes, bytes]:
    old = (served.folder / key).read_bytes()
    new = NEWER + old.replace(b"retry = 2", b"retry = 4")
    reply = served.api.request(
        "PUT", f"/api/workflows/{key}", body=new, headers={"Content-Type": "application/toml"}
    )
    assert reply.status == 200, reply.body
    return old, new


def test_restoring_an_older_version(served: Served, signed_in: Browser) -> None:
    old, new = _upload_newer(served)
    old_hash, new_hash = hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()
    doc = signed_in.get("/web/workflows/etl.toml").doc
    assert [r.attrs["data-version"] for r in doc.all("tr", data_version=None)] == [
        new_hash, old_hash
    ]  # fmt: skip
    fields = form(doc, "/web/workflows/etl.toml/restore")
    assert (fields["hash"], fields["if_match"]) == (old_hash, new_hash)

    answer = signed_in.post("/web/workflows/etl.toml/restore", fields)

    assert answer.status == 303
    assert answer.location.startswith("/web/workflows/etl.toml?done=Restored+version")
    assert (served.folder / "etl.toml").read_bytes() == old
    assert api(served, "/api/workflows/etl.toml")["hash"] == old_hash


def test_a_restore_over_a_changed_file_is_refused(served: Served, signed_in: Browser) -> None:
    _, new = _upload_newer(served)
    fields = form(signed_in.get("/web/workflows/etl.toml").doc, "/web/workflows/etl.toml/restore")
    before = snapshot(served)

    answer = signed_in.post("/web/workflows/etl.toml/restore", {**fields, "if_match": "0" * 64})

    page(answer, 409)
    assert answer.field_error("restore")
    assert (served.folder / "etl.toml").read_bytes() == new
    assert snapshot(served) == before


def test_restoring_a_version_that_is_not_stored_is_a_404(
    served: Served, signed_in: Browser, unchanged: Unchanged
) -> None:
    fields = {"hash": "ab" * 32, "csrf": signed_in.csrf(), "if_match": ""}

    answer = signed_in.post("/web/workflows/etl.toml/restore", fields)

    card = page(answer, 404).one("div", role="alert")
    assert card.one("a", class_="button").attrs["href"] == "/web/workflows/etl.toml"
    unchanged()


def test_the_diff_of_an_older_version(served: Served, browser: Browser) -> None:
    old, _ = _upload_newer(served)
    old_hash = hashlib.sha256(old).hexdigest()

    doc = page(browser.get(f"/web/workflows/etl.toml?diff={quote(old_hash)}"))

    diff = doc.one("pre", id="diff")
    added = [s.text for s in diff.all("span", class_="add")]
    removed = [s.text for s in diff.all("span", class_="del")]
    assert added == ["+# a newer version", "+retry = 4"]
    assert removed == ["-retry = 2"]


def test_a_form_over_the_size_limit_is_an_html_page(
    served: Served, signed_in: Browser, unchanged: Unchanged
) -> None:
    answer = signed_in.post(SWITCH, {**PAUSE, "csrf": signed_in.csrf(), "reason": "x" * 2_000_000})

    page(answer, 413)
    unchanged()
