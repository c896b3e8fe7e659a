"""What the dashboard tests read off the pages: the checked page tree, the API's answer to
compare with, the records and forms of a page."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from tests.api.conftest import Served
from tests.web.conftest import Answer, Element

Unchanged = Callable[[], None]


def page(answer: Answer, status: int = 200) -> Element:
    """The page's tree, checked to be HTML with the headers every page has."""
    assert answer.status == status, (answer.status, answer.text[:2000])
    assert answer.headers["content-type"].startswith("text/html"), answer.headers
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    return answer.doc


def api(served: Served, path: str) -> dict:
    reply = served.api.get(path)
    assert reply.status == 200, (path, reply.status, reply.body)
    return reply.json  # type: ignore[return-value]


def recs(doc: Element) -> list[int]:
    return [int(row.attrs["data-rec"]) for row in doc.all("tr", data_rec=None)]


def form(doc: Element, action: str) -> dict[str, str]:
    """The fields a browser sends with the page's form posting to `action`."""
    [found] = [f for f in doc.all("form", method="post") if f.attrs.get("action") == action]
    fields = {}
    for element in found.all("input", name=None):
        if element.attrs.get("type") != "checkbox" or "checked" in element.attrs:
            fields[element.attrs["name"]] = element.attrs.get("value", "")
    for element in found.all("textarea", name=None):
        fields[element.attrs["name"]] = element.text
    return fields


def login_redirect(answer: Answer) -> dict[str, str]:
    """The query of a redirect to the sign-in page."""
    assert answer.status == 303, (answer.status, answer.text[:500])
    parts = urlsplit(answer.location)
    assert parts.path == "/web/login" and not parts.netloc, answer.location
    return {name: values[0] for name, values in parse_qs(parts.query).items()}


def health_of(workflow: dict) -> str:
    """A file's health as the API's fields give it."""
    if not workflow["enabled"]:
        return "paused"
    if workflow["errors"] or workflow["error"]:
        return "errors"
    return "warnings" if workflow["warnings"] else "ok"
