"""The outbox takes each dedupe key once."""

from datetime import UTC, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import OutboundMessage
from storage.outbox import enqueue


async def test_enqueue_dedupes(session: AsyncSession) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    args = {"channel": "sms", "address": "+447700900123", "body": "hi", "now": now}
    assert await enqueue(session, dedupe_key="a", **args)
    assert not await enqueue(session, dedupe_key="a", **args)
    await session.commit()
    rows = (await session.exec(select(OutboundMessage))).all()
    assert len(rows) == 1
    assert rows[0].due_at == now
    assert rows[0].status == "queued"
