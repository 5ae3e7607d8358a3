"""GET /metrics: Prometheus text, with no personal data in any label.

Each app has its own registry (never prometheus_client's global one). It holds the webhook
latency histogram, the process-wide provider error counter (`scheduler.telemetry`) and a
collector that turns one database snapshot, read at scrape time, into families.

Every label is one of a small fixed set (channel, kind, status, lane, route, quantile, and a
provider's error code checked for shape and capped in number), so the series stay few however
many people use the service. Counts the database keeps (messages in and out) are gauges: they
are read, not incremented here, and go down when retention forgets rows.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.web.timing import WebhookTimer
from scheduler import telemetry
from storage.db import session_scope
from storage.metrics_q import Snapshot, snapshot

router = APIRouter()
# The classic text format, which every Prometheus reads (prometheus_client's own constant for it
# changed name between versions).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
QUANTILES = (0.5, 0.95)
LANES = ("urgent", "bulk")
WEBHOOK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# The code in an error we stored: "twilio 21610: ...", "twilio http 500", "telegram 403: ...",
# also inside "gave up after 5 tries: twilio http 503" or "by sms: twilio 21211: ...".
PROVIDER_CODE = re.compile(r"\b(?:twilio|telegram)(?: http)? ([0-9]{1,6})\b")


def quantile(values: Iterable[float], q: float) -> float:
    """Return the q-quantile of `values` (nearest rank), 0 when there are none."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _gauge(name: str, help_text: str, samples: Iterable[tuple[tuple[str, ...], float]] = (),
           *, names: tuple[str, ...] = ()) -> GaugeMetricFamily:
    """Return a gauge family with one sample per (label values, value)."""
    family = GaugeMetricFamily(name, help_text, labels=list(names))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def traffic(snap: Snapshot) -> Iterator[Metric]:
    """Yield messages in by channel and out by channel, kind and status."""
    yield _gauge("throughcare_up", "1 while the web process answers.", [((), 1)])
    yield _gauge("throughcare_messages_in", "Inbound messages received and still kept, by "
                 "channel.", (((c,), n) for c, n in sorted(snap.inbound.items())),
                 names=("channel",))
    yield _gauge("throughcare_messages_out", "Outbox messages kept, by channel, kind and "
                 "status.", (((c, k, s), n) for (c, k, s), n in sorted(snap.outbound.items())),
                 names=("channel", "kind", "status"))


def provider_errors(snap: Snapshot) -> Iterator[Metric]:
    """Yield outbox messages whose last recorded error carries a provider's code, by code."""
    counts: Counter[tuple[str, str]] = Counter()
    for (channel, error), n in snap.errors.items():
        found = PROVIDER_CODE.search(error)
        if found:
            counts[telemetry.channel_label(channel), telemetry.code_label(found[1])] += n
    yield _gauge("throughcare_outbox_provider_errors", "Outbox messages kept whose last "
                 "recorded error has this provider error code, by channel and code.",
                 sorted(counts.items()), names=("channel", "code"))


def latency(snap: Snapshot) -> Iterator[Metric]:
    """Yield answer latency quantiles (inbound received to answer sent) over the last hour."""
    name = "throughcare_answer_latency_seconds"
    kinds = sorted(snap.answer_seconds.items())
    yield _gauge(name, "Seconds from an inbound message to its answer being sent, answers sent "
                 "in the last hour, by kind (reply, crisis) and quantile.",
                 (((kind, str(q)), round(quantile(values, q), 3))
                  for kind, values in kinds for q in QUANTILES), names=("kind", "quantile"))
    yield _gauge(f"{name}_samples", "Answers sent in the last hour, by kind.",
                 (((kind,), len(values)) for kind, values in kinds), names=("kind",))


