"""The dashboard through a real server over the scenery (`tests/web/scenery.py`), and what a
browser does with it: a cookie jar, form posts, pages read back as a tree of elements.

`Browser` talks `http.client` itself rather than through `tests.api.client.Api`: a sign-in
answers with two `Set-Cookie` lines (the session, and the sign-in cookie dropped), and `Api`'s
`Reply` keeps one header of each name.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from flowlord.state import TaskFilter
from tests.api.client import TOKEN, Api
from tests.api.conftest import Served, serve
from tests.web.scenery import WORKFLOWS, arrange

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr"}
)  # fmt: skip
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Element:
    """One element of a page: its tag, attributes, children and the text in it."""

    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    parts: list[str | Element] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text of this element and every descendant, whitespace collapsed."""
        found = "".join(p if isinstance(p, str) else p.text for p in self.parts)
        return " ".join(found.split())

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.iter()

    def all(self, tag: str | None = None, **attrs: str | None) -> list[Element]:
        """Descendants (and self) with `tag` and each attribute: `None` means present with any
        value; `class_` matches one of the classes."""
        return [e for e in self.iter() if _matches(e, tag, attrs)]

    def one(self, tag: str | None = None, **attrs: str | None) -> Element:
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} elements {tag} {attrs}"
        return found[0]


def _matches(element: Element, tag: str | None, attrs: dict[str, str | None]) -> bool:
    if tag is not None and element.tag != tag:
        return False
    for name, wanted in attrs.items():
        name = name.rstrip("_").replace("_", "-")
        value = element.attrs.get(name)
        if value is None:
            return False
        if wanted is not None and (
            wanted not in value.split() if name == "class" else value != wanted
        ):
            return False
    return True


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        self.stack[-1].parts.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        self.stack[-1].parts.append(element)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


def parse(text: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


@dataclass(frozen=True)
class Answer:
    """One response as a browser sees it: status, headers (lower-case names, the last of
    each), every `Set-Cookie` line by cookie name, and the body."""

    status: int
    headers: dict[str, str]
    cookies: dict[str, str]
    text: str

    @property
    def doc(self) -> Element:
        return parse(self.text)

    @property
    def location(self) -> str:
        return self.headers.get("location", "")

    def field_error(self, name: str) -> str:
        """The error shown next to field `name` ("" when none is)."""
        found = self.doc.all(data_field=name)
        return found[0].text if found else ""

    def error_page(self) -> Element:
        """The error page's card, checked to be HTML with a way back."""
        assert self.headers["content-type"].startswith("text/html"), self.headers
        card = self.doc.one("div", role="alert")
        assert card.all("a", class_="button"), self.text
        return card

    def csrf(self) -> str:
        """The session's CSRF token, as the page's forms carry it."""
        values = {e.attrs["value"] for e in self.doc.all("input", name="csrf")}
        assert len(values) == 1 and "" not in values, values
        return values.pop()


class Browser:
    """Requests to one server with a cookie jar (every cookie sent on every path, as far as
    these tests go) and no bearer token: what a browser sends."""

    def __init__(self, api: Api) -> None:
        self.host, self.port = api.host, api.port
        self.jar: dict[str, str] = {}

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:  # fmt: skip
        sent = dict(headers or {})
        if self.jar and "Cookie" not in sent:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            pairs = response.getheaders()
            text = response.read().decode()
        finally:
            connection.close()
        cookies = {
            value.split("=", 1)[0]: value for name, value in pairs if name.lower() == "set-cookie"
        }
        self._keep(cookies)
        return Answer(response.status, {k.lower(): v for k, v in pairs}, cookies, text)

    def _keep(self, cookies: dict[str, str]) -> None:
        for name, line in cookies.items():
            morsel = SimpleCookie(line)[name]
            if morsel["max-age"] == "0":
                self.jar.pop(name, None)
            else:
                self.jar[name] = morsel.value

    def get(self, path: str, *, headers: dict[str, str] | None = None) -> Answer:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, fields: dict[str, str], *,
             headers: dict[str, str] | None = None) -> Answer:  # fmt: skip
        body = urlencode(fields).encode()
        return self.request("POST", path, body=body, headers={**FORM, **(headers or {})})

    def sign_in(self, *, token: str = TOKEN, name: str = "ann", next: str = "/web/") -> Answer:
        """The sign-in form, filled in and sent; returns the answer to the POST."""
        form = self.get(f"/web/login?{urlencode({'next': next})}")
        csrf = form.doc.one("input", name="csrf").attrs["value"]
        return self.post("/web/login", {"csrf": csrf, "token": token, "name": name, "next": next})

    def csrf(self) -> str:
        """The session's CSRF token, from the overview's forms."""
        return self.get("/web/").csrf()


@dataclass(frozen=True)
class Snapshot:
    """What a write could change: switches, their audit, every record and its moves, and the
    workflow files on disk."""

    controls: list[object]
    events: list[object]
    records: list[object]
    transitions: list[object]
    files: dict[str, bytes]


def snapshot(served: Served) -> Snapshot:
    store = served.store
    records = store.tasks(TaskFilter(limit=100_000))
    return Snapshot(
        controls=list(store.controls()),
        events=list(store.control_events(limit=100_000)),
        records=records,
        transitions=[t for r in records for t in store.transitions(r.rec)],
        files={p.name: p.read_bytes() for p in sorted(served.folder.glob("*.toml"))},
    )


def scenery(tmp_path: Path, *, token: str = TOKEN) -> Iterator[Served]:
    for server in serve(tmp_path, token=token, workflows=WORKFLOWS):
        arrange(server.store, server.clock, str(server.db))
        yield server


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The scenery served with an admin token: pages can be signed in to."""
    yield from scenery(tmp_path)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Served]:
    """The scenery served with no admin token: nobody signs in."""
    yield from scenery(tmp_path, token="")


@pytest.fixture
def browser(served: Served) -> Browser:
    return Browser(served.api)


@pytest.fixture
def signed_in(served: Served) -> Browser:
    """A browser signed in as `ann`."""
    made = Browser(served.api)
    answer = made.sign_in()
    assert answer.status == 303 and "flowlord_session" in made.jar, answer
    return made


@pytest.fixture
def unchanged(served: Served) -> Iterator[Callable[[], None]]:
    """Call it after a refused write: the store and the files are as before the test."""
    before = snapshot(served)

    def check() -> None:
        assert snapshot(served) == before

    yield check
