"""Dashboard sessions and the write checks' pure parts (`handlers.web.session`,
`handlers.web.base`): signed cookies, CSRF, the sign-in name, redirect targets, same-site."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from starlette.requests import Request

from handlers.web.base import local_path, same_site
from handlers.web.session import LIFETIME, MAX_NAME, Sessions, csrf_matches, name_problem
from tests.conftest import FIXED_NOW

NOW = FIXED_NOW
TOKEN = "s3cret-admin-token"


@pytest.fixture
def sessions() -> Sessions:
    return Sessions(TOKEN)


def test_an_issued_cookie_reads_back_as_its_session(sessions: Sessions) -> None:
    cookie, issued = sessions.issue(name="ann", now=NOW)

    read = sessions.read(cookie, now=NOW)

    assert read == issued
    assert read.name == "ann" and read.expires == NOW + LIFETIME
    assert len(read.csrf) >= 32 and read.csrf not in cookie.split(".")[1]
    assert read.actor("10.0.0.1") == "ann@web"


def test_each_session_has_its_own_csrf_token(sessions: Sessions) -> None:
    tokens = {sessions.issue(name="ann", now=NOW)[1].csrf for _ in range(20)}

    assert len(tokens) == 20


def test_a_nameless_session_acts_as_the_client_address(sessions: Sessions) -> None:
    cookie, _ = sessions.issue(name="", now=NOW)

    assert sessions.read(cookie, now=NOW).actor("10.0.0.1") == "web@10.0.0.1"


def _payload(cookie: str) -> dict[str, object]:
    raw = cookie.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def _encode(payload: dict[str, object]) -> str:
    data = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_forged_signature_reads_as_no_session(sessions: Sessions) -> None:
    cookie, _ = sessions.issue(name="ann", now=NOW)
    raw, signature = cookie.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    assert sessions.read(f"{raw}.{flipped}", now=NOW) is None
    assert sessions.read(f"{raw}.", now=NOW) is None
    assert sessions.read(raw, now=NOW) is None


def test_a_tampered_payload_reads_as_no_session(sessions: Sessions) -> None:
    cookie, _ = sessions.issue(name="ann", now=NOW)
    payload = _payload(cookie)
    signature = cookie.split(".")[1]
    longer = {**payload, "exp": int(payload["exp"]) + 365 * 86400}  # type: ignore[call-overload]
    renamed = {**payload, "name": "root"}

    assert sessions.read(f"{_encode(longer)}.{signature}", now=NOW) is None
    assert sessions.read(f"{_encode(renamed)}.{signature}", now=NOW) is None


@pytest.mark.parametrize(
    "cookie", ["", ".", "garbage", "a.b", "..", "é.é", "x" * 5000, "\x00.\x00", None]
)
def test_garbage_reads_as_no_session(sessions: Sessions, cookie: str | None) -> None:
    assert sessions.read(cookie, now=NOW) is None


def test_a_session_ends_after_its_lifetime(sessions: Sessions) -> None:
    cookie, _ = sessions.issue(name="ann", now=NOW)

    assert sessions.read(cookie, now=NOW + LIFETIME - timedelta(seconds=1)) is not None
    assert sessions.read(cookie, now=NOW + LIFETIME) is None
    assert sessions.read(cookie, now=NOW + timedelta(days=400)) is None


def test_the_lifetime_can_be_set() -> None:
    short = Sessions(TOKEN, lifetime=timedelta(minutes=5))
    cookie, session = short.issue(name="ann", now=NOW)

    assert session.expires == NOW + timedelta(minutes=5)
    assert short.read(cookie, now=NOW + timedelta(minutes=6)) is None


def test_another_admin_token_cannot_read_the_cookie(sessions: Sessions) -> None:
    cookie, _ = sessions.issue(name="ann", now=NOW)

    assert Sessions(TOKEN + "x").read(cookie, now=NOW) is None
    assert Sessions("other").read(cookie, now=NOW) is None
    assert Sessions(TOKEN).read(cookie, now=NOW) is not None


def test_sessions_need_an_admin_token() -> None:
    with pytest.raises(ValueError, match="admin token"):
        Sessions("")


def test_the_admin_token_is_compared_exactly_but_for_surrounding_space(
    sessions: Sessions,
) -> None:
    assert sessions.token_matches(TOKEN)
    assert sessions.token_matches(f" {TOKEN}\n")
    assert not sessions.token_matches(TOKEN[:-1])
    assert not sessions.token_matches(TOKEN + "x")
    assert not sessions.token_matches("")
    assert not sessions.token_matches(TOKEN.upper())


@pytest.mark.parametrize(
    ("expected", "given", "matches"),
    [
        ("abc123", "abc123", True),
        ("abc123", "abc124", False),
        ("abc123", "abc12", False),
        ("abc123", "", False),
        ("abc123", None, False),
        ("", "", False),
        ("", None, False),
        ("abc123", "ABC123", False),
        ("abc123", "abc123é", False),
    ],
)
def test_csrf_matches_only_the_same_nonempty_token(
    expected: str, given: str | None, matches: bool
) -> None:
    assert csrf_matches(expected, given) is matches


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", ""),
        ("ann", ""),
        ("Ann-Marie O'Neil (ops)", ""),
        ("x" * MAX_NAME, ""),
        ("x" * (MAX_NAME + 1), f"at most {MAX_NAME} characters"),
        ("ann\nroot", "one line of printable text"),
        ("ann\x1b[31m", "one line of printable text"),
        ("ann\tx", "one line of printable text"),
    ],
)
def test_name_problem(name: str, problem: str) -> None:
    assert name_problem(name) == problem


@pytest.mark.parametrize(
    "text",
    [
        "//evil.com",
        "//evil.com/web/",
        "https://evil.com/web/",
        "http:/web/",
        "/web/\\evil",
        "/web\\/evil.com",
        "/api/x",
        "/",
        "",
        "web/",
        "/web/\r\nLocation: https://evil.com",
        "/web/\x00",
        "/web/\t",
        "/web/" + "x" * 2000,
        "javascript:alert(1)",
    ],
)
def test_local_path_refuses_what_leaves_the_dashboard(text: str) -> None:
    assert local_path(text) == "/web/"
    assert local_path(text, default="/web/tasks") == "/web/tasks"


@pytest.mark.parametrize(
    "text", ["/web/", "/web/tasks?state=failed", "/web/workflows/etl.toml", "/web/tasks/4"]
)
def test_local_path_keeps_a_dashboard_path(text: str) -> None:
    assert local_path(text, default="/web/about") == text


def _request(headers: dict[str, str], *, host: str = "127.0.0.1:8080") -> Request:
    pairs = [(b"host", host.encode())] + [
        (name.lower().encode(), value.encode()) for name, value in headers.items()
    ]
    scope = {
        "type": "http", "method": "POST", "path": "/web/login", "raw_path": b"/web/login",
        "query_string": b"", "headers": pairs, "scheme": "http",
        "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 50000),
    }  # fmt: skip
    return Request(scope)


@pytest.mark.parametrize(
    ("headers", "same"),
    [
        ({}, True),
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({"Sec-Fetch-Site": "none"}, True),
        ({"Sec-Fetch-Site": "same-site"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1:8080"}, False),
        ({"Origin": "http://127.0.0.1:8080"}, True),
        ({"Origin": "http://evil.example"}, False),
        ({"Origin": "https://127.0.0.1:8080"}, False),
        ({"Origin": "http://127.0.0.1:8081"}, False),
        ({"Origin": "http://127.0.0.1"}, False),
        ({"Origin": "null"}, False),
    ],
)
def test_same_site(headers: dict[str, str], same: bool) -> None:
    assert same_site(_request(headers)) is same
