"""A message arriving in the same moment as the confirming YES is erased too.

Before sealing, SQLite kept its text 12 times in 12 and PostgreSQL 2 in 13: written just
after the erasure committed it was a stranger's message, or written just before it was
missed by the erasure's UPDATE.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, col, select

from bot.channels.inbox import ChannelRuntime, receive
from bot.config import Settings
from handlers.types import Inbound
from scheduler.dispatcher import dispatch
from storage.db import session_scope
from storage.models import InboundMessage, OutboundMessage, Participant, ParticipantStatus
from tests.auxil.builders import NOW
from tests.auxil.senders import RecordingSender, instant_limiter
from tests.handlers.conftest import MakePerson

ROUNDS = 6
SECRET = "the blue door on Etruria Road"


def _runtime(engine: AsyncEngine) -> ChannelRuntime:
    settings = Settings(_env_file=None, database_url="sqlite:///unused.db")  # type: ignore[call-arg]
    return ChannelRuntime(engine=engine, settings=settings, clock=lambda: NOW)


async def _erased(engine: AsyncEngine, participant_id: int) -> bool:
    async with session_scope(engine) as session:
        p = await session.get(Participant, participant_id)
        return p is not None and p.status == ParticipantStatus.DELETED


async def _readable(engine: AsyncEngine, needle: str) -> list[str]:
    """Return every readable text value, through our keys, that holds the needle."""
    found = []
    async with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in (await conn.execute(table.select())).mappings():
                found += [f"{table.name}.{k}" for k, v in row.items()
                          if isinstance(v, str | dict | list) and needle in str(v)]
    return found


async def test_a_message_racing_the_yes_is_erased(engine: AsyncEngine,
                                                  make_person: MakePerson) -> None:
    runtime = _runtime(engine)
    for n in range(ROUNDS):
        address = f"+4477009011{n:02d}"
        person = await make_person("sms", name=f"Racer{n}", address=address)
        await person.say("DELETE")

        async def send(text: str, pid: str, address: str = address) -> None:
            await receive(runtime, Inbound(channel="sms", address=address, text=text,
                                           received_at=NOW, provider_id=pid))

        await asyncio.gather(send("YES", f"SMyes{n}"), send(f"{SECRET} {n}", f"SMrace{n}"))
        if not await _erased(engine, person.participant_id):
            # The racing message came first and answered the question (so nothing was
            # erased); erasing now must still take it.
            await person.say("DELETE")
            await person.say("YES")
        sender = RecordingSender("sms")
        await dispatch(engine, {"sms": sender}, now=NOW + timedelta(seconds=1),
                       limiter=instant_limiter())
        assert any("erased" in m.body for m in sender.sent if m.address == address)
        assert await _readable(engine, f"{SECRET} {n}") == [], f"round {n}"
    async with session_scope(engine) as session:
        racing = (await session.exec(select(InboundMessage).where(
            col(InboundMessage.provider_id).like("SMrace%")))).all()
        assert len(racing) == ROUNDS and all(m.body is None for m in racing)
        assert all(m.address_hash is None for m in racing)
        left = (await session.exec(select(OutboundMessage.provider_id)
                                   .where(col(OutboundMessage.participant_id).is_not(None))
                                   .where(col(OutboundMessage.provider_id).is_not(None)))).all()
    assert left == [], "provider ids of erased people's messages are gone too"


async def test_the_racing_message_kept_its_text_before_the_sweep(
    engine: AsyncEngine, make_person: MakePerson,
) -> None:
    """Without the sweep after the confirmation (the old behaviour) the race is visible."""
    runtime = _runtime(engine)
    address = "+447700901199"
    person = await make_person("sms", name="Racer", address=address)
    await person.say("DELETE")
    await receive(runtime, Inbound(channel="sms", address=address, text="YES",
                                   received_at=NOW, provider_id="SMyes"))
    # Just after the erasure committed: a stranger's message from the erased number.
    await receive(runtime, Inbound(channel="sms", address=address, text=SECRET,
                                   received_at=NOW, provider_id="SMlate"))
    assert await _readable(engine, SECRET) == ["inboundmessage.body"]
    await dispatch(engine, {"sms": RecordingSender("sms")}, now=NOW + timedelta(seconds=1),
                   limiter=instant_limiter())
    assert await _readable(engine, SECRET) == []
