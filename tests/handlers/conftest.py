"""Fixtures for the tools: a person who talks to the conversation engine.

Every message gets a new session, so nothing but the database carries a conversation from
one message to the next; `Person.restart()` goes further and builds a new database engine,
as a restarted process would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from handlers.engine import handle_inbound
from handlers.types import EngineContext, Inbound
from storage.db import make_engine, session_scope
from storage.models import ConversationState, OutboundMessage
from tests.auxil.builders import NOW, PHONE, TELEGRAM_ID, enrolled_participant


@dataclass
class Person:
    """A participant on one channel, talking to a freshly started engine each time."""

    db_url: str
    engine: AsyncEngine
    channel: str
    address: str
    participant_id: int
    now: datetime = NOW
    last: list[OutboundMessage] = field(default_factory=list)
    owned: list[AsyncEngine] = field(default_factory=list)
    _n: int = 0

    async def restart(self) -> None:
        """Drop the database engine and build a new one, as a restarted process would."""
        for old in self.owned:
            await old.dispose()
        self.engine = make_engine(self.db_url)
        self.owned = [self.engine]

    async def say(self, text: str = "", *, payload: str | None = None,
                  now: datetime | None = None) -> list[str]:
        """Send a message (or press a button) and return the reply texts."""
        self._n += 1
        inbound = Inbound(channel=self.channel, address=self.address, text=text,
                          payload=payload, received_at=now or self.now,
                          provider_id=f"{self.channel}-{self.participant_id}-{self._n}")
        async with session_scope(self.engine) as session:
            result = await handle_inbound(session, inbound, EngineContext(now=now or self.now))
        async with session_scope(self.engine) as session:
            rows = await session.exec(
                select(OutboundMessage)
                .where(col(OutboundMessage.dedupe_key).in_(result.outbox_keys))
                .order_by(col(OutboundMessage.id)))
            self.last = list(rows.all())
        return [r.body for r in self.last]

    def offered(self) -> list[str]:
        """Return the payloads of the options last offered."""
        return [c[1] for r in self.last for c in (r.choices or [])]

    async def choose(self, payload: str, *, now: datetime | None = None) -> list[str]:
        """Pick an offered option: by its number on SMS, by its button on Telegram."""
        offered = self.offered()
        assert payload in offered, f"{payload} not offered: {offered}"
        if self.channel == "telegram":
            return await self.say("", payload=payload, now=now)
        return await self.say(str(offered.index(payload) + 1), now=now)

    async def rate(self, value: int, *, now: datetime | None = None) -> list[str]:
        """Give a 0-10 rating: a button on Telegram, a typed number on SMS."""
        if self.channel == "telegram":
            assert str(value) in self.offered()
            return await self.say("", payload=str(value), now=now)
        assert not self.offered(), "SMS ratings are typed, not picked from a list"
        return await self.say(str(value), now=now)

    async def state(self) -> ConversationState:
        """Return the stored conversation state."""
        async with session_scope(self.engine) as session:
            state = await session.get(ConversationState, self.participant_id)
            assert state is not None
            return state


MakePerson = Callable[..., Awaitable[Person]]


@pytest.fixture
async def make_person(engine: AsyncEngine, db_url: str) -> AsyncIterator[MakePerson]:
    """Yield a factory of enrolled, linked, consented people on a channel."""
    people: list[Person] = []

    async def _make(channel: str = "sms", **kwargs: Any) -> Person:
        address = kwargs.pop("address", None) or (PHONE if channel == "sms" else TELEGRAM_ID)
        async with session_scope(engine) as session:
            p = await enrolled_participant(session, channel=channel, address=address, **kwargs)
        assert p.id is not None
        people.append(Person(db_url, engine, channel, address, p.id))
        return people[-1]

    yield _make
    for person in people:
        for own in person.owned:
            await own.dispose()


@pytest.fixture(params=["sms", "telegram"])
async def person(request: pytest.FixtureRequest, make_person: MakePerson) -> Person:
    """Yield an enrolled person on each channel in turn."""
    return await make_person(request.param)
