"""`/web/backload`: the backload form. Previewing is a GET (a dry run needs no sign-in, as on
the API); executing is a POST of the same fields, which records the tasks.

Both are `flowlord.backload.backload`, as `POST /api/backload` calls it; a request it refuses
shows the form again with the problem next to the field it names, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter
from starlette.responses import Response

from flowlord.backload import Backloaded, backload
from handlers.web.base import Form, Page, Web
from workflow.backload import MAX_NAME, MAX_TEXT, BackloadError, Request

router = APIRouter(include_in_schema=False)

FIELDS = ("task", "job", "workflow", "from", "to", "at", "by", "meta", "meta_file", "template")
LONG_FIELDS = frozenset({"meta", "template"})


@router.get("/web/backload")
def form(page: Page) -> Response:
    """The form, prefilled from the query; with `preview`, the dry run of its fields."""
    given = _given(page.request.query_params)
    if "preview" not in page.request.query_params:
        return page.page("backload.html", given=given, result=None)
    return _answer(page, given, execute=False)


@router.post("/web/backload")
def execute(post: Form) -> Response:
    """Record the tasks of the form's backload (queued, or held while paused)."""
    return _answer(post.web, _given(post.form), execute=True)


def _answer(page: Web, given: dict[str, str], *, execute: bool) -> Response:
    try:
        request = _request(given, execute=execute)
        done = backload(
            request, cache=page.ctx.cache, store=page.ctx.store, folder=page.ctx.folder,
            now=page.clock.now, zone=page.ctx.zone, max_tasks=page.ctx.max_tasks,
            actor=page.actor if execute else "",
        )  # fmt: skip
    except BackloadError as err:
        field = err.field if err.field in FIELDS else "form"
        return page.page("backload.html", status=422, given=given, result=None,
                         errors={field: str(err)})  # fmt: skip
    return page.page("backload.html", given=given, result=_result(done))


def _given(values: Mapping[str, object]) -> dict[str, str]:
    """The form's fields as text ("" for one not sent)."""
    found = {name: values.get(name, "") for name in FIELDS}
    return {name: value.strip() if isinstance(value, str) else "" for name, value in found.items()}


def _request(given: dict[str, str], *, execute: bool) -> Request:
    """The backload request of the form; the lengths the API's model checks are checked here
    too, and the meta field is one `key=v1,v2` line per key."""
    for name, value in given.items():
        limit = MAX_TEXT if name in LONG_FIELDS else MAX_NAME
        if len(value) > limit:
            raise BackloadError(name, f"at most {limit} characters")
    values = {name: given[name] for name in ("task", "job", "workflow", "to", "at", "by",
                                             "meta_file", "template")}  # fmt: skip
    return Request(from_=given["from"], meta=_meta(given["meta"]), execute=execute, **values)


def _meta(text: str) -> dict[str, list[str]] | None:
    """`region=us,eu` lines as the API's `{"region": ["us", "eu"]}`; None when blank."""
    meta: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, equals, values = line.partition("=")
        if not equals or not key.strip():
            raise BackloadError("meta", f"line {number}: write key=value1,value2")
        meta[key.strip()] = [value.strip() for value in values.split(",")]
    return meta or None


def _result(done: Backloaded) -> dict[str, object]:
    return {"executed": done.executed, "status": done.status, "tasks": done.tasks,
            "records": [record.rec for record in done.records], "workflow": done.plan.workflow,
            "phase": done.plan.phase}  # fmt: skip
