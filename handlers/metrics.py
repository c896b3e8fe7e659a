"""Prometheus metrics at /metrics (DESIGN §6), in the text format (OpenMetrics when asked).

Nothing is counted here: each scrape reads the figures where they live. The store gives the
records per state and the pauses, the cache the workflow files, the taskmaster its `Counters`
and the process its `Metrics` (timings). A standby serves the same families, with
`flowlord_leader 0` and the taskmaster's counters at zero (it sends and resolves nothing).

- `flowlord_tasks{state}` (gauge): records per state now, every state listed.
- `flowlord_sent_total{topic}`: records the outbox put on the bus, by topic (the task type).
- `flowlord_done_total{result}`: done messages resolved, every result listed.
- `flowlord_retries_total`: retry records made.
- `flowlord_alerts_total{kind}`: alerts raised by this process, every kind listed.
- `flowlord_bad_messages_total`: bus messages that could not be resolved.
- `flowlord_refresh_errors_total`: refreshes in which a file would not load or a folder could
  not be listed (one per refresh).
- `flowlord_reload_seconds` (histogram): each refresh, at start-up, by the watcher or the API.
- `flowlord_workflow_files{state}` (gauge): each known file once: `error` (its current bytes
  do not load; its last good phases may still run), else `paused` (the whole file), else `ok`.
- `flowlord_phase_duration_seconds{workflow,phase}` (summary: count and sum, no quantiles):
  ended minus started of the tasks resolved since the process started.
- `flowlord_done_to_child_seconds` (histogram): a done batch's arrival on the bus to the send
  of the children it started, once per child.
- `flowlord_leader` (gauge): 1 while this process holds the lease, else 0.

The registry is the app's own, never prometheus_client's global one: two apps in one process
(tests) never see each other's figures.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from starlette.concurrency import run_in_threadpool

from flowlord.loop import Counters
from flowlord.metrics import HistogramSnapshot, Metrics
from flowlord.state import ALERT_KINDS
from handlers.context import ApiContext
from workflow import Result
from workflow.controls import WHOLE_FILE

router = APIRouter(tags=["metrics"])

FILE_STATES = ("ok", "error", "paused")
RESULTS = tuple(result.value for result in Result if result is not Result.NONE)


class FlowlordCollector:
    """The families of one API's process, read at each scrape."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def collect(self) -> Iterator[Metric]:
        ctx = self._ctx
        tasks = GaugeMetricFamily("flowlord_tasks", "Task records by state.", labels=["state"])
        yield _filled(tasks, ctx.store.stats().states)
        yield from _counters(ctx.counters)
        yield from _timings(ctx.metrics)
        files = GaugeMetricFamily(
            "flowlord_workflow_files",
            "Workflow files: error (does not load), else paused (the whole file), else ok.",
            labels=["state"],
        )
        yield _filled(files, _file_states(ctx))
        leading = 1 if ctx.liveness.leading() else 0
        yield GaugeMetricFamily("flowlord_leader", "1 while this process leads.", value=leading)


def _counters(counters: Counters) -> Iterator[Metric]:
    sent = CounterMetricFamily("flowlord_sent_total", "Tasks sent, by topic.", labels=["topic"])
    yield _filled(sent, dict(counters.sent_topics))
    done = CounterMetricFamily(
        "flowlord_done_total", "Done messages resolved, by result.", labels=["result"]
    )
    yield _filled(done, {**dict.fromkeys(RESULTS, 0), **dict(counters.done_results)})
    yield CounterMetricFamily("flowlord_retries_total", "Retries made.", value=counters.retries)
    alerts = CounterMetricFamily(
        "flowlord_alerts_total", "Alerts raised, by kind.", labels=["kind"]
    )
    yield _filled(alerts, {**dict.fromkeys(ALERT_KINDS, 0), **counters.alerts_by_kind()})
    yield CounterMetricFamily(
        "flowlord_bad_messages_total", "Messages that could not be resolved.",
        value=counters.bad_messages,
    )  # fmt: skip


def _timings(metrics: Metrics) -> Iterator[Metric]:
    yield CounterMetricFamily(
        "flowlord_refresh_errors_total", "Refreshes in which a workflow file or folder failed.",
        value=metrics.refresh_errors,
    )  # fmt: skip
    yield _histogram(
        "flowlord_reload_seconds", "Duration of each refresh of the workflow files.",
        metrics.reload.snapshot(),
    )  # fmt: skip
    yield _histogram(
        "flowlord_done_to_child_seconds", "From a done message's arrival to its children's send.",
        metrics.done_to_child.snapshot(),
    )  # fmt: skip
    durations = SummaryMetricFamily(
        "flowlord_phase_duration_seconds", "Started to ended of the tasks done, by phase.",
        labels=["workflow", "phase"],
    )  # fmt: skip
    for (workflow, phase), (count, total) in sorted(metrics.phase_durations.snapshot().items()):
        durations.add_metric([workflow, phase], count, total)
    yield durations


def _filled(family: CounterMetricFamily | GaugeMetricFamily, values: Mapping[str, float]) -> Metric:
    """`family` with one sample per value of its one label."""
    for label, value in sorted(values.items()):
        family.add_metric([str(label)], value)
    return family


def _histogram(name: str, documentation: str, snapshot: HistogramSnapshot) -> Metric:
    """Prometheus buckets are cumulative, the last one `+Inf`."""
    buckets, seen = [], 0
    for bound, count in zip((*snapshot.bounds, float("inf")), snapshot.counts, strict=True):
        seen += count
        buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), seen))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=snapshot.total)


def _file_states(ctx: ApiContext) -> dict[str, int]:
    paused = {c.workflow for c in ctx.store.controls() if c.phase == WHOLE_FILE and not c.enabled}
    states = dict.fromkeys(FILE_STATES, 0)
    for file in ctx.cache.workflow_files():
        states["error" if file.error else "paused" if file.file_path in paused else "ok"] += 1
    return states


def _registry(app: FastAPI) -> CollectorRegistry:
    """The app's registry, made at its first scrape. Called in the event loop only, so two
    first scrapes at once cannot make two."""
    registry = getattr(app.state, "metrics_registry", None)
    if registry is None:
        registry = app.state.metrics_registry = CollectorRegistry()
        registry.register(FlowlordCollector(app.state.context))
    return registry


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {
        "description": "The Prometheus text format (0.0.4), or OpenMetrics when the Accept "
        "header asks for it",
        "content": {"text/plain": {"schema": {"type": "string"}},
                    "application/openmetrics-text": {"schema": {"type": "string"}}},
    }},
)  # fmt: skip
async def metrics(request: Request) -> Response:
    """Counters, gauges and histograms of this process and its database, for Prometheus."""
    registry = _registry(request.app)
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    body = await run_in_threadpool(encode, registry)  # the store's counts read off the loop
    return Response(body, media_type=content_type)
