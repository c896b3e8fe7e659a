"""`/web/tasks` (filters, pages), `/web/tasks/{rec}` (a record's history, retry, cancel) and
`/web/alerts`.

The reads are the store's, as `/api/tasks`, `/api/tasks/{rec}`, `/api/runs/{id}` and
`/api/alerts` make them; retry and cancel are `flowlord.operations`, as the API's routes and
`flowlord retry | cancel` call them. A filter that does not read (a bad `since`) shows the
form again with the problem next to the field, and no records.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from starlette.responses import Response

from flowlord import operations
from flowlord.state import ALERT_KINDS, TaskFilter, UnknownRecord
from flowlord.task_commands import point_in_time
from handlers.records import DOMAIN_ERRORS, record_number
from handlers.web.base import Form, Page, PageError, Web
from handlers.web.views import can_cancel, can_retry
from workflow.state import State

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
FILTERS = ("state", "type", "job", "workflow", "id", "since", "until")


@router.get("/web/tasks")
def tasks(page: Page, cursor: str = "") -> Response:
    """Records newest first, `PAGE_SIZE` a page, filtered as `/api/tasks` filters."""
    given = {name: page.request.query_params.get(name, "").strip() for name in FILTERS}
    errors: dict[str, str] = {}
    where = _filter(page, given, cursor, errors)
    found = page.ctx.store.tasks(where) if where else []
    shown = found[:PAGE_SIZE]
    more = len(found) > PAGE_SIZE
    return page.page(
        "tasks.html", status=422 if errors else 200, records=shown, given=given,
        next_cursor=str(shown[-1].rec) if more else "", first_page=not cursor,
        states=[s.value for s in State], errors=errors,
    )  # fmt: skip


def _filter(page: Web, given: dict[str, str], cursor: str, errors: dict[str, str]
            ) -> TaskFilter | None:  # fmt: skip
    """The store filter of the form's fields; None (and `errors` filled) when one is wrong."""
    state = given["state"]
    if state and state not in {s.value for s in State}:
        errors["state"] = f"{state!r} is not a state"
    since, until = (_moment(page, name, given[name], errors) for name in ("since", "until"))
    if since and until and since >= until:
        errors["until"] = "must be after since"
    before = record_number(cursor) if cursor else None
    if cursor and before is None:
        errors["cursor"] = "not a page this dashboard gave"
    if errors:
        return None
    return TaskFilter(
        state=State(state) if state else None, type=given["type"] or None,
        job=given["job"] or None, workflow=given["workflow"] or None, id=given["id"] or None,
        since=since, until=until, limit=PAGE_SIZE + 1, before=before,
    )  # fmt: skip


def _moment(page: Web, name: str, text: str, errors: dict[str, str]) -> datetime | None:
    if not text:
        return None
    try:
        return point_in_time(text, now=page.clock.now)
    except ValueError as err:
        errors[name] = str(err)
        return None


@router.get("/web/tasks/{rec}")
def task(rec: str, page: Page, done: str = "") -> Response:
    return task_page(page, _rec(rec), notice=done)


def task_page(page: Web, rec: int, *, notice: str = "", errors: dict[str, str] | None = None,
              status: int = 200) -> Response:  # fmt: skip
    store = page.ctx.store
    try:
        record = store.get(rec)
    except UnknownRecord:
        raise PageError(404, f"There is no task record {rec}.", back="/web/tasks",
                        back_label="Back to the tasks") from None  # fmt: skip
    return page.page(
        "task.html", status=status, record=record, transitions=store.transitions(rec),
        run=store.run(record.id), can_retry=can_retry(record), can_cancel=can_cancel(record),
        notice=notice, errors=errors or {},
    )  # fmt: skip


@router.post("/web/tasks/{rec}/retry")
def retry(rec: str, post: Form) -> Response:
    """A new attempt of a finished record; a refusal (not finished, retried already) shows
    the record again with why."""
    number = _rec(rec)
    try:
        made = operations.retry(post.web.ctx.store, number, actor=post.web.actor)
    except DOMAIN_ERRORS as err:
        return _refused(post.web, number, err)
    return post.web.done(f"/web/tasks/{made.rec}", f"Retry of record {number} queued.")


@router.post("/web/tasks/{rec}/cancel")
def cancel(rec: str, post: Form) -> Response:
    """Cancel a record that is not finished, with the reason given (one line)."""
    number = _rec(rec)
    reason = post.text("reason").strip()
    if not reason.isprintable() or len(reason) > 1000:
        problem = "one line of printable text, at most 1000 characters"
        return task_page(post.web, number, status=422, errors={"reason": problem})
    try:
        operations.cancel(post.web.ctx.store, number, actor=post.web.actor, reason=reason)
    except DOMAIN_ERRORS as err:
        return _refused(post.web, number, err)
    return post.web.done(f"/web/tasks/{number}", f"Record {number} cancelled.")


def _refused(page: Web, rec: int, err: Exception) -> Response:
    if isinstance(err, UnknownRecord):
        return task_page(page, rec)  # the 404 page
    return task_page(page, rec, status=409, errors={"action": str(err)})


@router.get("/web/alerts")
def alerts(page: Page, kind: str = "", since: str = "") -> Response:
    """Alert records newest first, by kind and from `since`, as `/api/alerts` gives them."""
    errors: dict[str, str] = {}
    if kind and kind not in ALERT_KINDS:
        errors["kind"] = f"{kind!r} is not an alert kind"
    start = _moment(page, "since", since.strip(), errors)
    found = [] if errors else page.ctx.store.alerts(since=start, kind=kind or None, limit=200)
    return page.page("alerts.html", status=422 if errors else 200, alerts=found, kind=kind,
                     since=since, kinds=ALERT_KINDS, errors=errors)  # fmt: skip


def _rec(text: str) -> int:
    """A record number from the path; anything else is the 404 page."""
    number = record_number(text)
    if not number:
        raise PageError(404, f"There is no task record {text!r}.", back="/web/tasks",
                        back_label="Back to the tasks")  # fmt: skip
    return number
