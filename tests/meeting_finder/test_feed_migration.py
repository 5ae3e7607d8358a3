"""Migration 0003 keeps existing meetings as they were, on both databases."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.migrate import alembic_config, schema_drift, upgrade_to_head
from tests.storage import test_migrations

empty_engine = test_migrations.empty_engine  # the same fresh, table-less database fixture
OLD_MEETING = (
    "INSERT INTO meeting (slug, name, weekday, timezone, attendance, access, status, demo, "
    "updated) VALUES ('old', 'Old', 0, 'Europe/London', 'in_person', 'open', 'active', "
    "false, '2026-01-01 00:00:00+00:00')"
)


def _to(revision: str, down: bool = False) -> Callable[[Connection], None]:
    """Return a step that moves the schema up (or down) to `revision`."""

    def run(conn: Connection) -> None:
        cfg = alembic_config(conn)
        (command.downgrade if down else command.upgrade)(cfg, revision)

    return run


async def test_existing_meetings_survive_0003_both_ways(empty_engine: AsyncEngine) -> None:
    async with empty_engine.begin() as conn:
        await conn.run_sync(_to("0002"))
        await conn.execute(text(OLD_MEETING))
    await upgrade_to_head(empty_engine)
    assert await schema_drift(empty_engine) == []
    async with empty_engine.begin() as conn:
        row = (await conn.execute(text(
            "SELECT timezone, approximate, group_name FROM meeting WHERE slug = 'old'"))).one()
        assert tuple(row) == ("Europe/London", False, None)
        await conn.execute(text(
            "INSERT INTO meeting (slug, name, weekday, approximate, attendance, access, status,"
            " demo, updated) VALUES ('zoneless', 'Z', 1, true, 'online', 'open', 'active',"
            " false, '2026-01-01 00:00:00+00:00')"))
        await conn.run_sync(_to("0002", down=True))
        rows = (await conn.execute(text(
            "SELECT slug, timezone, status FROM meeting ORDER BY slug"))).all()
    # The old code would offer a zoneless meeting in London time, so it is paused instead.
    assert [tuple(r) for r in rows] == [
        ("old", "Europe/London", "active"), ("zoneless", "Europe/London", "suspended")]
