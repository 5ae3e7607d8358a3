"""bench.fuzz's cast and its consistency check: every inbound answered, or silent for a reason.

The cast: linked, consenting people on SMS (some also on WhatsApp and Telegram), two enrolled
people not yet linked (one by a link code, one by their phone number), strangers, and the
opening messages that leave each in a state a conversation can be in. The check reads the
inbound and outbox tables after the drain: an inbound with no reply rows is explained only by
the flood limit (its sender had written FLOOD_LIMIT times in the window before it) or by
SMS's silence after STOP (its participant had stopped, or the carrier had said they
unsubscribed, by the audit trail, before it).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bench.fuzz_cases import Cast
from bot.channels.inbox import FLOOD_WINDOW, UNKNOWN_PER_WINDOW
from meeting_finder.demo import load_demo_meetings
from storage.db import session_scope
from storage.models import (
    AuditEvent,
    Channel,
    ChannelIdentity,
    InboundMessage,
    OutboundMessage,
    OutboxStatus,
    Participant,
    ParticipantStatus,
)
from storage.participants import enrol

PEOPLE = 10
PENDING = (OutboxStatus.QUEUED, OutboxStatus.SENDING)
STOPS = ("stop", "opt_out")  # they sent STOP; the carrier said unsubscribed (21610)
FLOOD_LIMIT = UNKNOWN_PER_WINDOW  # the lower of the two limits: a linked sender gets more


def phone(n: int) -> str:
    """Return person `n`'s mobile number (UK drama range)."""
    return f"+4477008{n:05d}"


def chat(n: int) -> int:
    """Return person `n`'s Telegram chat id."""
    return 700_000_000 + n


async def _link(engine: AsyncEngine, *, now: datetime) -> None:
    """Enrol PEOPLE consenting people on SMS; evens on WhatsApp too, every third on Telegram."""
    async with session_scope(engine) as session:
        people = [Participant(display_name=f"P{n}", release_date=(now - timedelta(days=3)).date(),
                              release_postcode="ST3 2QH", phone=phone(n),
                              preferred_channel=Channel.SMS, status=ParticipantStatus.ACTIVE,
                              staff_review_consent=n % 2 == 1,
                              consent_at=now - timedelta(days=1)) for n in range(PEOPLE)]
        session.add_all(people)
        await session.flush()
        for n, p in enumerate(people):
            links = [(Channel.SMS, phone(n))]
            links += [(Channel.WHATSAPP, phone(n))] if n % 2 == 0 else []
            links += [(Channel.TELEGRAM, str(chat(n)))] if n % 3 == 0 else []
            session.add_all(ChannelIdentity(participant_id=p.id or 0, channel=channel,
                                            address=address, linked_at=now, updated_at=now)
                            for channel, address in links)
        await load_demo_meetings(session, now=now)


async def scene_people(engine: AsyncEngine, *, now: datetime
                       ) -> tuple[Cast, list[tuple[str, str | int, str]]]:
    """Enrol the cast; return it and the opening messages (webhook, sender, body)."""
    await _link(engine, now=now)
    strangers = tuple(f"+4477009{n:05d}" for n in range(6))
    async with session_scope(engine) as session:
        _p, by_code = await enrol(session, prison_name="HMP Bench", display_name="Alex",
                                  release_date=date(2026, 11, 19), release_postcode="ST3 2QH",
                                  now=now)
        _q, _code = await enrol(session, prison_name="HMP Bench", display_name="Sam",
                                release_date=date(2026, 1, 19), release_postcode="ST3 2QH",
                                now=now, phone=strangers[0])
        _r, spare = await enrol(session, prison_name="HMP Bench", display_name="Jo",
                                release_date=date(2026, 11, 19), release_postcode=None, now=now)
    cast = Cast(sms=tuple(phone(n) for n in range(PEOPLE)),
                whatsapp=tuple(phone(n) for n in range(0, PEOPLE, 2)),
                chats=tuple(chat(n) for n in range(0, PEOPLE, 3)) + (chat(900), chat(901)),
                strangers=strangers, codes=(spare,))
    scene: list[tuple[str, str | int, str]] = [
        ("sms", phone(0), "CHECKIN"), ("sms", phone(1), "CBA"), ("telegram", chat(3), "URGE"),
        ("sms", phone(2), "STOP"), ("sms", phone(4), "DELETE"), ("sms", phone(4), "YES"),
        ("whatsapp", phone(6), "MEETINGS ST3 2QH"), ("sms", phone(5), "LINK"),
        ("sms", strangers[1], by_code),  # linked by code, not yet consenting
        ("sms", strangers[0], "hello"),  # enrolled by phone: asked to prove who they are
        ("telegram", chat(900), "/start"), ("sms", phone(7), "I want to kill myself"),
    ]
    return cast, scene


def _replied(keys: list[str]) -> set[tuple[str, str]]:
    """Return (channel, provider id) of every inbound with a reply row."""
    out = set()
    for key in keys:
        if key.startswith("reply:"):
            _reply, channel, rest = key.split(":", 2)
            out.add((channel, rest.rsplit(":", 1)[0]))
    return out


