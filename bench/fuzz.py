"""Bench: correctly signed hostile requests to the three webhooks; never a 5xx, nothing stuck.

Run: .venv/bin/python -m bench.fuzz [--requests 10000] [--seed 0] [--json]
The real web app (create_app, with the real TwilioSender, WhatsAppSender and Telegram
application, talking to the fake Twilio and the fake Bot API) is driven in process through
httpx.ASGITransport. A few linked people are first put in the states a conversation can be in
(mid CHECKIN, mid CBA, mid URGE, mid meeting search, a link code asked for, stopped, deleted,
enrolled but not yet linked, linked and not yet consenting). Then `--requests` cases drawn by
hypothesis (bench.fuzz_cases) go to /sms/inbound (SMS and WhatsApp), /sms/status and the
Telegram webhook, signed as Twilio signs them or with the right secret token: most hostile,
about a quarter what those people really send. The app's clock moves on five seconds a request.
After the run one dispatch pass drains the outbox and the database is checked: every ordinary
inbound that got a 200 is recorded; every recorded inbound has its reply rows or a reason it
has none (its sender was over the flood limit, or had stopped, on SMS); nothing due is left
queued or sending. Figures: requests by webhook and status, 5xx (must be 0), answers with a
traceback (0), errors logged, stuck rows (0), requests/s. With --json the last line is one
JSON object. BENCH_DATABASE_URL picks PostgreSQL (the bench empties it). Exits 1 on a 5xx,
a traceback or a stuck row.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from twilio.request_validator import RequestValidator

from bench._fake import report, scratch_engine
from bench.fuzz_cases import NEW_SID, NEW_UPDATE, SENT_SID, Case, Cast, draw_cases
from bench.fuzz_check import consistency, scene_people
from bot.channels.sms import TwilioSender
from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH, TelegramSender, build_application
from bot.channels.whatsapp import WhatsAppSender
from bot.config import Settings
from bot.web import create_app
from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.ratelimit import ChannelLimit, RateLimiter
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio

PUBLIC = "https://throughcare.example.org"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
BOT_TOKEN = "7000000001:AAH-bench-token-not-real_0123456789ab"
WEBHOOK_SECRET = "bench-Webhook_secret"
OUR_NUMBER = "+447700900001"
WA_NUMBER = "+447700900002"
START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # a Thursday morning
STEP = timedelta(seconds=5)  # how far the app's clock moves between requests
EXAMPLES = 5  # failing requests kept, described, for the report


@dataclass
class Clock:
    """The time the app thinks it is; the bench moves it."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Tally:
    """What the requests got."""

    by_webhook: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    http_5xx: int = 0
    tracebacks: int = 0
    examples: list[str] = field(default_factory=list)
    accepted: list[tuple[str, str]] = field(default_factory=list)  # ordinary (channel, id)


class ErrorLog(logging.Handler):
    """Count what the app logs at ERROR or above (its names only, never the messages)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        """Count the record by logger name."""
        self.seen[record.name] += 1


@dataclass
class Rig:
    """The app, its client, the fakes and the clocks."""

    engine: AsyncEngine
    client: httpx.AsyncClient
    twilio: FakeTwilio
    telegram: FakeTelegram
    senders: dict[str, Any]
    limiter: RateLimiter
    tg_app: Any
    clock: Clock = field(default_factory=Clock)
    sim: SimClock = field(default_factory=SimClock)
    tally: Tally = field(default_factory=Tally)
    sids: Any = field(default_factory=lambda: itertools.count(1))
    updates: Any = field(default_factory=lambda: itertools.count(10**9))


def bench_settings() -> Settings:
    """Return settings for the rig, ignoring any .env file."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url="sqlite:///unused.db", public_base_url=PUBLIC,
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=SecretStr(AUTH_TOKEN),
        twilio_from_number=OUR_NUMBER, telegram_bot_token=SecretStr(BOT_TOKEN),
        telegram_webhook_secret=SecretStr(WEBHOOK_SECRET), whatsapp_from_number=WA_NUMBER)


