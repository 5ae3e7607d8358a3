"""Bench: inbound SMS while the planner runs over 2,000 participants ("never block the door").

Run: .venv/bin/python -m bench.door [--participants 2000] [--inbound 200] [--rate 25] [--json]
Each participant has two chosen meetings and two appointments this week. The planner runs
once in a worker process (as in production) while signed Twilio webhooks arrive at `--rate`
a second through the real web app (our app and a fake Twilio over httpx.ASGITransport). It
reports how long planning took, the longest time one planner transaction held the write
lock, and what the webhooks got: status and time to response (what Twilio waits for).
With --json the last line is one JSON object. BENCH_DATABASE_URL picks PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select

from bench._fake import report, scratch_engine
from bot.channels.sms import TwilioSender
from bot.config import Settings
from bot.web import create_app
from meeting_finder.demo import DEMO_SOURCE, load_demo_meetings
from scheduler.clock import SimClock
from scheduler.planning import plan
from scheduler.ratelimit import RateLimiter
from storage.db import make_engine, session_scope
from storage.meetings_q import meetings_of_source
from storage.models import (
    Appointment,
    Channel,
    ChannelIdentity,
    MeetingStatus,
    MeetingSubscription,
    MessageKind,
    OutboundMessage,
    Participant,
    ParticipantStatus,
)
from tests.fakes.twilio_api import FakeTwilio

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday, midday
PUBLIC = "https://throughcare.example.org"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
OUR_NUMBER = "+447700900001"
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class LockWatch:
    """Record how long each transaction held the write lock: its first write to its end."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.holds: list[float] = []
        event.listen(self.engine, "after_cursor_execute", self._executed)
        event.listen(self.engine, "commit", self._ended)
        event.listen(self.engine, "rollback", self._ended)

    def _executed(self, conn: Connection, *_args: Any) -> None:
        statement = str(_args[1]) if len(_args) > 1 else ""
        if statement.lstrip()[:6].upper() in WRITES:
            conn.info.setdefault("lockwatch_first_write", time.perf_counter())

    def _ended(self, conn: Connection) -> None:
        first = conn.info.pop("lockwatch_first_write", None)
        if first is not None:
            self.holds.append(time.perf_counter() - first)

    @property
    def longest(self) -> float:
        """Return the longest hold seen, in seconds."""
        return max(self.holds, default=0.0)

    def close(self) -> None:
        """Stop watching."""
        event.remove(self.engine, "after_cursor_execute", self._executed)
        event.remove(self.engine, "commit", self._ended)
        event.remove(self.engine, "rollback", self._ended)


def phone_of(n: int) -> str:
    """Return the made-up mobile number of participant number `n`."""
    return f"+4477009{n:05d}"


async def populate(engine: AsyncEngine, *, participants: int, now: datetime = NOW,
                   seed: int = 5) -> list[str]:
    """Enrol consenting SMS participants with two chosen meetings and two appointments each.

    Release dates spread over the last four weeks and the next week, so everyone has
    release-sequence steps to plan; return their phone numbers.
    """
    rng = random.Random(seed)
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=now)
    async with session_scope(engine) as session:
        meetings = [m for m in (await meetings_of_source(session, DEMO_SOURCE)).values()
                    if m.status == MeetingStatus.ACTIVE and m.lat is not None]
        people = [Participant(
            display_name=f"P{n}", release_date=(now + timedelta(days=rng.randint(-28, 8))).date(),
            phone=phone_of(n), preferred_channel=Channel.SMS, status=ParticipantStatus.ACTIVE,
            consent_at=now - timedelta(days=40), release_lat=m.lat, release_lon=m.lon,
            region=m.region, created_at=now, updated_at=now)
            for n, m in ((n, rng.choice(meetings)) for n in range(participants))]
        session.add_all(people)
        await session.flush()
        for p in people:
            pid = p.id or 0
            session.add(ChannelIdentity(participant_id=pid, channel=Channel.SMS,
                                        address=p.phone or "", linked_at=now, updated_at=now))
            for m in rng.sample(meetings, 2):
                session.add(MeetingSubscription(participant_id=pid, meeting_id=m.id or 0,
                                                created_at=now))
            for _ in range(2):
                starts = now + timedelta(hours=rng.randint(20, 7 * 24))
                session.add(Appointment(participant_id=pid, starts_at=starts.replace(minute=0),
                                        place="Probation office", created_at=now))
    return [p.phone or "" for p in people]


@dataclass
class Stopwatch:
    """Wrap an ASGI app: time each request until its response is sent (Twilio's wait)."""

    app: App
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, noting when the last byte of its response went."""
        start = time.perf_counter()

        async def timed(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.statuses.append(int(message["status"]))
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.latencies.append(time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, timed)


@dataclass
class Door:
    """Our web app wired to a fake Twilio, inbound webhooks timed."""

    twilio: FakeTwilio
    client: httpx.AsyncClient
    sender: TwilioSender
    watch: Stopwatch
    codes: list[int] = field(default_factory=list)

    async def text(self, number: str, body: str) -> int:
        """Post one signed inbound SMS; return the status our app answered."""
        try:
            response = await self.twilio.text_from(number, body)
        except httpx.TransportError:
            self.codes.append(599)
            return 599
        self.codes.append(response.status_code)
        return response.status_code

    async def aclose(self) -> None:
        """Close the clients."""
        await self.client.aclose()
        await self.sender.aclose()


def open_door(engine: AsyncEngine, *, now: Callable[[], datetime] = lambda: NOW) -> Door:
    """Build the app around `engine` with a fake Twilio; return the door to post through."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url="sqlite:///unused.db", public_base_url=PUBLIC,
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=SecretStr(AUTH_TOKEN),
        twilio_from_number=OUR_NUMBER)
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, webhook_url=f"{PUBLIC}/sms/inbound",
                        our_number=OUR_NUMBER)
    sender = TwilioSender.from_settings(settings, transport=httpx.ASGITransport(twilio.app))
    app = create_app(settings, engine, senders={"sms": sender}, clock=now,
                     limiter=RateLimiter(clock=SimClock()))
    watch = Stopwatch(app)
    # A 500 must come back as a response (as Twilio would see it), not as a raised error.
    transport = httpx.ASGITransport(watch, raise_app_exceptions=False)  # type: ignore[arg-type]
    twilio.client = httpx.AsyncClient(transport=transport, base_url=PUBLIC, timeout=120)
    return Door(twilio, twilio.client, sender, watch)