def _stopped(timeline: dict[int, list[tuple[datetime, str]]], pid: int | None,
             at: datetime) -> bool:
    """Say whether participant `pid` had stopped (and not started again) before `at`."""
    state = False
    for when, action in sorted(timeline.get(pid or -1, [])):
        if when >= at:
            break
        state = action in STOPS
    return state


def _flooded(sent_at: dict[str, list[datetime]], key: str | None, at: datetime) -> bool:
    """Say whether the sender had written FLOOD_LIMIT times in the window before `at`."""
    if key is None:
        return False
    earlier = [t for t in sent_at[key] if at - FLOOD_WINDOW <= t < at]
    return len(earlier) >= FLOOD_LIMIT


class In(NamedTuple):
    """The columns of an inbound row the check reads (none sealed)."""

    channel: str
    provider_id: str
    participant_id: int | None
    address_hash: str | None
    received_at: datetime


class Out(NamedTuple):
    """The columns of an outbox row the check reads (none sealed)."""

    dedupe_key: str
    status: str
    due_at: datetime
    channel: str


async def _rows(engine: AsyncEngine) -> tuple[list[In], list[Out], dict[int, list[Any]]]:
    """Read the inbound and outbox rows, and each participant's STOP and START times."""
    async with session_scope(engine) as session:
        # Two reads joined by id: select() is typed for at most four columns.
        later = {row_id: (key, at) for row_id, key, at in (await session.exec(select(
            InboundMessage.id, InboundMessage.address_hash, InboundMessage.received_at))).all()}
        inbound = [In(channel, provider_id, pid, *later[row_id])
                   for row_id, channel, provider_id, pid in (await session.exec(select(
                       InboundMessage.id, InboundMessage.channel, InboundMessage.provider_id,
                       InboundMessage.participant_id))).all()]
        outbox = [Out(*r) for r in (await session.exec(select(
            OutboundMessage.dedupe_key, OutboundMessage.status, OutboundMessage.due_at,
            OutboundMessage.channel))).all()]
        audits = (await session.exec(select(
            AuditEvent.participant_id, AuditEvent.at, AuditEvent.action).where(
            col(AuditEvent.action).in_([*STOPS, "start"])))).all()
    timeline: dict[int, list[Any]] = defaultdict(list)
    for pid, at, action in audits:
        timeline[pid or -1].append((at, action))
    return inbound, outbox, timeline


def _silences(inbound: list[In], outbox: list[Out], timeline: dict[int, list[Any]]
              ) -> tuple[dict[str, int], list[str]]:
    """Return how many inbound went unanswered for each reason, and those with none."""
    sent_at: dict[str, list[datetime]] = defaultdict(list)
    for row in inbound:
        if row.address_hash:
            sent_at[row.address_hash].append(row.received_at)
    replied = _replied([r.dedupe_key for r in outbox])
    reasons: dict[str, int] = defaultdict(int)
    unexplained: list[str] = []
    for row in inbound:
        if (row.channel, row.provider_id) in replied:
            continue
        if _flooded(sent_at, row.address_hash, row.received_at):
            reasons["flood_limit"] += 1
        elif row.channel == "sms" and _stopped(timeline, row.participant_id, row.received_at):
            reasons["stopped_on_sms"] += 1
        else:
            unexplained.append(f"{row.channel} {row.provider_id[:40]}")
    return dict(reasons), unexplained


async def consistency(engine: AsyncEngine, *, now: datetime,
                      accepted: list[tuple[str, str]]) -> dict[str, Any]:
    """Match every inbound with its replies or its reason; count what is stuck."""
    inbound, outbox, timeline = await _rows(engine)
    reasons, unexplained = _silences(inbound, outbox, timeline)
    recorded = {(r.channel, r.provider_id) for r in inbound}
    lost = [a for a in accepted if a not in recorded]
    pending = [f"{r.channel} {r.status} {r.dedupe_key[:60]}" for r in outbox
               if r.status in PENDING and r.due_at <= now]
    waiting: Counter[str] = Counter(  # rows that wait on purpose (a window, a backoff)
        f"{r.channel} {r.dedupe_key.split(':')[0]}" for r in outbox
        if r.status in PENDING and r.due_at > now)
    return {
        "inbound_recorded": len(inbound), "inbound_replied": len(inbound) - len(unexplained)
        - sum(reasons.values()), "silent_with_reason": reasons,
        "outbox_by_status": dict(sorted(Counter(str(r.status) for r in outbox).items())),
        "outbox_due_later": dict(waiting),
        "stuck_rows": len(unexplained) + len(pending) + len(lost),
        "stuck_detail": {"inbound_without_reply_or_reason": len(unexplained),
                         "outbox_left_queued_or_sending": len(pending),
                         "ordinary_accepted_not_recorded": len(lost)},
        "stuck_examples": (unexplained + pending + [f"{c} {p}" for c, p in lost])[:5],
    }
