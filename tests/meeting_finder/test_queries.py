"""SQL for meetings lives in storage/meetings_q.py; the meeting finder only calls it."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import session_scope
from storage.meetings_q import (
    IN_CLAUSE_CHUNK,
    meeting_table_version,
    meetings_by_id,
    meetings_of_source,
    open_active_index_rows,
    slug_sources,
)
from storage.models.meetings import Access, MeetingStatus
from tests.meeting_finder.conftest import make_meeting

ROOT = Path(__file__).resolve().parents[2]
SESSION_TYPE = "sqlmodel.ext.asyncio.session"  # the one sqlmodel import allowed: a type


def _sql_in(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            if top == "sqlalchemy" or (top == "sqlmodel" and node.module != SESSION_TYPE):
                found.append(f"line {node.lineno}: from {node.module} import")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in ("sqlalchemy", "sqlmodel")]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("exec", "execute", "scalars", "scalar")):
            found.append(f"line {node.lineno}: .{node.func.attr}()")
    return found


def test_meeting_finder_runs_no_sql_of_its_own() -> None:
    offenders = {str(p.relative_to(ROOT)): _sql_in(p)
                 for p in sorted((ROOT / "meeting_finder").rglob("*.py"))}
    assert {path: lines for path, lines in offenders.items() if lines} == {}


async def test_query_helpers_read_what_was_written(engine: AsyncEngine) -> None:
    meetings = [make_meeting(slug=f"q-{n}", source="feed-a") for n in range(IN_CLAUSE_CHUNK + 3)]
    meetings += [make_meeting(slug="q-closed", source="feed-b", access=Access.CLOSED),
                 make_meeting(slug="q-gone", source="feed-b", status=MeetingStatus.CANCELLED)]
    async with session_scope(engine) as session:
        assert await meeting_table_version(session) == (0, None, None)
        session.add_all(meetings)
        await session.commit()
        ids = [m.id for m in meetings if m.id is not None]
        count, top, _updated = await meeting_table_version(session)
        assert (count, top) == (len(meetings), max(ids))
        # More ids and slugs than one IN list holds still come back in full.
        assert set(await meetings_by_id(session, [*ids, 10**9])) == set(ids)
        wanted = [m.slug for m in meetings] + ["nobody-has-this"]
        sources = await slug_sources(session, wanted)
        assert len(sources) == len(meetings) and sources["q-gone"] == "feed-b"
        assert set(await meetings_of_source(session, "feed-b")) == {"q-closed", "q-gone"}
        rows = await open_active_index_rows(session)
        assert {r[0] for r in rows} == set(ids) - {meetings[-1].id, meetings[-2].id}