async def replies_to(engine: AsyncEngine, numbers: list[str]) -> dict[str, int]:
    """Count the reply rows written to each number."""
    async with session_scope(engine) as session:
        rows = await session.exec(
            select(OutboundMessage.address, func.count())
            .where(col(OutboundMessage.kind) == str(MessageKind.REPLY))
            .where(col(OutboundMessage.address).in_(numbers))
            .group_by(OutboundMessage.address))
        return {address: int(n) for address, n in rows.all()}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 3) if ordered else 0.0


async def post_spread(door: Door, numbers: list[str], *, rate: float) -> list[float]:
    """Post one "MENU" from each number, `rate` a second, each on its own; return send times."""
    tasks, sent_at = [], []
    for number in numbers:
        sent_at.append(time.time())
        tasks.append(asyncio.create_task(door.text(number, "MENU")))
        await asyncio.sleep(1.0 / rate)
    await asyncio.gather(*tasks)
    return sent_at


async def _plan_watched(url: str, now: datetime, started: Any) -> dict[str, Any]:
    engine = make_engine(url)
    watch = LockWatch(engine)
    try:
        began = time.time()
        started.set()
        stats = await plan(engine, now=now)
        return {"started": began, "ended": time.time(), "added": stats.added,
                "transactions": len(watch.holds), "longest": watch.longest}
    finally:
        watch.close()
        await engine.dispose()


def plan_in_worker(url: str, now: datetime, started: Any, results: Any) -> None:
    """Run one planning pass on `url` in this process (the worker's, as in production)."""
    results.put(asyncio.run(_plan_watched(url, now, started)))


async def _plan_beside(url: str, door: Door, senders: list[str], rate: float
                       ) -> tuple[dict[str, Any], list[float]]:
    """Start the planner in another process; once it is planning, post the inbound SMS."""
    spawn = multiprocessing.get_context("spawn")
    started, results = spawn.Event(), spawn.Queue()
    worker = spawn.Process(target=plan_in_worker, args=(url, NOW, started, results))
    worker.start()
    loop = asyncio.get_running_loop()
    try:
        if not await loop.run_in_executor(None, started.wait, 60):
            raise RuntimeError("the planner process did not start")
        sent_at = await post_spread(door, senders, rate=rate)
        planned: dict[str, Any] = await loop.run_in_executor(None, results.get, True, 600)
    finally:
        await loop.run_in_executor(None, worker.join, 10)
    return planned, sent_at


async def run(participants: int, inbound: int, rate: float) -> dict[str, Any]:
    """Build the people, plan in a worker process while inbound SMS arrive; return figures."""
    engine, url = await scratch_engine()
    try:
        t0 = time.perf_counter()
        numbers = await populate(engine, participants=participants)
        built = time.perf_counter() - t0
        door = open_door(engine)
        web = LockWatch(engine)
        senders = random.Random(9).sample(numbers, min(inbound, len(numbers)))
        try:
            planned, sent_at = await _plan_beside(url, door, senders, rate)
        finally:
            web.close()
            await door.aclose()
        replied = await replies_to(engine, senders)
        lat = door.watch.latencies
        return {
            "database": url.split("://")[0], "participants": participants,
            "build_seconds": round(built, 1),
            "planning_seconds": round(planned["ended"] - planned["started"], 2),
            "planned_added": planned["added"],
            "planner_write_transactions": planned["transactions"],
            "longest_write_lock_s": round(planned["longest"], 3),
            "longest_web_write_s": round(web.longest, 3),
            "inbound": len(senders),
            "inbound_during_planning": sum(1 for t in sent_at
                                           if planned["started"] <= t < planned["ended"]),
            "inbound_ok": sum(1 for c in door.codes if c == 200),
            "inbound_failed": sum(1 for c in door.codes if c != 200),
            "replies_written": sum(1 for n in senders if replied.get(n)),
            "inbound_latency_p50_s": _pct(lat, 0.50), "inbound_latency_p99_s": _pct(lat, 0.99),
            "inbound_latency_max_s": round(max(lat, default=0.0), 3),
        }
    finally:
        await engine.dispose()


def main() -> None:
    """Run the bench and print figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=2_000)
    parser.add_argument("--inbound", type=int, default=200)
    parser.add_argument("--rate", type=float, default=25.0, help="inbound SMS a second")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    figures = asyncio.run(run(args.participants, args.inbound, args.rate))
    report(figures, as_json=args.json)


if __name__ == "__main__":
    main()