async def start_rig(engine: AsyncEngine) -> Rig:
    """Build the app around `engine`, wired to the fake Twilio and the fake Bot API."""
    settings = bench_settings()
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, webhook_url=f"{PUBLIC}/sms/inbound",
                        our_number=OUR_NUMBER, whatsapp_number=WA_NUMBER)
    telegram = FakeTelegram(BOT_TOKEN)
    sms = TwilioSender.from_settings(settings, transport=httpx.ASGITransport(twilio.app))
    whatsapp = WhatsAppSender.from_settings(settings, engine=engine, sms=sms,
                                            transport=httpx.ASGITransport(twilio.app))
    clock, sim = Clock(), SimClock()
    fast = ChannelLimit(per_second=10_000.0)
    limiter = RateLimiter(limits={"sms": fast, "telegram": fast, "whatsapp": fast}, clock=sim)
    app = create_app(settings, engine, senders={}, clock=clock, limiter=limiter)
    tg_app = build_application(settings, app.state.channels,
                               transport=httpx.ASGITransport(telegram.app))
    await tg_app.initialize()
    senders = {"sms": sms, "whatsapp": whatsapp, "telegram": TelegramSender(tg_app.bot)}
    app.state.channels.senders.update(senders)
    app.state.telegram_app = tg_app
    # A crash is the 500 a provider would get, not an exception in the bench.
    client = httpx.AsyncClient(base_url=PUBLIC, timeout=60, transport=httpx.ASGITransport(
        app, raise_app_exceptions=False))
    twilio.client = client
    return Rig(engine, client, twilio, telegram, senders, limiter, tg_app, clock, sim)


async def stop_rig(rig: Rig) -> None:
    """Close what the rig opened."""
    await rig.client.aclose()
    await rig.senders["whatsapp"].aclose()
    await rig.senders["sms"].aclose()
    await rig.tg_app.shutdown()


