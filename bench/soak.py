"""Soak: the running service under a steady inbound load on SMS and Telegram.

Run: .venv/bin/python -m bench.soak [--rate 100] [--seconds 60] [--senders 400]
     [--trace timings.csv] [--json]
`throughcare run` is started in its own process (uvicorn on loopback, the webhooks, the
worker's dispatcher and scheduler), pointed at a fake Twilio and a fake Telegram Bot API that
this process serves on loopback. `--senders` linked, consenting participants (half on SMS,
half on Telegram) then write in through the signed webhooks at `--rate` messages a second in
all, open loop, for `--seconds`: MEETINGS with a postcode, CHECKIN and its answers, small
talk, and every `--crisis-every`th message a crisis text. After the load the outbox drains
(for as long as answers keep going out: an overloaded run's late answers show in its
latency, not as lost), the service is stopped with SIGTERM, and every accepted message is
checked in the database.

Figures: the achieved rate; p50/p99 from posting an inbound to its first reply reaching the
provider (both channels and each); webhook p50/p99; errors (HTTP answers other than 200,
failed connections, tracebacks in the service's log, a non-zero exit); lost (an accepted
message not recorded, not answered, or its answer never sent); doubled (a message recorded
twice, a send the outbox has no row for); and the service's peak RSS in MB. `machine_ms`
(before) and `machine_ms_after` time a fixed piece of pure Python: this machine's speed
varies, so compare runs by them. Posts are timed from when the load meant to send them,
so a late start counts. With --json the last line is one JSON object.
BENCH_DATABASE_URL picks PostgreSQL (the soak empties it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bench._fake import report, scratch_engine
from bench._service import WEBHOOK_SECRET, Service, install_keys, start_service, stop_service
from bench.inbound import CRISIS, SCRIPT
from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from bot.web.metrics import quantile
from meeting_finder.demo import load_demo_meetings
from storage.db import session_scope
from storage.models import (
    Channel,
    ChannelIdentity,
    InboundMessage,
    OutboundMessage,
    OutboxStatus,
    Participant,
    ParticipantStatus,
)

PENDING = {str(OutboxStatus.QUEUED), str(OutboxStatus.SENDING)}
FIRST_CHAT = 700_000_000
# Connections the load may hold open at once. httpx looks over every pooled connection on
# each request and each answer, so with one per sender (450) an overloaded run spent most of
# this process's CPU there and the load fell behind its own schedule. A post that waits for
# a connection is still timed from when it was due.
CONNECTIONS = 64


@dataclass
class Person:
    """A simulated participant: their channel and address."""

    channel: str  # "sms" or "telegram"
    address: str  # phone number, or Telegram chat id


@dataclass
class Post:
    """One inbound message and what the webhook said."""

    channel: str
    provider_id: str  # the MessageSid, or the update_id
    crisis: bool
    warm: bool = False  # sent before the load, not counted
    posted: float = 0.0
    answered: float = 0.0
    status: int = 0


async def add_people(engine: AsyncEngine, senders: int, *, now: datetime) -> list[Person]:
    """Enrol `senders` consenting participants, alternately on SMS and Telegram."""
    people: list[Person] = []
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=now)
        for n in range(senders):
            channel = Channel.SMS if n % 2 == 0 else Channel.TELEGRAM
            address = f"+4477009{n:05d}" if channel == Channel.SMS else str(FIRST_CHAT + n)
            person = Participant(display_name=f"Soak{n}", release_postcode="ST3 2QH",
                                 release_date=(now - timedelta(days=3)).date(),
                                 phone=address if channel == Channel.SMS else None,
                                 preferred_channel=channel, status=ParticipantStatus.ACTIVE,
                                 consent_at=now - timedelta(days=1))
            session.add(person)
            await session.flush()
            session.add(ChannelIdentity(participant_id=person.id or 0, channel=channel,
                                        address=address, linked_at=now, updated_at=now))
            people.append(Person(str(channel), address))
    return people


def telegram_update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    """Return the Update Telegram posts when a person types `text`."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Sam", "language_code": "en"}
    return {"update_id": update_id, "message": {
        "message_id": update_id, "from": user, "date": int(time.time()), "text": text,
        "chat": {"id": chat_id, "first_name": "Sam", "type": "private"}}}


