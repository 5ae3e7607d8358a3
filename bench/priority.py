"""Bench: crisis and ordinary replies during a 2,000-text SMS broadcast at TWILIO_MPS=1.

Run: .venv/bin/python -m bench.priority [--recipients 2000] [--replies 20] [--mps 1] [--json]
The real web app, the real TwilioSender (to a fake Twilio over httpx.ASGITransport) and a
running DispatchLoop share one limiter (`build_limiter`), on the real clock. While the
broadcast goes out, linked participants text in: one crisis text and `--replies` ordinary
ones ("MENU"), evenly spread over `--spread` seconds. For each urgent message: wait = when
its reply reached the fake minus when the inbound was posted; an overtake is a broadcast
text that reached the fake more than one send slot after an urgent inbound was posted
and before its reply (so not the one already on the wire). The run stops a couple of
seconds after the last urgent reply, not when the broadcast ends. With --json the last line
is one JSON object. BENCH_DATABASE_URL picks PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from bench._fake import report, scratch_engine, stop_loop
from bot.channels.inbox import utc_now
from bot.channels.render import sms_segments
from bot.channels.sms import TwilioSender
from bot.config import Settings
from bot.serve import build_limiter
from bot.web import create_app
from scheduler.service import DispatchLoop
from storage.db import session_scope
from storage.models import (
    Channel,
    ChannelIdentity,
    MessageKind,
    Participant,
    ParticipantStatus,
    Priority,
)
from storage.outbox_q import enqueue_many
from tests.fakes.twilio_api import FakeTwilio

PUBLIC = "https://throughcare.example.org"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
OUR_NUMBER = "+447700900001"
CRISIS = "I want to kill myself"
ORDINARY = "MENU"
SLOT_SLACK = 1.0  # a broadcast text this soon after an inbound was already on the wire


class StampedList(list[dict[str, Any]]):
    """The fake's record of sent messages, with when each arrived (perf_counter seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def append(self, item: dict[str, Any]) -> None:
        """Note the time, then record the message."""
        self.at.append(time.perf_counter())
        super().append(item)


@dataclass
class Urgent:
    """One urgent inbound text and what became of it."""

    number: str
    body: str
    posted: float = 0.0
    replied: float | None = None
    task: asyncio.Task[httpx.Response] | None = None


def phone_of(n: int) -> str:
    """Return participant number `n`'s mobile (UK drama range, apart from the broadcast's)."""
    return f"+4477008{n:05d}"


async def add_people(engine: AsyncEngine, count: int, *, now: datetime) -> list[str]:
    """Enrol `count` consenting participants, each linked to an SMS number; return numbers."""
    async with session_scope(engine) as session:
        people = [Participant(display_name=f"P{n}", release_date=(now - timedelta(days=3)).date(),
                              phone=phone_of(n), preferred_channel=Channel.SMS,
                              status=ParticipantStatus.ACTIVE,
                              consent_at=now - timedelta(days=1)) for n in range(count)]
        session.add_all(people)
        await session.flush()
        session.add_all(ChannelIdentity(participant_id=p.id or 0, channel=Channel.SMS,
                                        address=p.phone or "", linked_at=now, updated_at=now)
                        for p in people)
    return [p.phone or "" for p in people]


async def enqueue_broadcast(engine: AsyncEngine, recipients: int, *, now: datetime) -> None:
    """Queue a bulk SMS broadcast, as `send_broadcast` writes it, for someone with no quiet
    hours (the bench runs on the wall clock, at whatever hour: bulk must not wait for 8am)."""
    async with session_scope(engine) as session:
        owl = Participant(display_name="Owl", release_date=now.date(), quiet_start_hour=0,
                          quiet_end_hour=0, status=ParticipantStatus.ACTIVE)
        session.add(owl)
        await session.flush()
        await enqueue_many(session, [
            {"channel": "sms", "address": f"+4477009{i:05d}", "body": f"Meeting moved {i}",
             "dedupe_key": f"bc:1:{i}", "kind": str(MessageKind.BROADCAST),
             "priority": Priority.BULK, "broadcast_id": 1, "participant_id": owl.id}
            for i in range(recipients)], now=now)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 3) if ordered else 0.0


