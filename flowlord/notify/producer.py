"""`Producer`: turns what happened into queued deliveries, exactly once across restarts.

Each round reads the sources past their cursors and, in the same `BEGIN IMMEDIATE` transaction,
queues the deliveries and moves the cursors: a crash before the commit queues nothing and moves
nothing, so the next start reads the same rows again; after it, never again.

A round is cheap when nothing happened: `PRAGMA data_version` (did another connection commit?),
the watcher's keys and the end of the summary interval are looked at before the write lock is
taken. Task transitions and control events are read only when a hook subscribes to them; the
first round of a leader starts their cursors at the newest row (history is not replayed) and
drops the cursors of sources nobody subscribes to any more (so subscribing again does not
replay what happened meanwhile). Alerts not yet notified are summarized whenever they were
raised, even before the first start.

The summary interval lives in memory: after a restart it starts again at the minimum. The
alerts themselves are neither lost nor repeated: the cursor and `notified` are durable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import apsw

from flowlord.notify import sources as s
from flowlord.notify.queue import DeliveryQueue, abandon_others, enqueue
from workflow.hooks import CONTROL_EVENTS, FILE_EVENTS, TASK_EVENTS
from workflow.notify import (
    ALERT_SUMMARY,
    DEFAULT_POLICY,
    QUIET,
    SUMMARY_LINES,
    Decision,
    SummaryPolicy,
    hook_body,
    summary_body,
)

log = logging.getLogger(__name__)
PURGE_EVERY = timedelta(hours=1)


class Producer:
    """Queues alert summaries for `alert_webhook` and hook events for the URLs in `hooks`
    (event: URLs). Does nothing while `is_leader()` is False. `on_queued(url)` runs after
    each commit that queued something for `url` (to wake its courier)."""

    def __init__(
        self,
        queue: DeliveryQueue,
        *,
        hooks: Mapping[str, Sequence[str]],
        alert_webhook: str = "",
        policy: SummaryPolicy = DEFAULT_POLICY,
        is_leader: Callable[[], bool],
        on_queued: Callable[[str], None] = lambda url: None,
        batch: int = 500,
        keep: timedelta = timedelta(days=7),
    ) -> None:
        self._queue = queue
        self._hooks = hooks
        self._alert_webhook = alert_webhook
        self._policy = policy
        self._is_leader = is_leader
        self._on_queued = on_queued
        self._batch = batch
        self._keep = keep
        self._task_events = {state: event for event, state in TASK_EVENTS.items() if event in hooks}
        self._controls = any(event in hooks for event in CONTROL_EVENTS)
        self._files_wanted = any(event in hooks for event in FILE_EVENTS)
        self._files: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._ready = False
        self._dirty = False
        self._summaries = QUIET
        self._alert_wake: datetime | None = None
        self._next_purge: datetime | None = None

    def workflow_changed(self, keys: Sequence[str]) -> None:
        """Keys the cache's watcher applied ("-key": removed); called from the watch thread,
        queued for the next round."""
        if self._files_wanted:
            with self._lock:
                self._files.extend((key, "") for key in keys)

    def workflow_failed(self, errors: Mapping[str, str]) -> None:
        """Files the watcher could not load, with why (a `RefreshError`'s `errors`)."""
        if self._files_wanted:
            with self._lock:
                self._files.extend(errors.items())

    def step(self, now: datetime) -> datetime | None:
        """One round; returns when the next is needed even if nothing happens (`now`: at
        once, more rows wait), or None."""
        if not self._is_leader():
            self._stand_by()
            return None
        if self._next_purge is None or now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY
            self._queue.purge(now - self._keep)
        with self._lock:
            files = list(self._files)
        self._dirty |= self._queue.changed()  # until a round commits: a failed one is redone
        alert_due = self._alert_wake is not None and now >= self._alert_wake
        if self._ready and not (self._dirty or files or alert_due):
            return self._alert_wake
        touched: set[str] = set()
        with self._queue.writing() as db:
            if not self._ready:
                self._prepare(db, now)
            more = self._transitions(db, now, touched) | self._control_events(db, now, touched)
            for key, error in files:
                self._queue_event(db, s.workflow_file(db, key, error, now), now, touched)
            decision = self._alerts(db, now, touched)
        self._ready, self._dirty = True, False
        with self._lock:
            del self._files[: len(files)]
        if decision is not None:
            self._summaries, self._alert_wake = decision.state, decision.wake_at
        for url in touched:
            self._on_queued(url)
        return now if more else self._alert_wake

    def _stand_by(self) -> None:
        """Not leading: the watcher's keys are dropped (the leader reports its own), and the
        next lead starts with a fresh look at the cursors."""
        with self._lock:
            self._files.clear()
        self._ready = False
        self._alert_wake = None

    def _prepare(self, db: apsw.Connection, now: datetime) -> None:
        for source, wanted in ((s.TRANSITIONS, self._task_events), (s.CONTROLS, self._controls)):
            if not wanted:
                s.drop_cursor(db, source)
            elif s.cursor(db, source) is None:
                s.move_cursor(db, source, s.top(db, source))
        urls = {url for urls in self._hooks.values() for url in urls}
        dropped = abandon_others(db, urls | {self._alert_webhook} - {""}, now)
        if dropped:
            log.warning("gave up %d notification(s) to URLs no longer configured", dropped)

    def _transitions(self, db: apsw.Connection, now: datetime, touched: set[str]) -> bool:
        if not self._task_events:
            return False
        after = s.cursor(db, s.TRANSITIONS) or 0
        events, position = s.transitions(db, after, self._task_events, limit=self._batch, now=now)
        for event in events:
            self._queue_event(db, event, now, touched)
        s.move_cursor(db, s.TRANSITIONS, position)
        return len(events) == self._batch

    def _control_events(self, db: apsw.Connection, now: datetime, touched: set[str]) -> bool:
        if not self._controls:
            return False
        events, position = s.controls(db, s.cursor(db, s.CONTROLS) or 0, limit=self._batch, now=now)
        for event in events:
            self._queue_event(db, event, now, touched)
        s.move_cursor(db, s.CONTROLS, position)
        return len(events) == self._batch

    def _queue_event(
        self, db: apsw.Connection, event: s.Event, now: datetime, touched: set[str]
    ) -> None:
        urls = self._hooks.get(event.name, ())
        if urls:
            body = hook_body(event.name, event.at, event.record)
            for url in urls:
                enqueue(db, url=url, event=event.name, body=body, now=now)
            touched.update(urls)

    def _alerts(self, db: apsw.Connection, now: datetime, touched: set[str]) -> Decision | None:
        """One summary of every alert past the cursor when the policy says so; its seq range
        goes with it, to be marked notified when it is delivered."""
        if not self._alert_webhook:
            return None
        pending = s.pending_alerts(db, s.cursor(db, s.ALERTS) or 0, shown=SUMMARY_LINES)
        decision = self._policy.decide(self._summaries, pending.count if pending else 0, now)
        if decision.send and pending is not None:
            body = summary_body(pending.first, total=pending.count)
            enqueue(db, url=self._alert_webhook, event=ALERT_SUMMARY, body=body, now=now,
                    alerts=pending.seqs)  # fmt: skip
            s.move_cursor(db, s.ALERTS, pending.seqs[1])
            touched.add(self._alert_webhook)
        return decision