async def post(service: Service, person: Person, text: str, *, n: int, crisis: bool,
               posts: list[Post], warm: bool = False, due: float | None = None) -> None:
    """Write in as the provider does (signed), noting the webhook's timing and answer.

    `due`: when the load meant to post it. Timings count from then, so a late start (this
    process busy, or waiting for a free connection) is in them, not left out."""
    one = Post(person.channel, f"SM{n:032x}" if person.channel == "sms" else str(n),
               crisis, warm, posted=time.perf_counter() if due is None else due)
    posts.append(one)
    try:
        if person.channel == "sms":
            response = await service.twilio.text_from(person.address, text, sid=one.provider_id)
        else:
            response = await service.client.post(
                WEBHOOK_PATH, json=telegram_update(n, int(person.address), text),
                headers={SECRET_HEADER: WEBHOOK_SECRET})
        one.status = response.status_code
    except httpx.HTTPError:
        one.status = 599  # no answer at all: counted with the errors
    one.answered = time.perf_counter()


async def warm_up(service: Service, people: list[Person], posts: list[Post]) -> None:
    """Send each script line once from a few people (first-use costs), not counted."""
    for i, text in enumerate((*SCRIPT, CRISIS)):
        await post(service, people[-1 - i % 4], text, n=10**8 + i, crisis=False, posts=posts,
                   warm=True)
    await asyncio.sleep(2.0)