async def _until(check: Callable[[], bool], limit: float) -> bool:
    """Wait until `check()` is true; say if it became true within `limit` seconds."""
    deadline = time.perf_counter() + limit
    while not check():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def run(recipients: int, replies: int, mps: float, spread: float) -> dict[str, Any]:
    """Broadcast, text in during it, return the urgent waits and overtakes."""
    engine, url = await scratch_engine()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url="sqlite:///unused.db", public_base_url=PUBLIC,
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=SecretStr(AUTH_TOKEN),
        twilio_from_number=OUR_NUMBER, twilio_mps=mps, telegram_bot_token=None)
    sent = StampedList()
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, webhook_url=f"{PUBLIC}/sms/inbound",
                        our_number=OUR_NUMBER, messages=sent)
    sender = TwilioSender.from_settings(settings, transport=httpx.ASGITransport(twilio.app))
    limiter = build_limiter(settings, engine)
    app = create_app(settings, engine, senders={"sms": sender}, clock=utc_now, limiter=limiter)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=PUBLIC, timeout=60)
    twilio.client = client
    loop = DispatchLoop(engine, {"sms": sender}, limiter=limiter)
    try:
        numbers = await add_people(engine, replies + 1, now=datetime.now(UTC))
        await enqueue_broadcast(engine, recipients, now=datetime.now(UTC))
        crisis_at = (replies + 1) // 2
        urgent = [Urgent(n, CRISIS if i == crisis_at else ORDINARY)
                  for i, n in enumerate(numbers)]
        await loop.start()
        started = time.perf_counter()
        if not await _until(lambda: len(sent) >= 3, 30):  # the broadcast is going
            raise RuntimeError("the broadcast did not start")
        gap = spread / max(1, len(urgent) - 1)
        for i, u in enumerate(urgent):
            await asyncio.sleep(max(0.0, started + 3 + i * gap - time.perf_counter()))
            u.posted = time.perf_counter()
            u.task = asyncio.create_task(twilio.text_from(u.number, u.body))
        mine = {u.number for u in urgent}
        done = await _until(lambda: mine <= {m["to"] for m in sent}, 60)
        await asyncio.sleep(2.0)
        ended = time.perf_counter()
        codes = [(await u.task).status_code for u in urgent if u.task is not None]
    finally:
        await stop_loop(loop)
        await client.aclose()
        await sender.aclose()
        await engine.dispose()
    log = list(zip(sent.at, sent, strict=True))
    bulk = [(at, m) for at, m in log if m["to"] not in mine]
    overtakes: list[int] = []
    urgent_ahead: list[int] = []
    for u in urgent:
        u.replied = next((at for at, m in log if m["to"] == u.number and at >= u.posted), None)
        end = u.replied if u.replied is not None else ended
        overtakes.append(sum(1 for at, _ in bulk if u.posted + SLOT_SLACK < at < end))
        urgent_ahead.append(sum(1 for at, m in log if m["to"] in mine and m["to"] != u.number
                                and u.posted < at < end))
    waits = [u.replied - u.posted for u in urgent if u.replied is not None]
    alone = [u.replied - u.posted for u, n in zip(urgent, urgent_ahead, strict=True)
             if u.replied is not None and n == 0]
    crisis = urgent[crisis_at]
    crisis_wait = round(crisis.replied - crisis.posted, 3) if crisis.replied else None
    segments = [int(m["num_segments"]) for _, m in log]
    span = (log[-1][0] - log[0][0]) if len(log) > 1 else 1.0
    urgent_segments = sum(int(m["num_segments"]) for _, m in log if m["to"] in mine)
    return {
        "database": url.split("://")[0], "mps_limit": mps, "recipients": recipients,
        "urgent": len(urgent), "urgent_replied": len(waits), "all_replied": done,
        "inbound_ok": sum(1 for c in codes if c == 200),
        "urgent_wait_p50_s": _pct(waits, 0.50), "urgent_wait_p99_s": _pct(waits, 0.99),
        "urgent_wait_max_s": round(max(waits, default=0.0), 3),
        "crisis_wait_s": crisis_wait,
        "urgent_waits_s": [round(w, 2) for w in waits],
        "wait_p99_no_urgent_ahead_s": _pct(alone, 0.99),
        "overtakes": sum(overtakes), "urgent_overtaken": sum(1 for n in overtakes if n),
        "max_urgent_ahead": max(urgent_ahead, default=0),
        "urgent_reply_segments": sorted({sms_segments(m["body"]) for _, m in log
                                         if m["to"] in mine}),
        "urgent_load_fraction": round(urgent_segments / (mps * spread), 2),
        "bulk_sent": len(bulk), "run_seconds": round(ended - started, 1),
        "achieved_rate_fraction": round(sum(segments[:-1]) / span / mps, 3),
        "bulk_rate_fraction": round(sum(int(m["num_segments"]) for _, m in bulk)
                                    / (ended - started) / mps, 3),
    }


def main() -> None:
    """Run the bench and print figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=2_000)
    parser.add_argument("--replies", type=int, default=20, help="ordinary replies (MENU)")
    parser.add_argument("--mps", type=float, default=1.0, help="TWILIO_MPS")
    parser.add_argument("--spread", type=float, default=25.0, help="seconds the texts span")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    figures = asyncio.run(run(args.recipients, args.replies, args.mps, args.spread))
    report(figures, as_json=args.json)


if __name__ == "__main__":
    main()
