"""Signing in to the dashboard: the admin token sets a signed, HttpOnly, SameSite=Strict session
cookie; the form has its own CSRF token; nothing leads off the site."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.api.client import TOKEN
from tests.api.conftest import Served
from tests.web.conftest import Browser, snapshot
from tests.web.pages import login_redirect, page

# Signing in


def test_a_wrong_token_is_refused_next_to_the_field(browser: Browser) -> None:
    answer = browser.sign_in(token=TOKEN + "x")

    page(answer, 403)
    assert answer.field_error("token") == "That is not the admin token."
    assert "flowlord_session" not in answer.cookies and "flowlord_session" not in browser.jar
    assert answer.doc.one("input", name="name").attrs["value"] == "ann"


def test_an_empty_token_is_refused(browser: Browser) -> None:
    answer = browser.sign_in(token="")

    page(answer, 403)
    assert "flowlord_session" not in answer.cookies


@pytest.mark.parametrize("cookie", [None, "", "other-token"])
def test_signing_in_needs_the_forms_own_csrf_cookie(browser: Browser, cookie: str | None) -> None:
    csrf = browser.get("/web/login").doc.one("input", name="csrf").attrs["value"]
    fields = {"csrf": csrf, "token": TOKEN, "name": "ann", "next": "/web/"}
    headers = {"Cookie": "x=1" if cookie is None else f"flowlord_login={cookie}"}

    answer = browser.post("/web/login", fields, headers=headers)

    page(answer, 403)
    assert "expired" in answer.field_error("token")
    assert "flowlord_session" not in answer.cookies


@pytest.mark.parametrize("csrf", ["", "forged"])
def test_signing_in_needs_the_form_to_carry_the_cookies_token(browser: Browser, csrf: str) -> None:
    browser.get("/web/login")

    answer = browser.post("/web/login", {"csrf": csrf, "token": TOKEN, "next": "/web/"})

    page(answer, 403)
    assert "flowlord_session" not in answer.cookies


def test_the_right_token_sets_a_safe_session_cookie_and_goes_on(
    served: Served, browser: Browser
) -> None:
    answer = browser.sign_in(next="/web/tasks?state=failed")

    assert answer.status == 303 and answer.location == "/web/tasks?state=failed"
    line = answer.cookies["flowlord_session"]
    attributes = {part.strip().lower() for part in line.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/", "max-age=43200"} <= attributes
    assert "secure" not in attributes  # served over plain HTTP
    after = browser.get("/web/")
    assert "ann" in page(after).one("div", class_="who").text
    assert len(after.csrf()) >= 32


@pytest.mark.parametrize(
    "next_path", ["//evil.com", "https://evil.com/web/", "/web/\\evil.com", "/api/tasks", ""]
)
def test_signing_in_never_leaves_the_dashboard(browser: Browser, next_path: str) -> None:
    shown = browser.get(f"/web/login?{urlencode({'next': next_path})}").doc

    answer = browser.sign_in(next=next_path)

    assert shown.one("input", name="next").attrs["value"] == "/web/"
    assert (answer.status, answer.location) == (303, "/web/")


def test_a_name_that_is_not_one_line_is_refused(browser: Browser) -> None:
    answer = browser.sign_in(name="ann\nroot")

    page(answer, 422)
    assert answer.field_error("name") == "one line of printable text"
    assert "flowlord_session" not in answer.cookies


@pytest.mark.parametrize(
    ("why", "notice"), [("expired", "Your session has expired"), ("required", "Sign in with")]
)
def test_the_sign_in_page_says_why(browser: Browser, why: str, notice: str) -> None:
    doc = page(browser.get(f"/web/login?why={why}&next=/web/tasks"))

    assert notice in doc.one("div", class_="info-box").text
    assert doc.one("input", name="next").attrs["value"] == "/web/tasks"


@pytest.mark.parametrize(
    "headers", [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}]
)
def test_a_cross_site_sign_in_is_refused(browser: Browser, headers: dict[str, str]) -> None:
    csrf = browser.get("/web/login").doc.one("input", name="csrf").attrs["value"]

    answer = browser.post("/web/login", {"csrf": csrf, "token": TOKEN}, headers=headers)

    assert "another site" in page(answer, 403).one("div", role="alert").text
    assert "flowlord_session" not in answer.cookies


def test_signing_out_ends_the_session(served: Served, signed_in: Browser) -> None:
    answer = signed_in.post("/web/logout", {})

    assert answer.status == 303 and "flowlord_session" not in signed_in.jar
    refused = signed_in.post("/web/workflows/etl.toml/switch", {"enabled": "false", "reason": "x"})
    assert login_redirect(refused)["why"] == "required"


def test_with_no_admin_token_nobody_signs_in(read_only: Served) -> None:
    browser = Browser(read_only.api)
    before = snapshot(read_only)

    shown = browser.get("/web/login")
    answer = browser.post("/web/login", {"csrf": "x", "token": "", "next": "/web/"})
    switched = browser.post("/web/workflows/etl.toml/switch", {"enabled": "false", "reason": "x"})

    assert "Writes are disabled" in page(shown).one("main").text
    assert page(shown).all("form", id="login") == []
    assert "Writes are disabled" in page(answer, 403).one("div", role="alert").text
    assert "flowlord_session" not in answer.cookies
    assert "Writes are disabled" in page(switched, 403).one("div", role="alert").text
    overview = page(browser.get("/web/"))
    assert all("disabled" in b.attrs for b in overview.all("button", class_="switch"))
    assert snapshot(read_only) == before
