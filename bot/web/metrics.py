"""GET /metrics: Prometheus text from the database, with no personal data in any label.

Every label is one of a small fixed set (channel, status, lane, kind, quantile), so the
series stay few however many people use the service. Counters that the database keeps
(messages received, sent) are shown as gauges: they are read, not incremented here, and
go down when retention forgets rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import session_scope
from storage.metrics_q import Snapshot, snapshot
from storage.outbox_q import lane_depths

router = APIRouter()
CONTENT_TYPE = "text/plain; version=0.0.4"
QUANTILES = (0.5, 0.95)

LANE_METRICS = (
    ("throughcare_outbox_queued", "Queued outbox messages, due or not, by lane and channel."),
    ("throughcare_outbox_due", "Outbox messages due now, not yet claimed, by lane and channel."),
    ("throughcare_outbox_oldest_due_age_seconds",
     "How long the oldest due message has waited, by lane and channel (0 when none)."),
)


def _head(name: str, help_text: str, kind: str = "gauge") -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _labels(**values: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in values.items())
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def quantile(values: Iterable[float], q: float) -> float:
    """Return the q-quantile of `values` (nearest rank), 0 when there are none."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def lane_lines(engine: AsyncEngine, now: datetime) -> list[str]:
    """Return the per-lane, per-channel queue gauges."""
    async with session_scope(engine) as session:
        depths = await lane_depths(session, now=now)
    lines: list[str] = []
    for n, (name, help_text) in enumerate(LANE_METRICS):
        lines += _head(name, help_text)
        for lane, channel, queued, due, oldest in sorted(depths):
            age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
            value = (queued, due, round(age, 3))[n]
            lines.append(f"{name}{_labels(lane=str(lane), channel=str(channel))} {value}")
    return lines


def traffic_lines(snap: Snapshot) -> list[str]:
    """Return the message counts: in by channel, out by status and channel."""
    lines = _head("throughcare_up", "1 while the web process answers.") + ["throughcare_up 1"]
    lines += _head("throughcare_outbox_messages", "Outbox messages by status.")
    by_status: dict[str, int] = {}
    for (status, _channel), n in snap.outbound.items():
        by_status[status] = by_status.get(status, 0) + n
    lines += [f"throughcare_outbox_messages{_labels(status=s)} {n}"
              for s, n in sorted(by_status.items())]
    lines += _head("throughcare_inbound_messages_total",
                   "Inbound messages received and still kept, all channels.")
    lines.append(f"throughcare_inbound_messages_total {sum(snap.inbound.values())}")
    lines += _head("throughcare_inbound_messages", "Inbound messages received, by channel.")
    lines += [f"throughcare_inbound_messages{_labels(channel=c)} {n}"
              for c, n in sorted(snap.inbound.items())]
    lines += _head("throughcare_outbound_messages", "Outbox messages by status and channel.")
    lines += [f"throughcare_outbound_messages{_labels(status=s, channel=c)} {n}"
              for (s, c), n in sorted(snap.outbound.items())]
    return lines


def latency_lines(snap: Snapshot) -> list[str]:
    """Return answer latency quantiles (inbound received to answer sent) over the last hour."""
    name = "throughcare_answer_latency_seconds"
    lines = _head(name, "Seconds from an inbound message to its answer being sent, answers "
                        "sent in the last hour, by kind (reply, crisis).")
    for kind, values in sorted(snap.answer_seconds.items()):
        lines += [f"{name}{_labels(kind=kind, quantile=str(q))} {round(quantile(values, q), 3)}"
                  for q in QUANTILES]
    lines += _head(f"{name}_samples", "Answers sent in the last hour, by kind.")
    lines += [f"{name}_samples{_labels(kind=kind)} {len(values)}"
              for kind, values in sorted(snap.answer_seconds.items())]
    return lines


def people_lines(snap: Snapshot) -> list[str]:
    """Return link failures, identities and participants by status, and the last send."""
    lines = _head("throughcare_link_failures_last_hour",
                  "Wrong link codes tried in the last hour, from every sender.")
    lines.append(f"throughcare_link_failures_last_hour {snap.link_failures}")
    lines += _head("throughcare_identities", "Channel identities by status and channel "
                                             "(opted_out, blocked, unreachable: stopped).")
    lines += [f"throughcare_identities{_labels(status=s, channel=c)} {n}"
              for (s, c), n in sorted(snap.identities.items())]
    stopped = sum(n for (s, _c), n in snap.identities.items() if s != "active")
    lines += _head("throughcare_identities_stopped",
                   "Channel identities we can no longer send to.")
    lines.append(f"throughcare_identities_stopped {stopped}")
    lines += _head("throughcare_participants", "Participants by status.")
    lines += [f"throughcare_participants{_labels(status=s)} {n}"
              for s, n in sorted(snap.participants.items())]
    lines += _head("throughcare_last_send_timestamp_seconds",
                   "When the dispatcher last handed a message to a provider (Unix time, "
                   "0 if never).")
    last = snap.last_sent_at.timestamp() if snap.last_sent_at is not None else 0
    lines.append(f"throughcare_last_send_timestamp_seconds {round(last, 3)}")
    return lines


async def render(engine: AsyncEngine, now: datetime) -> str:
    """Return the whole /metrics page as of `now`."""
    async with session_scope(engine) as session:
        snap = await snapshot(session, now=now)
    lines = traffic_lines(snap) + latency_lines(snap) + people_lines(snap)
    lines += await lane_lines(engine, now)
    return "\n".join(lines) + "\n"


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Serve the metrics as Prometheus text."""
    state = request.app.state
    return PlainTextResponse(await render(state.engine, state.clock()), media_type=CONTENT_TYPE)