async def load(service: Service, people: list[Person], posts: list[Post], *, rate: float,
               seconds: float, crisis_every: int) -> float:
    """Post `rate` messages a second for `seconds`, open loop; return the time it took."""
    tasks: list[asyncio.Task[None]] = []
    step = [0] * len(people)
    started = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = started + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        who = i % len(people)
        crisis = crisis_every > 0 and i % crisis_every == crisis_every // 2
        text = CRISIS if crisis else SCRIPT[step[who] % len(SCRIPT)]
        step[who] += 0 if crisis else 1
        tasks.append(asyncio.create_task(post(service, people[who], text, n=i + 1,
                                              crisis=crisis, posts=posts, due=due)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - started


async def outbox(engine: AsyncEngine) -> list[tuple[str, str | None, str, str]]:
    """Return every outbox row's dedupe key, provider id, status and channel."""
    ob = OutboundMessage
    async with session_scope(engine) as session:
        rows = await session.exec(select(ob.dedupe_key, ob.provider_id, ob.status, ob.channel))
        return [(str(k), p, str(s), str(c)) for k, p, s, c in rows.all()]


async def drain(engine: AsyncEngine, *, stall: float = 20.0, cap: float = 900.0
                ) -> tuple[bool, float]:
    """Wait until no answer is queued or sending; say if that happened, and how long it took.

    It waits as long as answers keep going out (an overloaded run sends its backlog late,
    which its latency shows), and gives up after `stall` seconds without one or `cap` in
    all: what is still unsent then counts as lost.
    """
    start = time.perf_counter()
    last_change, before = start, -1
    while True:
        rows = await outbox(engine)
        pending = sum(1 for k, _p, s, _c in rows if k.startswith("reply:") and s in PENDING)
        now = time.perf_counter()
        if not pending:
            return True, now - start
        if pending != before:
            last_change, before = now, pending
        if now - last_change > stall or now - start > cap:
            return False, now - start
        await asyncio.sleep(0.25)


async def check(engine: AsyncEngine, service: Service, posts: list[Post]
                ) -> tuple[dict[str, Any], dict[tuple[str, str], float]]:
    """Match accepted posts with their rows, and sends with rows; return figures and, per
    inbound, when its first answer reached the provider."""
    rows = await outbox(engine)
    async with session_scope(engine) as session:
        recorded = Counter((str(c), str(p)) for c, p in (await session.exec(
            select(InboundMessage.channel, InboundMessage.provider_id)
            .where(col(InboundMessage.provider_id).is_not(None)))).all())
    answers: dict[tuple[str, str], list[tuple[str | None, str]]] = {}
    for key, provider_id, status, _channel in rows:
        if key.startswith("reply:"):
            _, channel, inbound_id = key.split(":")[:3]
            answers.setdefault((channel, inbound_id), []).append((provider_id, status))
    first: dict[tuple[str, str], float] = {}
    for inbound, sent in answers.items():
        times = [service.stamps.at[p] for p, _s in sent if p in service.stamps.at]
        if times:
            first[inbound] = min(times)
    accepted = [p for p in posts if p.status == 200]
    lost = {
        "inbound_not_recorded": sum(1 for p in accepted
                                    if recorded[(p.channel, p.provider_id)] != 1),
        "no_answer_row": sum(1 for p in accepted if (p.channel, p.provider_id) not in answers),
        "answer_not_sent": sum(1 for p in accepted
                               if (p.channel, p.provider_id) in answers
                               and (p.channel, p.provider_id) not in first),
    }
    known = {p for _k, p, _s, _c in rows if p}
    doubled = {
        "inbound_recorded_twice": sum(1 for n in recorded.values() if n > 1),
        "send_without_row": sum(1 for p in service.stamps.at if p not in known),
        "same_send_twice": sum(n - 1 for n in service.stamps.count.values() if n > 1),
    }
    unsent = Counter(s for k, _p, s, _c in rows if k.startswith("reply:")
                     and s not in {str(OutboxStatus.SENT), str(OutboxStatus.DELIVERED)})
    return {"accepted": len(accepted), "answer_rows": sum(len(a) for a in answers.values()),
            "lost": sum(lost.values()), "lost_detail": lost, "doubled": sum(doubled.values()),
            "doubled_detail": doubled, "answers_not_sent_by_status": dict(unsent)}, first


def ms(values: list[float], q: float) -> float:
    """Return a quantile of seconds, in milliseconds."""
    return round(quantile(values, q) * 1000, 1)


def latency(posts: list[Post], first: dict[tuple[str, str], float]) -> dict[str, Any]:
    """Return reply and webhook latency quantiles, in ms, overall and per channel."""
    counted = [p for p in posts if not p.warm]
    out: dict[str, Any] = {}
    for name, group in (("", counted), ("sms_", [p for p in counted if p.channel == "sms"]),
                        ("telegram_", [p for p in counted if p.channel == "telegram"]),
                        ("crisis_", [p for p in counted if p.crisis])):
        reply = [first[(p.channel, p.provider_id)] - p.posted for p in group
                 if (p.channel, p.provider_id) in first]
        out[f"{name}reply_p50_ms"] = ms(reply, 0.5)
        out[f"{name}reply_p99_ms"] = ms(reply, 0.99)
        if not name:
            out["reply_max_ms"] = ms(reply, 1.0)
    web = [p.answered - p.posted for p in counted]
    out |= {"webhook_p50_ms": ms(web, 0.5), "webhook_p99_ms": ms(web, 0.99)}
    return out


def write_trace(path: str, posts: list[Post], first: dict[tuple[str, str], float]) -> None:
    """Write one CSV line a message: when it was posted (seconds into the load), its
    channel, whether a crisis text, webhook ms and reply ms (empty: never answered)."""
    counted = sorted((p for p in posts if not p.warm), key=lambda p: p.posted)
    start = counted[0].posted if counted else 0.0
    with open(path, "w", encoding="utf-8") as out:
        out.write("posted_s,channel,crisis,status,webhook_ms,reply_ms\n")
        for p in counted:
            answered = first.get((p.channel, p.provider_id))
            reply = "" if answered is None else f"{(answered - p.posted) * 1000:.1f}"
            out.write(f"{p.posted - start:.3f},{p.channel},{int(p.crisis)},{p.status},"
                      f"{(p.answered - p.posted) * 1000:.1f},{reply}\n")


def log_errors(service: Service) -> int:
    """Count tracebacks and ERROR lines in the service's log."""
    if service.log is None:
        return 0
    text = service.log.read_text(errors="replace")
    return text.count("Traceback") + sum(1 for line in text.splitlines()
                                         if '"level": "ERROR"' in line or " ERROR " in line)


@contextlib.contextmanager
def no_collector_pauses() -> Iterator[None]:
    """Keep this process's garbage collector still while it measures.

    This process is the clock: the fake providers stamp each reply as it arrives. Its own
    full collections (120-200 ms by mid-run, with every post kept for the figures) held
    those stamps back and showed as the service's latency at the same second of every run.
    What is here before the load is frozen, and collection waits until the load is over."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def machine_ms() -> float:
    """Time a fixed piece of pure Python, in ms: how fast this machine is just now.

    The virtual machine's speed has varied by a factor of two between sessions (and 30-50%
    within one); compare soaks whose figures for this are close, or scale by it."""
    started = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i
    return round((time.perf_counter() - started) * 1000, 1)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the service, warm it, load it, drain, stop it, check everything."""
    machine = machine_ms()
    keys = install_keys()
    engine, url = await scratch_engine(migrate=True)
    people = await add_people(engine, args.senders, now=datetime.now(UTC))
    service = await start_service(url, keys=keys, mps=args.mps, connections=CONNECTIONS)
    posts: list[Post] = []
    memory = asyncio.create_task(service.watch_memory())
    try:
        await warm_up(service, people, posts)
        with no_collector_pauses():
            cpu = service.cpu_seconds()
            elapsed = await load(service, people, posts, rate=args.rate,
                                 seconds=args.seconds, crisis_every=args.crisis_every)
            cpu = service.cpu_seconds() - cpu
            drained, drain_seconds = await drain(engine)
    finally:
        memory.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await memory
        code = await stop_service(service)
    figures, first = await check(engine, service, [p for p in posts if not p.warm])
    await engine.dispose()
    if args.trace:
        write_trace(args.trace, posts, first)
    counted = [p for p in posts if not p.warm]
    http_errors = sum(1 for p in counted if p.status != 200)
    logged = log_errors(service)
    return {
        "database": url.split("://")[0].split("+")[0], "senders": args.senders,
        "target_rate": args.rate, "seconds": args.seconds, "posted": len(counted),
        "achieved_rate": round(len(counted) / elapsed, 1), **latency(posts, first),
        "service_cpu_ms_per_message": round(cpu * 1000 / max(1, len(counted)), 1),
        "errors": http_errors + logged + (1 if code not in (0, None) else 0),
        "http_errors": http_errors, "log_errors": logged, "exit_code": code,
        # 599: no answer within the client's 30 s (Twilio itself waits 15 s).
        "http_errors_by_status": dict(Counter(str(p.status) for p in counted
                                              if p.status != 200)),
        "drained": drained, "drain_seconds": round(drain_seconds, 1), **figures,
        "peak_rss_mb": round(service.rss_peak_kb / 1024, 1),
        "machine_ms": machine, "machine_ms_after": machine_ms(),
        "service_log": str(service.log),
    }


def main() -> None:
    """Run the soak and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="inbound messages a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--senders", type=int, default=400, help="half SMS, half Telegram")
    parser.add_argument("--crisis-every", type=int, default=50, help="every Nth is a crisis")
    parser.add_argument("--mps", type=float, default=200.0,
                        help="TWILIO_MPS and TELEGRAM_MPS: set above the load, so the soak "
                        "measures the service, not the providers' caps")
    parser.add_argument("--trace", metavar="CSV", help="also write each message's timings")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    report(asyncio.run(run(args)), as_json=args.json)


if __name__ == "__main__":
    main()
