"""Bench: the inbound SMS path under load, from the signed webhook to the reply at Twilio.

Run: .venv/bin/python -m bench.inbound [--seconds 20] [--senders 50] [--rate 20] [--json]
The real web app is served by uvicorn on loopback; the fake Twilio posts correctly signed
inbound webhooks to it over real HTTP (so a webhook's latency ends at its 200, before the
reply is sent, as with Twilio) and takes the replies through the real TwilioSender. `--senders`
linked, consenting participants text in at `--rate` messages a second in all, open loop, for
`--seconds`: MEETINGS with a postcode, CHECKIN and its answers, small talk, and every
`--crisis-every`th message a crisis text. Before the load, a few crisis texts are sent one at
a time: crisis latency under load is compared with that idle baseline in the same run.
After the load the outbox drains and every accepted inbound is checked: recorded once, with
its answers written and each sent exactly once (lost and doubled must be 0).
Figures: requests/s achieved, webhook latency p50/p95/p99 (the reply rows are committed
before the 200, so this bounds "inbound to reply row written"), 5xx, inbound to reply at
Twilio p50/p95, crisis latency idle and under load and their ratio. With --json the last
line is one JSON object. BENCH_DATABASE_URL picks PostgreSQL (the bench empties it; it never
reads DATABASE_URL, which may name a real database).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bench._fake import report, scratch_engine
from bench.priority import StampedList, add_people
from bot.channels.inbox import utc_now
from bot.channels.sms import TwilioSender
from bot.config import Settings
from bot.serve import build_limiter
from bot.web import create_app
from bot.web.metrics import quantile
from meeting_finder.demo import load_demo_meetings
from scheduler.ratelimit import RateLimiter
from storage.db import session_scope
from storage.models import InboundMessage, OutboundMessage, OutboxStatus, Participant
from tests.fakes.twilio_api import FakeTwilio

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
OUR_NUMBER = "+447700900001"
CRISIS = "I want to kill myself"
SCRIPT = ("MEETINGS ST3 2QH", "CHECKIN", "7", "3", "SKIP", "hello there", "MENU", "thanks",
          "what is on today", "ok")
IDLE_CRISES = 5
PENDING = (OutboxStatus.QUEUED, OutboxStatus.SENDING)
DONE = {OutboxStatus.SENT, OutboxStatus.DELIVERED}


@dataclass
class Post:
    """One inbound webhook and what the app said."""

    sid: str
    number: str
    crisis: bool
    idle: bool = False  # a baseline crisis text, sent with nothing else going on
    posted: float = 0.0  # perf_counter when the post began
    answered: float = 0.0  # when the 200 (or error) came back
    status: int = 0


@dataclass
class Rig:
    """The app on loopback, the fake Twilio, and what it received (stamped)."""

    engine: AsyncEngine
    url: str
    settings: Settings
    twilio: FakeTwilio
    sent: StampedList
    sender: TwilioSender
    limiter: RateLimiter
    server: uvicorn.Server
    serving: asyncio.Task[None]
    client: httpx.AsyncClient
    numbers: list[str] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)


async def until(check: Callable[[], bool], limit: float) -> bool:
    """Wait until `check()` is true; say if it became true within `limit` seconds."""
    deadline = time.perf_counter() + limit
    while not check():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_rig(*, senders: int, mps: float) -> Rig:
    """Serve the app on loopback around a scratch database and `senders` linked people."""
    engine, url = await scratch_engine()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url="sqlite:///unused.db", public_base_url=base,
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=SecretStr(AUTH_TOKEN),
        twilio_from_number=OUR_NUMBER, twilio_mps=mps, telegram_bot_token=None)
    sent = StampedList()
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, webhook_url=f"{base}/sms/inbound",
                        our_number=OUR_NUMBER, messages=sent)
    sender = TwilioSender.from_settings(settings, transport=httpx.ASGITransport(twilio.app))
    limiter = build_limiter(settings, engine)
    app = create_app(settings, engine, senders={"sms": sender}, clock=utc_now, limiter=limiter)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning", access_log=False))
    serving = asyncio.create_task(server.serve())
    if not await until(lambda: server.started, 10):
        raise RuntimeError("uvicorn did not start")
    client = httpx.AsyncClient(base_url=base, timeout=60,
                               limits=httpx.Limits(max_connections=senders + 20))
    twilio.client = client
    rig = Rig(engine, url, settings, twilio, sent, sender, limiter, server, serving, client)
    now = datetime.now(UTC)
    rig.numbers = await add_people(engine, senders + IDLE_CRISES, now=now)
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=now)
        for person in (await session.exec(select(Participant))).all():
            person.release_postcode = "ST3 2QH"
            session.add(person)
    return rig


async def stop_rig(rig: Rig) -> None:
    """Stop the server and close everything the rig opened."""
    rig.server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await rig.serving
    await rig.client.aclose()
    await rig.sender.aclose()
    await rig.engine.dispose()


async def post(rig: Rig, number: str, body: str, *, crisis: bool, n: int,
               idle: bool = False) -> Post:
    """Text in as Twilio does, signed, and note the webhook's timing and status."""
    one = Post(sid=f"SM{n:032x}", number=number, crisis=crisis, idle=idle,
               posted=time.perf_counter())
    rig.posts.append(one)
    try:
        response = await rig.twilio.text_from(number, body, sid=one.sid)
        one.status = response.status_code
    except httpx.HTTPError:
        one.status = 599  # the connection failed: counted with the 5xx
    one.answered = time.perf_counter()
    return one


