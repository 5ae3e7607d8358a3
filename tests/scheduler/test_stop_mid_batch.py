"""STOP, DELETE or a dead address in the middle of a batch; provider ids saved per send."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from scheduler.dispatcher import DispatchPolicy, dispatch
from scheduler.ratelimit import RateLimiter
from scheduler.sender import OutgoingMessage, SendResult
from storage import outbox_q as q
from storage.channels_q import outbox_by_provider_id
from storage.claims_q import claim_due
from storage.db import session_scope
from storage.models import (
    ChannelIdentity,
    IdentityStatus,
    MessageKind,
    OutboundMessage,
    OutboxStatus,
    Participant,
    ParticipantStatus,
    Priority,
)
from storage.outbox import enqueue
from storage.participants import opt_out
from tests.scheduler.conftest import NOON, FakeProvider, add_person, put, rows

SAM, ALI = "+447700900001", "+447700900002"


@dataclass
class StopsAfterFirstSend(FakeProvider):
    """A provider whose first delivery makes the person act at once (STOP, DELETE, block)."""

    engine: AsyncEngine | None = None
    person: int = 0
    action: str = "stop"

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Accept the message; after the first, let the person do `action`."""
        result = await super().send(message)
        if len(self.calls) == 1:
            assert self.engine is not None
            async with session_scope(self.engine) as session:
                if self.action == "stop":  # the STOP handler: opt out, then write its reply
                    await opt_out(session, participant_id=self.person, now=NOON, reason="STOP")
                    await enqueue(session, channel="sms", address=SAM, body="stop-reply",
                                  dedupe_key="stop-reply", now=NOON, participant_id=self.person,
                                  kind=MessageKind.REPLY, meta={"always": True})
                elif self.action == "delete":
                    p = await session.get(Participant, self.person)
                    assert p is not None
                    p.status = ParticipantStatus.DELETED
                    session.add(p)
                else:  # the carrier reports the number gone
                    identity = (await session.exec(select(ChannelIdentity).where(
                        ChannelIdentity.address == SAM))).one()
                    identity.status = IdentityStatus.BLOCKED
                    session.add(identity)
        return result


@pytest.mark.parametrize(("action", "ended"), [
    ("stop", OutboxStatus.CANCELLED),
    ("delete", OutboxStatus.CANCELLED),
    ("blocked", OutboxStatus.FAILED),
])
async def test_no_more_messages_after_stop_delete_or_block_mid_batch(
    engine: AsyncEngine, limiter: RateLimiter, action: str, ended: OutboxStatus
) -> None:
    sam = await add_person(engine, phone=SAM)
    ali = await add_person(engine, name="Ali", phone=ALI)
    for i in range(3):  # one per group: a chat gets one message per group
        await put(engine, f"seq{i}", participant_id=sam, kind=MessageKind.SEQUENCE)
    await put(engine, "ali", participant_id=ali, address=ALI, kind=MessageKind.SEQUENCE)
    if action != "stop":  # (for STOP, the handler writes its reply after opting out)
        # A direct reply goes whatever the status.
        await put(engine, "stop-reply", participant_id=sam, kind=MessageKind.REPLY,
                  priority=Priority.BULK, meta={"always": True})
    provider = StopsAfterFirstSend("sms", engine=engine, person=sam, action=action)

    stats = await dispatch(engine, {"sms": provider}, now=NOON, limiter=limiter)

    by_key = {r.dedupe_key.split("#")[0]: r for r in await rows(engine)}
    assert [m.body for _, m in provider.calls][0] == "seq0"
    assert by_key["seq0"].status == OutboxStatus.SENT
    assert by_key["seq1"].status == by_key["seq2"].status == ended
    assert by_key["ali"].status == OutboxStatus.SENT
    sent_to_sam = {m.body for _, m in provider.calls if m.address == SAM}
    if action == "blocked":
        assert sent_to_sam == {"seq0"}  # the address is gone: nothing more can reach it
        assert by_key["stop-reply"].status == OutboxStatus.FAILED and stats.failed == 3
    else:
        assert sent_to_sam == {"seq0", "stop-reply"}
        # Cancelled by the STOP itself (still queued) or by the re-check (already claimed).
        assert stats.cancelled <= 2