def people(snap: Snapshot) -> Iterator[Metric]:
    """Yield link failures, identities and participants by status, and the last send."""
    yield _gauge("throughcare_link_failures_last_hour",
                 "Wrong link codes tried in the last hour, from every sender.",
                 [((), snap.link_failures)])
    yield _gauge("throughcare_identities", "Channel identities by status and channel "
                 "(opted_out, blocked, unreachable: stopped).",
                 sorted(snap.identities.items()), names=("status", "channel"))
    stopped = sum(n for (s, _c), n in snap.identities.items() if s != "active")
    yield _gauge("throughcare_identities_stopped", "Channel identities we can no longer "
                 "send to.", [((), stopped)])
    yield _gauge("throughcare_participants", "Participants by status.",
                 (((s,), n) for s, n in sorted(snap.participants.items())), names=("status",))
    last = snap.last_sent_at.timestamp() if snap.last_sent_at is not None else 0.0
    yield _gauge("throughcare_last_send_timestamp_seconds", "When the dispatcher last handed "
                 "a message to a provider (Unix time, 0 if never).", [((), round(last, 3))])


def lanes(snap: Snapshot, now: datetime) -> Iterator[Metric]:
    """Yield queue depth and dispatch lag per lane, and per lane and channel."""
    rows = [(lane, channel, queued, due,
             max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
            for lane, channel, queued, due, oldest in sorted(snap.lanes)]
    names = ("lane", "channel")
    yield _gauge("throughcare_queue_depth", "Queued outbox messages, due or not, by lane.",
                 (((lane,), sum(r[2] for r in rows if r[0] == lane)) for lane in LANES),
                 names=("lane",))
    yield _gauge("throughcare_dispatch_lag_seconds", "How long the oldest due message of the "
                 "lane has waited (0 when none is due).",
                 (((lane,), round(max((r[4] for r in rows if r[0] == lane), default=0.0), 3))
                  for lane in LANES), names=("lane",))
    yield _gauge("throughcare_outbox_queued", "Queued outbox messages, due or not, by lane "
                 "and channel.", (((r[0], r[1]), r[2]) for r in rows), names=names)
    yield _gauge("throughcare_outbox_due", "Outbox messages due now, not yet claimed, by lane "
                 "and channel.", (((r[0], r[1]), r[3]) for r in rows), names=names)
    yield _gauge("throughcare_outbox_oldest_due_age_seconds", "How long the oldest due "
                 "message has waited, by lane and channel (0 when none).",
                 (((r[0], r[1]), round(r[4], 3)) for r in rows), names=names)


class DatabaseCollector(Collector):
    """Families read from the database: the route reads a snapshot, then the text is made.

    The route sets `reading` and renders with no await in between, so two scrapes at once
    each show their own snapshot.
    """

    def __init__(self) -> None:
        self.reading: tuple[Snapshot, datetime] | None = None

    def describe(self) -> list[Metric]:
        """Describe nothing, so registering never asks for a reading."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield every database family of the latest reading."""
        if self.reading is None:
            return
        snap, now = self.reading
        for part in (traffic(snap), provider_errors(snap), latency(snap), people(snap),
                     lanes(snap, now)):
            yield from part


@dataclass
class AppMetrics:
    """One app's registry and the metrics it updates."""

    registry: CollectorRegistry
    database: DatabaseCollector
    webhook_latency: Histogram


def install_metrics(app: FastAPI, webhook_paths: Iterable[str]) -> AppMetrics:
    """Give the app its registry, time its webhooks and serve /metrics.

    Install after the other middleware, so the timing includes them too.
    """
    registry = CollectorRegistry(auto_describe=False)
    database = DatabaseCollector()
    registry.register(database)
    telemetry.register(registry)
    histogram = Histogram("throughcare_webhook_latency_seconds", "Seconds from a provider's "
                          "webhook request arriving to the last byte of our answer, by route.",
                          ("route",), buckets=WEBHOOK_BUCKETS, registry=registry)
    paths = frozenset(webhook_paths)
    for path in sorted(paths):
        histogram.labels(route=path)  # every route shows, at zero, before its first request
    app.state.metrics = AppMetrics(registry, database, histogram)
    app.add_middleware(WebhookTimer, histogram=histogram, routes=paths)
    app.include_router(router)
    return app.state.metrics


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Serve the metrics as Prometheus text."""
    state = request.app.state
    now = state.clock()
    async with session_scope(state.engine) as session:
        snap = await snapshot(session, now=now)
    found: AppMetrics = state.metrics
    found.database.reading = (snap, now)
    return Response(generate_latest(found.registry), media_type=CONTENT_TYPE)
