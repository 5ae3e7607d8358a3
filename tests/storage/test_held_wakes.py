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
from storage.db import session_scope
from storage.models import Priority
from storage.notify import hold_wakes, on_local_notify
from storage.outbox import enqueue

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.fixture
def woken() -> Iterator[list[int]]:
    """Register a loop in this process; yield the list its wakes are counted in."""
    calls: list[int] = []
    forget = on_local_notify(lambda: calls.append(1))
    yield calls
    forget()


async def _write(engine: AsyncEngine, key: str, priority: int) -> None:
    async with session_scope(engine) as session:
        await enqueue(session, channel="sms", address="+447700900123", body="hi",
                      dedupe_key=key, now=NOW, priority=priority)


async def test_a_crisis_row_is_held_and_a_reply_wakes_the_loop(
    engine: AsyncEngine, woken: list[int]
) -> None:
    with hold_wakes() as held:
        await _write(engine, "crisis", Priority.URGENT)
        assert woken == [], "the webhook sends the crisis reply itself"
        await _write(engine, "reply", Priority.REPLY)
        assert woken == [1], "an ordinary reply is the loop's to send"
    assert held.fast(["crisis", "reply"]) == ["crisis"]
    held.release(["crisis"])
    assert woken == [1], "sent: nothing left for the loop"


async def test_a_held_row_not_sent_wakes_the_loop(engine: AsyncEngine,
                                                  woken: list[int]) -> None:
    with hold_wakes() as held:
        await _write(engine, "crisis", Priority.URGENT)
    held.release(None)
    assert woken == [1]
    held.release(None)
    assert woken == [1], "released once"


async def test_a_failure_while_writing_wakes_the_loop(engine: AsyncEngine,
                                                      woken: list[int]) -> None:
    with pytest.raises(RuntimeError), hold_wakes():
        await _write(engine, "crisis", Priority.URGENT)
        raise RuntimeError("the webhook failed after its commit")
    assert woken == [1]


async def test_a_webhook_that_never_sends_wakes_the_loop_later(
    engine: AsyncEngine, woken: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "HELD_WAKE_FALLBACK", 0.0)
    with hold_wakes():
        await _write(engine, "crisis", Priority.URGENT)
    assert woken == []
    for _ in range(5):  # the fallback runs within a turn or two of the event loop
        await asyncio.sleep(0)
    assert woken == [1]


async def test_with_no_loop_here_the_webhook_sends_every_reply(engine: AsyncEngine) -> None:
    with hold_wakes() as held:
        await _write(engine, "crisis", Priority.URGENT)
        await _write(engine, "reply", Priority.REPLY)
    assert held.fast(["crisis", "reply"]) == ["crisis", "reply"]
    assert held.keys == set()