async def idle_crises(rig: Rig) -> None:
    """Send the baseline crisis texts one at a time, each after the last one's answer went."""
    for i, number in enumerate(rig.numbers[-IDLE_CRISES:]):
        before = len(rig.sent)
        await post(rig, number, CRISIS, crisis=True, n=10**9 + i, idle=True)
        await until(lambda: len(rig.sent) > before, 30)  # noqa: B023  (awaited here)


async def load(rig: Rig, *, seconds: float, senders: int, rate: float,
               crisis_every: int, first: int = 0) -> float:
    """Post `rate` texts a second for `seconds` (open loop); return the elapsed time."""
    tasks: list[asyncio.Task[Post]] = []
    step = [0] * senders
    started = time.perf_counter()
    for i in range(int(seconds * rate)):
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        who = i % senders
        crisis = crisis_every > 0 and i % crisis_every == crisis_every // 2
        body = CRISIS if crisis else SCRIPT[step[who] % len(SCRIPT)]
        step[who] += 0 if crisis else 1
        tasks.append(asyncio.create_task(
            post(rig, rig.numbers[who], body, crisis=crisis, n=first + i)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - started


async def answers(engine: AsyncEngine) -> list[OutboundMessage]:
    """Return every answer row (written as a direct answer to an inbound) on SMS."""
    async with session_scope(engine) as session:
        rows = await session.exec(select(OutboundMessage).where(
            col(OutboundMessage.dedupe_key).startswith("reply:sms:")))
        return list(rows.all())


async def drain(rig: Rig, *, limit: float) -> bool:
    """Wait until no answer is queued or sending; say if that happened within `limit` s."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        rows = await answers(rig.engine)
        if not any(r.status in PENDING for r in rows):
            return True
        await asyncio.sleep(0.25)
    return False


async def check(rig: Rig) -> dict[str, Any]:
    """Match every accepted inbound with its rows and every send with its row."""
    rows = await answers(rig.engine)
    async with session_scope(rig.engine) as session:
        recorded = Counter((await session.exec(
            select(InboundMessage.provider_id).where(InboundMessage.channel == "sms"))).all())
    by_inbound: dict[str, list[OutboundMessage]] = {}
    for row in rows:
        by_inbound.setdefault(row.dedupe_key.split(":")[2], []).append(row)
    accepted = [p for p in rig.posts if p.status == 200]
    at_provider = Counter(m["sid"] for m in rig.sent)
    row_sids = {r.provider_id for r in rows if r.provider_id}
    bulk_sids = {m["sid"] for m in rig.sent if m["to"] not in set(rig.numbers)}
    lost_inbound = sum(1 for p in accepted if recorded[p.sid] != 1)
    unanswered = sum(1 for p in accepted if not by_inbound.get(p.sid))
    stuck = sum(1 for r in rows if r.status in PENDING)
    reasons = Counter(str(r.status) for r in rows
                      if r.status not in DONE and r.status not in PENDING)
    orphans = sum(n for sid, n in at_provider.items() if sid not in row_sids
                  and sid not in bulk_sids)
    return {
        "accepted": len(accepted), "answers": len(rows),
        "lost": lost_inbound + unanswered + stuck,
        "lost_detail": {"inbound_not_recorded": lost_inbound, "no_answer_row": unanswered,
                        "answer_unsent_at_end": stuck},
        "doubled": orphans + sum(n - 1 for n in at_provider.values() if n > 1)
        + sum(1 for n in recorded.values() if n > 1),
        "answers_not_sent_with_reason": dict(reasons),
    }


def latencies(rig: Rig, rows: list[OutboundMessage]) -> dict[str, list[float]]:
    """Return, per inbound, post to its first answer at Twilio, split crisis / other."""
    stamp = {m["sid"]: at for at, m in zip(rig.sent.at, rig.sent, strict=True)}
    first: dict[str, float] = {}
    for row in rows:
        at = stamp.get(row.provider_id or "")
        sid = row.dedupe_key.split(":")[2]
        if at is not None:
            first[sid] = min(first.get(sid, at), at)
    out: dict[str, list[float]] = {"crisis": [], "other": [], "crisis_idle": []}
    for p in rig.posts:
        if p.sid in first:
            kind = "other" if not p.crisis else "crisis_idle" if p.idle else "crisis"
            out[kind].append(first[p.sid] - p.posted)
    return out


def pct(values: list[float], q: float) -> float:
    """Return a quantile in seconds, rounded to the millisecond."""
    return round(quantile(values, q), 3)


async def figures(rig: Rig, elapsed: float, drained: bool) -> dict[str, Any]:
    """Return the bench's figures for the load part of `rig.posts`."""
    loaded = [p for p in rig.posts if not p.idle]
    web = [p.answered - p.posted for p in loaded]
    rows = await answers(rig.engine)
    lat = latencies(rig, rows)
    idle, busy = pct(lat["crisis_idle"], 0.5), pct(lat["crisis"], 0.5)
    return {
        "database": rig.url.split("://")[0].split("+")[0], "posted": len(loaded),
        "requests_per_s": round(len(loaded) / elapsed, 1),
        "webhook_p50_s": pct(web, 0.5), "webhook_p95_s": pct(web, 0.95),
        "webhook_p99_s": pct(web, 0.99),
        "http_5xx": sum(1 for p in loaded if p.status >= 500),
        "http_other": sum(1 for p in loaded if p.status != 200 and p.status < 500),
        "reply_at_twilio_p50_s": pct(lat["other"], 0.5),
        "reply_at_twilio_p95_s": pct(lat["other"], 0.95),
        "crisis_idle_p50_s": idle, "crisis_load_p50_s": busy,
        "crisis_load_p95_s": pct(lat["crisis"], 0.95),
        "crisis_load_vs_idle": round(busy / idle, 2) if idle else None,
        "drained": drained, **await check(rig),
    }


async def run(seconds: float, senders: int, rate: float, crisis_every: int, mps: float
              ) -> dict[str, Any]:
    """Baseline crises, then the load, then drain and check; return the figures."""
    rig = await start_rig(senders=senders, mps=mps)
    try:
        await idle_crises(rig)
        elapsed = await load(rig, seconds=seconds, senders=senders, rate=rate,
                             crisis_every=crisis_every)
        drained = await drain(rig, limit=60)
        out = await figures(rig, elapsed, drained)
    finally:
        await stop_rig(rig)
    return {"seconds": seconds, "senders": senders, "target_rate": rate, "twilio_mps": mps,
            **out}


def arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options the inbound bench and the soak share."""
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0, help="inbound texts a second")
    parser.add_argument("--crisis-every", type=int, default=50, help="every Nth is a crisis")
    parser.add_argument("--mps", type=float, default=200.0, help="TWILIO_MPS (segments/s)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")


def main() -> None:
    """Run the bench and print figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    arguments(parser)
    args = parser.parse_args()
    figures_ = asyncio.run(run(args.seconds, args.senders, args.rate, args.crisis_every,
                               args.mps))
    report(figures_, as_json=args.json)


if __name__ == "__main__":
    main()
