"""Wakes held while a webhook writes: crisis rows are its own to send, the rest wake the loop.

A dispatch loop in the process is woken by every outbox write. Inside `hold_wakes` (the
webhooks) a crisis row does not wake it, because the webhook sends that row itself at once;
every other reply wakes it as before. A held row the webhook did not send wakes the loop
afterwards, and so does a webhook that fails or never gets to send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import notify
from storage.claims_q import Lane
from storage.db import session_scope
from storage.models import Priority
from storage.notify import hold_wakes, on_local_notify
from storage.outbox import enqueue

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.fixture
def woken() -> Iterator[list[Lane | None]]:
    """Register a loop in this process; yield the list of the lanes it was woken for."""
    calls: list[Lane | None] = []
    forget = on_local_notify(calls.append)
    yield calls
    forget()


async def _write(engine: AsyncEngine, key: str, priority: int) -> None:
    async with session_scope(engine) as session:
        await enqueue(session, channel="sms", address="+447700900123", body="hi",
                      dedupe_key=key, now=NOW, priority=priority)


async def test_a_crisis_row_is_held_and_a_reply_wakes_the_loop(
    engine: AsyncEngine, woken: list[Lane | None]
) -> None:
    with hold_wakes() as held:
        await _write(engine, "crisis", Priority.URGENT)
        assert woken == [], "the webhook sends the crisis reply itself"
        await _write(engine, "reply", Priority.REPLY)
        assert woken == [Lane.URGENT], "an ordinary reply is the loop's to send"
    assert held.fast(["crisis", "reply"]) == ["crisis"]
    held.release(["crisis"])
    assert woken == [Lane.URGENT], "sent: nothing left for the loop"


async def test_a_held_row_not_sent_wakes_the_loop(engine: AsyncEngine,
                                                  woken: list[Lane | None]) -> None:
    with hold_wakes() as held:
        await _write(engine, "crisis", Priority.URGENT)
    held.release(None)
    assert woken == [Lane.URGENT]
    held.release(None)
    assert woken == [Lane.URGENT], "released once"


async def test_a_failure_while_writing_wakes_the_loop(engine: AsyncEngine,
                                                      woken: list[Lane | None]) -> None:
    with pytest.raises(RuntimeError), hold_wakes():
        await _write(engine, "crisis", Priority.URGENT)
        raise RuntimeError("the webhook failed after its commit")
    assert woken == [Lane.URGENT]


async def test_a_webhook_that_never_sends_wakes_the_loop_later(
    engine: AsyncEngine, woken: list[Lane | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "HELD_WAKE_FALLBACK", 0.0)
    with hold_wakes():
        await _write(engine, "crisis", Priority.URGENT)
    assert woken == []
    for _ in range(5):  # the fallback runs within a turn or two of the event loop
        await asyncio.sleep(0)
    assert woken == [Lane.URGENT]


async def test_with_no_loop_here_the_webhook_sends_every_reply(engine: AsyncEngine) -> None:
    with hold_wakes() as held:
        await _write(engine, "crisis", Priority.URGENT)
        await _write(engine, "reply", Priority.REPLY)
    assert held.fast(["crisis", "reply"]) == ["crisis", "reply"]
    assert held.keys == set()


async def test_a_write_wakes_only_the_lane_it_is_for(
    engine: AsyncEngine, woken: list[Lane | None]
) -> None:
    """A reply wakes the urgent loop alone, a reminder the bulk loop alone: a wake costs a
    loop a claim and a look at the next due time."""
    await _write(engine, "reply", Priority.REPLY)
    await _write(engine, "reminder", Priority.SCHEDULED)
    await _write(engine, "broadcast", Priority.BULK)
    assert woken == [Lane.URGENT, Lane.BULK, Lane.BULK]
    async with session_scope(engine) as session:  # one transaction, both lanes: each once
        for key, priority in (("r2", Priority.REPLY), ("b2", Priority.BULK), ("r3", 20)):
            await enqueue(session, channel="sms", address="+447700900124", body="hi",
                          dedupe_key=key, now=NOW, priority=priority)
    assert sorted(woken[3:]) == [Lane.BULK, Lane.URGENT]