async def test_cancel_pending_for_takes_queued_and_claimed_rows_not_yet_in_flight(
    engine: AsyncEngine,
) -> None:
    sam = await add_person(engine, phone=SAM)
    ali = await add_person(engine, name="Ali", phone=ALI)
    # On three of Sam's addresses, so one claim can hold all three (one row per address).
    for n, key in enumerate(("claimed", "inflight", "sent", "queued")):
        await put(engine, key, participant_id=sam, kind=MessageKind.SEQUENCE,
                  address=SAM if n == 3 else f"{SAM[:-1]}{n + 5}")
    await put(engine, "ali", participant_id=ali, address=ALI, kind=MessageKind.SEQUENCE)
    async with session_scope(engine) as session:
        claimed = {r.dedupe_key: r.id or 0 for r in await claim_due(
            session, now=NOON, token="w1", limit=3)}
        await q.mark_inflight(session, ids=[claimed["inflight"], claimed["sent"]],
                              token="w1", now=NOON)
        await q.mark_sent(session, row_id=claimed["sent"], token="w1", now=NOON,
                          provider_id="SM1", segments=1, delivered=False)
    async with session_scope(engine) as session:
        loaded = (await session.exec(select(OutboundMessage))).all()  # in the identity map
        cancelled = await q.cancel_pending_for(session, participant_id=sam, reason="STOP",
                                               now=NOON)
        assert {r.dedupe_key.split("#")[0]: r.status for r in loaded} == {
            "queued": OutboxStatus.CANCELLED, "claimed": OutboxStatus.CANCELLED,
            "inflight": OutboxStatus.SENDING, "sent": OutboxStatus.SENT,
            "ali": OutboxStatus.QUEUED}
    assert cancelled == 2
    async with session_scope(engine) as session:
        # The worker holding the claim finds the row gone and does not send it.
        assert await q.mark_inflight(session, ids=[claimed["claimed"]], token="w1",
                                     now=NOON) == set()
        # Keys are free: a later START may plan the same steps again.
        for key in ("queued", "claimed"):
            assert await enqueue(session, channel="sms", address=SAM, body=key,
                                 dedupe_key=key, now=NOON, participant_id=sam)
        assert not await enqueue(session, channel="sms", address=SAM, body="x",
                                 dedupe_key="inflight", now=NOON, participant_id=sam)
    errors = {r.dedupe_key: r.error for r in await rows(engine)
              if r.status == OutboxStatus.CANCELLED}
    assert set(errors.values()) == {"STOP"} and len(errors) == 2


@dataclass
class CallbackProbe(FakeProvider):
    """A provider whose status callback for each message comes back before the next send."""

    engine: AsyncEngine | None = None
    seen: list[bool] = field(default_factory=list)

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Look up every earlier accepted message as the callback handler would, then accept."""
        assert self.engine is not None
        async with session_scope(self.engine) as session:
            for earlier in self.accepted.values():
                row = await outbox_by_provider_id(session, channel="sms", provider_id=earlier)
                self.seen.append(row is not None)
        return await super().send(message)


async def test_provider_id_is_saved_before_the_rest_of_the_group_is_sent(
    engine: AsyncEngine, limiter: RateLimiter
) -> None:
    for i in range(4):  # four chats: one group
        await put(engine, f"bc{i}", address=f"+44770090010{i}")
    provider = CallbackProbe("sms", engine=engine)

    await dispatch(engine, {"sms": provider}, now=NOON, limiter=limiter,
                   policy=DispatchPolicy(concurrency=1))

    assert len(provider.calls) == 4
    assert provider.seen == [True] * (1 + 2 + 3)  # each earlier send was findable
    outbox = await rows(engine)
    assert {r.provider_id for r in outbox} == set(provider.accepted.values())
    assert all(r.status == OutboxStatus.SENT and r.attempts == 1 for r in outbox)


async def test_concurrent_sends_are_all_saved_once(
    engine: AsyncEngine, limiter: RateLimiter
) -> None:
    for i in range(60):
        await put(engine, f"bc{i}", address=f"+4477009{i:05d}")
    provider = FakeProvider("sms")
    stats = await dispatch(engine, {"sms": provider}, now=NOON, limiter=limiter,
                           policy=DispatchPolicy(concurrency=8))
    outbox = await rows(engine)
    assert stats.sent == 60 == len(provider.calls)
    assert sorted(r.provider_id or "" for r in outbox) == sorted(provider.accepted.values())
    assert all(r.status == OutboxStatus.SENT and r.claim_token is None for r in outbox)
