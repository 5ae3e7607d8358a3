from datetime import UTC, datetime

from sqlmodel import select

from storage.models import OutboundMessage
from storage.outbox import enqueue


async def test_enqueue_dedupes(session):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert await enqueue(session, channel="sms", address="+44", body="hi", dedupe_key="a", now=now)
    assert not await enqueue(session, channel="sms", address="+44", body="hi", dedupe_key="a", now=now)
    await session.commit()
    rows = (await session.exec(select(OutboundMessage))).all()
    assert len(rows) == 1 and rows[0].due_at == now