async def form_as_read(body: bytes, content_type: str) -> dict[str, str]:
    """Return the form our webhook will read from this body (what Twilio would have signed)."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        more, sent = sent, True
        return {"type": "http.request", "body": b"" if more else body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"",
             "headers": [(b"content-type", content_type.encode("latin-1"))]}
    try:
        form = await Request(scope, receive).form(max_files=0, max_fields=100)
    except (HTTPException, MultiPartException, ValueError, KeyError, AssertionError):
        return {}  # the webhook refuses it before it looks at a signature
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


def _resolve(rig: Rig, case: Case) -> list[tuple[str, str]]:
    """Put a fresh sid, or the sid of a message really sent, where the case asks."""
    new = f"SM{next(rig.sids):032x}"
    sent = rig.twilio.messages[(next(rig.sids) * 7919) % len(rig.twilio.messages)] \
        if rig.twilio.messages else {"sid": "SM" + "0" * 32, "to": "+447700800001"}
    pairs = [(k, v.replace(NEW_SID, new).replace(SENT_SID, sent["sid"])) for k, v in case.pairs]
    if case.ordinary and case.webhook == "status":
        pairs = [(k, sent["to"] if k == "To" else v) for k, v in pairs]
    return pairs


async def _post_form(rig: Rig, case: Case) -> tuple[httpx.Response, str | None]:
    """Post a form as Twilio posts it, signed over what our webhook will read."""
    url = PUBLIC + ("/sms/status" if case.webhook == "status" else "/sms/inbound")
    pairs = _resolve(rig, case)
    body = case.raw if case.raw is not None else urlencode(pairs).encode()
    params = await form_as_read(body, case.content_type)
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params) \
        if case.signed else "bm90IGEgc2lnbmF0dXJl"
    headers = {"X-Twilio-Signature": signature}
    if case.content_type:
        headers["Content-Type"] = case.content_type
    response = await rig.client.post(url, content=body, headers=headers)
    return response, dict(pairs).get("MessageSid")


async def _post_update(rig: Rig, case: Case) -> tuple[httpx.Response, str | None]:
    """Post Telegram JSON (or bytes) with the secret token (or a wrong one)."""
    update = case.update
    if isinstance(update, dict) and update.get("update_id") == NEW_UPDATE:
        update = {**update, "update_id": next(rig.updates)}
    body = case.raw if case.raw is not None else \
        json.dumps(update, ensure_ascii=False).encode("utf-8", "surrogatepass")
    headers = {SECRET_HEADER: WEBHOOK_SECRET if case.signed else "not-the-secret"}
    if case.content_type:
        headers["Content-Type"] = case.content_type
    response = await rig.client.post(WEBHOOK_PATH, content=body, headers=headers)
    return response, str(update["update_id"]) if isinstance(update, dict) else None


async def send(rig: Rig, case: Case) -> int:
    """Send one case a moment after the last; tally what came back; return the status."""
    rig.clock.now += STEP
    rig.sim.advance(STEP.total_seconds())
    post = _post_update if case.webhook == "telegram" else _post_form
    response, provider_id = await post(rig, case)
    tally = rig.tally
    tally.by_webhook[case.webhook] += 1
    tally.codes[f"{case.webhook} {response.status_code}"] += 1
    failed = response.status_code >= 500
    traced = "Traceback" in response.text or 'File "' in response.text
    tally.http_5xx += failed
    tally.tracebacks += traced
    if (failed or traced) and len(tally.examples) < EXAMPLES:
        tally.examples.append(f"{response.status_code} {case!r}"[:600])
    if case.ordinary and response.status_code == 200 and provider_id \
            and case.webhook != "status":
        channel = "telegram" if case.webhook == "telegram" else case.webhook
        tally.accepted.append((channel, provider_id))
    return response.status_code


def ordinary(webhook: str, sender: str | int, body: str) -> Case:
    """Return what a person really sends: an SMS, a WhatsApp message or a Telegram text."""
    if webhook == "telegram":
        chat = {"id": sender, "type": "private", "first_name": "Sam"}
        update = {"update_id": NEW_UPDATE, "message": {
            "message_id": 1, "date": 1_700_000_000, "chat": chat, "text": body,
            "from": {"id": sender, "is_bot": False, "first_name": "Sam"}}}
        return Case("telegram", True, update=update, content_type="application/json")
    wa = webhook == "whatsapp"
    form = {"MessageSid": NEW_SID, "SmsSid": NEW_SID, "AccountSid": ACCOUNT_SID, "Body": body,
            "From": ("whatsapp:" if wa else "") + str(sender),
            "To": ("whatsapp:" + WA_NUMBER) if wa else OUR_NUMBER}
    return Case(webhook, True, tuple(form.items()))


async def set_the_scene(rig: Rig) -> Cast:
    """Enrol and link the cast, then leave each in a state a conversation can be in."""
    cast, scene = await scene_people(rig.engine, now=rig.clock.now)
    for webhook, sender, body in scene:
        await send(rig, ordinary(webhook, sender, body))
    await dispatch(rig.engine, rig.senders, now=rig.clock.now, limiter=rig.limiter)
    return cast


async def fuzz(engine: AsyncEngine, *, requests: int, seed: int = 0) -> dict[str, Any]:
    """Send `requests` hostile and ordinary cases, drain, check; return the figures."""
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    rig = await start_rig(engine)
    try:
        cast = await set_the_scene(rig)
        scene = rig.tally
        rig.tally = Tally(accepted=list(scene.accepted))  # the figures are the fuzz's own
        started = time.perf_counter()
        batch: list[Case] = []
        draw_cases(cast, requests, seed, batch.append)
        drawn = time.perf_counter() - started
        started = time.perf_counter()
        for case in batch:
            await send(rig, case)
        seconds = time.perf_counter() - started
        drained_at = rig.clock.now + timedelta(minutes=1)
        await dispatch(engine, rig.senders, now=drained_at, limiter=rig.limiter)
        checked = await consistency(engine, now=drained_at, accepted=rig.tally.accepted)
    finally:
        await stop_rig(rig)
        logging.getLogger().removeHandler(errors)
    tally = rig.tally
    return {
        "requests": sum(tally.by_webhook.values()), "by_webhook": dict(tally.by_webhook),
        "hostile": sum(not c.ordinary for c in batch), "ordinary": sum(c.ordinary for c in batch),
        "status_codes": dict(sorted(tally.codes.items())),
        "http_5xx": tally.http_5xx + scene.http_5xx, "tracebacks": tally.tracebacks
        + scene.tracebacks,
        "errors_logged": dict(errors.seen), **checked, "failing_examples": tally.examples,
        "database": engine.dialect.name, "seed": seed, "draw_seconds": round(drawn, 1),
        "seconds": round(seconds, 1),
        "requests_per_s": round(sum(tally.by_webhook.values()) / seconds, 1),
    }


def passed(figures: dict[str, Any]) -> bool:
    """Say whether the run met the bar: no 5xx, no traceback, nothing stuck."""
    return not (figures["http_5xx"] or figures["tracebacks"] or figures["stuck_rows"])


async def run(requests: int, seed: int) -> dict[str, Any]:
    """Run the bench on a scratch database."""
    engine, _url = await scratch_engine()
    try:
        return await fuzz(engine, requests=requests, seed=seed)
    finally:
        await engine.dispose()


def main() -> None:
    """Run the bench, print figures, and exit 1 if it found a 5xx or a stuck row."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    # Refusals are logged as warnings, expected here; errors are counted, not printed.
    logging.getLogger().setLevel(logging.ERROR)
    figures = asyncio.run(run(args.requests, args.seed))
    report(figures, as_json=args.json)
    sys.exit(0 if passed(figures) else 1)


if __name__ == "__main__":
    main()
