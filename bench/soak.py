"""Soak: the inbound load, the worker's planning and dispatch, a broadcast and a Twilio outage.

Run: .venv/bin/python -m bench.soak [--minutes 1] [--senders 50] [--rate 20] [--json]
Everything `bench.inbound` does, for `--minutes`, while in the same process the worker runs
as `throughcare run` runs it: a DispatchLoop sending what falls due and a planning pass every
`--plan-every` seconds, with a `--bulk`-text SMS broadcast queued at the start (so bulk is in
flight throughout at TWILIO_MPS=`--mps`). A third of the way in, the fake Twilio answers
every send with a 500 for `--fault-seconds`, then one 429 with Retry-After: 2. Figures: those
of bench.inbound, plus messages lost (must be 0: every accepted inbound recorded, answered
and its answers sent; no broadcast text failed for good), doubled (must be 0: no send twice
to a broadcast address, no send without its row), crisis latency p95 while the broadcast was
in flight, the faults answered, and what /metrics said at the end. With --json the last line
is one JSON object. BENCH_DATABASE_URL picks PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from bench._fake import report, stop_loop
from bench.inbound import Rig, arguments, drain, figures, idle_crises, load, start_rig, stop_rig
from bench.priority import enqueue_broadcast
from scheduler.planning import plan
from scheduler.service import DispatchLoop
from storage.db import session_scope
from storage.models import OutboundMessage, OutboxStatus
from tests.fakes.twilio_api import FakeTwilio


async def planner(engine: Any, loop: DispatchLoop, every: float, passes: list[float]) -> None:
    """Run a planning pass every `every` seconds, as the worker's job does; note each one."""
    while True:
        started = time.perf_counter()
        await plan(engine, now=datetime.now(UTC))
        loop.notify()
        passes.append(time.perf_counter() - started)
        await asyncio.sleep(every)


async def outage(twilio: FakeTwilio, *, after: float, seconds: float) -> None:
    """After `after` s, make Twilio answer 500 for `seconds`, then one 429 (Retry-After 2)."""
    await asyncio.sleep(after)
    ends = time.perf_counter() + seconds
    while time.perf_counter() < ends:
        while len(twilio.failures) < 3:
            twilio.fail_next(20500)
        await asyncio.sleep(0.05)
    twilio.failures.clear()
    twilio.fail_next(20429, retry_after=2)


async def bulk_state(rig: Rig) -> dict[str, Any]:
    """Count the broadcast's rows by status, and sends to any broadcast address twice."""
    async with session_scope(rig.engine) as session:
        statuses = Counter(str(s) for s in (await session.exec(
            select(OutboundMessage.status).where(OutboundMessage.broadcast_id == 1))).all())
    mine = set(rig.numbers)
    twice = sum(n - 1 for n in Counter(m["to"] for m in rig.sent if m["to"] not in mine
                                       ).values() if n > 1)
    return {"bulk_by_status": dict(statuses), "bulk_doubled": twice,
            "bulk_failed": statuses.get(str(OutboxStatus.FAILED), 0)}


def metric(text: str, labels: str, name: str = "throughcare_answer_latency_seconds"
           ) -> float | None:
    """Return one sample's value from /metrics text, None if it is not there."""
    head = f"{name}{{{labels}}} "
    return next((float(line[len(head):]) for line in text.splitlines()
                 if line.startswith(head)), None)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Baseline crises, then load + worker + broadcast + outage; drain, check, report."""
    rig = await start_rig(senders=args.senders, mps=args.mps)
    loop = DispatchLoop(rig.engine, {"sms": rig.sender}, limiter=rig.limiter)
    passes: list[float] = []
    side: list[asyncio.Task[None]] = []
    try:
        await idle_crises(rig)
        await enqueue_broadcast(rig.engine, args.bulk, now=datetime.now(UTC))
        await loop.start()
        seconds = args.minutes * 60
        side = [asyncio.create_task(planner(rig.engine, loop, args.plan_every, passes)),
                asyncio.create_task(outage(rig.twilio, after=seconds / 3,
                                           seconds=args.fault_seconds))]
        elapsed = await load(rig, seconds=seconds, senders=args.senders, rate=args.rate,
                             crisis_every=args.crisis_every)
        drained = await drain(rig, limit=120)
        out = await figures(rig, elapsed, drained)
        bulk = await bulk_state(rig)
        shown = (await rig.client.get("/metrics")).text
    finally:
        for task in side:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await stop_loop(loop)
        await stop_rig(rig)
    errors = Counter(e["status"] for e in rig.twilio.errors)
    return {
        "minutes": args.minutes, "senders": args.senders, "target_rate": args.rate,
        "twilio_mps": args.mps, "bulk": args.bulk, **out,
        "lost": out["lost"] + bulk["bulk_failed"],
        "doubled": out["doubled"] + bulk["bulk_doubled"],
        "crisis_p95_with_bulk_in_flight_s": out["crisis_load_p95_s"],
        "bulk_left_queued": bulk["bulk_by_status"].get(str(OutboxStatus.QUEUED), 0),
        **bulk, "twilio_500s": errors.get(500, 0), "twilio_429s": errors.get(429, 0),
        "planning_passes": len(passes),
        "planning_pass_max_s": round(max(passes, default=0.0), 3),
        "metrics_reply_p95_s": metric(shown, 'kind="reply",quantile="0.95"'),
        "metrics_crisis_p95_s": metric(shown, 'kind="crisis",quantile="0.95"'),
    }


def main() -> None:
    """Run the soak and print figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--bulk", type=int, default=3000, help="broadcast texts queued")
    parser.add_argument("--plan-every", type=float, default=10.0, help="seconds")
    parser.add_argument("--fault-seconds", type=float, default=10.0)
    arguments(parser)
    parser.set_defaults(mps=30.0)
    args = parser.parse_args()
    report(asyncio.run(run(args)), as_json=args.json)


if __name__ == "__main__":
    main()
