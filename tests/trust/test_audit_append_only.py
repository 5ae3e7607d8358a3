"""The audit table only grows: UPDATE and DELETE are refused by the database itself (built by
create_all or by the migrations, on SQLite and PostgreSQL), and erasing a participant keeps
their audit rows, which hold no personal data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import delete, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, col, select

from storage.audit_q import APPEND_ONLY, record_staff_action
from storage.db import session_scope
from storage.erasure import erase_participant
from storage.migrate import alembic_config, upgrade_to_head
from storage.models import AuditEvent
from storage.participants import audit, enrol, hash_address, link_identity
from tests.storage.test_migrations import empty_engine  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
PHONE = "+447700900321"
NAME = "Zebedee"


async def _one_row(engine: AsyncEngine) -> int:
    async with session_scope(engine) as session:
        row = await record_staff_action(session, staff_id=3, action="participant_read",
                                        now=NOW, participant_id=7, detail={"page": "/x"})
        assert row.id is not None
        return row.id


async def _refused(engine: AsyncEngine, statement: object) -> str:
    """Run a statement that must be refused; return the database's message."""
    with pytest.raises(DBAPIError) as caught:
        async with engine.begin() as conn:
            await conn.execute(statement)  # type: ignore[call-overload]
    return str(caught.value.orig)


async def _assert_append_only(engine: AsyncEngine) -> None:
    row_id = await _one_row(engine)
    where = col(AuditEvent.id) == row_id
    assert APPEND_ONLY in await _refused(engine, update(AuditEvent).where(where)
                                         .values(action="nothing_to_see"))
    assert APPEND_ONLY in await _refused(engine, update(AuditEvent).values(detail=None))
    assert APPEND_ONLY in await _refused(engine, delete(AuditEvent).where(where))
    assert APPEND_ONLY in await _refused(engine, text("DELETE FROM auditevent"))
    with pytest.raises(DBAPIError):  # through the ORM as well
        async with session_scope(engine) as session:
            await session.delete(await session.get(AuditEvent, row_id))
    await _one_row(engine)  # appending still works
    async with session_scope(engine) as session:
        rows = (await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all()
    assert [(r.action, r.detail) for r in rows] == [("participant_read", {"page": "/x"})] * 2


async def test_update_and_delete_are_refused_by_the_database(engine: AsyncEngine) -> None:
    await _assert_append_only(engine)


async def test_the_migrations_make_it_append_only_and_downgrade_undoes_it(
        empty_engine: AsyncEngine) -> None:  # noqa: F811
    await upgrade_to_head(empty_engine)
    await _assert_append_only(empty_engine)

    def downgrade(conn: Connection) -> None:
        command.downgrade(alembic_config(conn), "0009")

    async with empty_engine.begin() as conn:
        await conn.run_sync(downgrade)
        await conn.execute(text("DELETE FROM auditevent"))  # no trigger below 0010
    await upgrade_to_head(empty_engine)
    row_id = await _one_row(empty_engine)
    assert APPEND_ONLY in await _refused(empty_engine, delete(AuditEvent).where(
        col(AuditEvent.id) == row_id))


async def test_erasure_keeps_audit_rows_and_they_hold_no_personal_data(
        engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        p, _code = await enrol(session, prison_name="HMP Test", display_name=NAME,
                               release_date=date(2026, 12, 10), release_postcode="ST3 2QH",
                               now=NOW, phone=PHONE)
        assert p.id is not None
        pid = p.id
        await link_identity(session, participant=p, channel="sms", address=PHONE, now=NOW)
        await audit(session, actor=f"address:{hash_address(f'sms:{PHONE}')}",
                    action="link_failed", now=NOW, detail={"reason": "unknown"})
        await record_staff_action(session, staff_id=1, action="participant_read", now=NOW,
                                  participant_id=pid, detail={"page": "/staff/participants"})
    async with session_scope(engine) as session:
        before = (await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all()
        await erase_participant(session, participant_id=pid, now=NOW + timedelta(hours=1))
    async with session_scope(engine) as session:
        after = (await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all()
    assert [r.model_dump() for r in after[:len(before)]] == [r.model_dump() for r in before]
    assert [r.action for r in after[len(before):]] == ["erase"]
    assert "link_failed" in [r.action for r in after]
    # Nothing in any audit column is their name, number or postcode.
    async with engine.connect() as conn:
        table = SQLModel.metadata.tables["auditevent"]
        dumped = str([tuple(row) for row in (await conn.execute(table.select())).all()])
    for needle in (NAME, PHONE, PHONE[1:], "7700900321", "ST3 2QH"):
        assert needle.lower() not in dumped.lower(), needle
